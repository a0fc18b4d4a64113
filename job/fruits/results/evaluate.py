"""How separable the classes are in the reduced space: a 1-nearest-neighbour classifier.

Train/test: the run's `split` column when it has a training and a test split; else, where
the file names are numbered (video frames, camera bursts: `r_123_100.jpg`, `IMG_0042.jpg`),
contiguous blocks of that numbering: per label and name pattern, the middle 30 % of the
numbers is the test set, so near-duplicate neighbouring frames stay on one side; else a
seeded per-class 70/30 random split, said to be optimistic (near-duplicates fall on both
sides: on Fruits-360 it overstates 1-NN accuracy on unseen fruit). 1-NN needs no fitting and
no tuning, so the score says what the features are worth rather than what a classifier made
of them.

NumPy is imported by the functions: the CLI reads MAX_ROWS when it starts.

Limit: the `pca` vectors are held in memory (k floats per image: 1 million images at
k = 200 is 0.8 GB) and the distance work grows with train x test; `max_rows` stops
larger outputs with a clear message, and `sample` evaluates on a per-class sample.
"""

import re
from collections import Counter, defaultdict

from fruits.fit.held_out import (  # one vocabulary for this split and the job's (in Spark)
    MIN_BLOCK_GROUP,
    NUMBER_BLOCKS,
    RANDOM_SPLIT,
    SPLIT_COLUMN,
    TEST_NAMES,
    TEST_SHARE,
    TRAIN_NAMES,
)
from fruits.settings.errors import UserError

MAX_ROWS = 300_000
_NUMBER = re.compile(r"\d+")


def number_blocks(labels, paths):
    """The test mask of a split by file-name numbering, or None where names carry no numbers.

    A file's group is its label and its name with the first number replaced (`r_#_100.jpg`:
    one video of Fruits-360); within a group, the files ranked by that number, the middle
    TEST_SHARE of the ranks are the test set (one block: two boundaries where neighbours can
    leak, whatever the group's size)."""
    import numpy as np

    groups: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for row, (label, path) in enumerate(zip(labels, paths)):
        name = str(path).rsplit("/", 1)[-1]
        found = _NUMBER.search(name)
        if found is None:
            return None
        groups[(label, name[: found.start()] + "#" + name[found.end() :])].append((int(found.group()), row))
    test = np.zeros(len(labels), dtype=bool)
    for members in groups.values():
        if len(members) < MIN_BLOCK_GROUP:
            continue  # too short to hold a block out: train only
        ranked = [row for _, row in sorted(members)]
        size = max(1, round(len(ranked) * TEST_SHARE))
        start = (len(ranked) - size) // 2
        test[ranked[start : start + size]] = True
    return test if test.any() else None


def split_rows(labels, splits, paths=None, seed: int = 0) -> tuple:
    """(train mask, test mask, how the split was made): the run's split column, else blocks of
    the file names' numbering, else a random split (labelled optimistic)."""
    import numpy as np

    lowered = np.array([str(s).lower() if s is not None else "" for s in splits])
    train, test = np.isin(lowered, TRAIN_NAMES), np.isin(lowered, TEST_NAMES)
    if train.any() and test.any():
        return train, test, SPLIT_COLUMN
    if paths is not None and (blocks := number_blocks(labels, paths)) is not None:
        return ~blocks, blocks, NUMBER_BLOCKS
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) > 1:
            test[rng.choice(rows, size=max(1, round(len(rows) * 0.3)), replace=False)] = True
    return ~test, test, RANDOM_SPLIT


def nearest_neighbour(train, test, chunk: int = 1024):
    """Index into `train` of each test row's nearest neighbour (Euclidean), in chunks."""
    import numpy as np

    train_sq = (train**2).sum(axis=1)
    found = np.empty(len(test), dtype=np.int64)
    for start in range(0, len(test), chunk):
        block = test[start : start + chunk]
        distances = train_sq[None, :] - 2.0 * block @ train.T  # + |test|^2, constant per row
        found[start : start + chunk] = distances.argmin(axis=1)
    return found


def evaluate(
    labels,
    splits,
    vectors,
    paths=None,
    *,
    max_rows: int = MAX_ROWS,
    sample: int | None = None,
    seed: int = 0,
    random_split: bool = False,
) -> dict:
    """1-NN accuracy on a held-out split (see the module's docstring); `random_split` forces
    the random one."""
    import numpy as np

    labels = np.asarray(labels, dtype=object)
    splits = np.asarray(splits, dtype=object)
    paths = None if paths is None or random_split else np.asarray(paths, dtype=object)
    if sample and len(labels) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=sample, replace=False))
        labels, splits, vectors = labels[keep], splits[keep], [vectors[i] for i in keep]
        paths = paths[keep] if paths is not None else None
    if len(labels) > max_rows:
        raise UserError(
            f"{len(labels):,} images are more than evaluate holds in memory ({max_rows:,}): "
            f"pass --sample {max_rows // 2} to evaluate on a random sample."
        )
    x = np.stack(vectors).astype(np.float32)
    train, test, how = split_rows(labels, splits if not random_split else [None] * len(labels), paths, seed)
    if not test.any() or not train.any():
        raise UserError("Too few images to split into train and test (need at least 2 per class).")
    predicted = labels[train][nearest_neighbour(x[train], x[test])]
    truth = labels[test]
    correct = predicted == truth
    per_class = {
        str(label): {
            "accuracy": round(float(correct[truth == label].mean()), 4),
            "test_images": int((truth == label).sum()),
        }
        for label in sorted(set(truth))
    }
    confusions = Counter((str(t), str(p)) for t, p in zip(truth, predicted) if t != p)
    return {
        "classifier": "1-nearest-neighbour on the pca vectors (Euclidean)",
        "split": how,
        "train_images": int(train.sum()),
        "test_images": int(test.sum()),
        "accuracy": round(float(correct.mean()), 4),
        "per_class": per_class,
        "most_confused": [{"true": t, "predicted": p, "count": n} for (t, p), n in confusions.most_common(10)],
    }
