"""Fit: which rows are held out to score a classifier, decided in Spark.

The same rule as `fruits.results.evaluate.split_rows` (which imports the vocabulary from
here), so the job's head and `fruitsctl evaluate` are scored on the same kind of split:
the run's split column when it has a training and a test split; else, where every file
name is numbered (Fruits-360's video frames), per label and name pattern the middle
TEST_SHARE of the ranks of the first number (neighbouring frames are near-duplicates: one
block keeps them on one side); else a seeded per-class random share, said to be optimistic.

PySpark is imported by the function: evaluate imports the constants without it.
"""

from typing import Any

TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "testing", "val", "valid", "validation")
SPLIT_COLUMN = "the run's split column"
NUMBER_BLOCKS = "contiguous blocks of the file names' numbering (frames kept apart)"
RANDOM_SPLIT = "a seeded per-class 70/30 random split (optimistic: near-duplicate images fall on both sides)"
TEST_SHARE = 0.3
MIN_BLOCK_GROUP = 4  # a shorter group (video) is too short to hold a block out: train only
HELD_OUT = "held_out"  # the boolean column held_out() adds


def held_out(frame: Any, seed: int = 0) -> tuple[Any, str]:
    """(`frame` with a boolean HELD_OUT column, how the split was made). `frame` needs the
    columns label, split and path."""
    from pyspark.sql import functions as F

    split = F.lower(F.coalesce(F.col("split"), F.lit("")))
    name = F.regexp_extract("path", r"[^/]*$", 0)
    seen = frame.agg(
        F.max(split.isin(*TRAIN_NAMES).cast("int")).alias("train"),
        F.max(split.isin(*TEST_NAMES).cast("int")).alias("test"),
        F.min(name.rlike(r"\d").cast("int")).alias("numbered"),
    ).first()
    if seen is not None and seen["train"] and seen["test"]:
        return frame.withColumn(HELD_OUT, split.isin(*TEST_NAMES)), SPLIT_COLUMN
    if seen is not None and seen["numbered"]:
        blocks = frame.withColumn(HELD_OUT, _number_block(name))
        if blocks.filter(F.col(HELD_OUT)).limit(1).count():
            return blocks, NUMBER_BLOCKS
    return frame.withColumn(HELD_OUT, _random_share(seed)), RANDOM_SPLIT


def _middle(rank: Any, size: Any, count: Any) -> Any:
    """Whether a 0-based rank among `count` falls in the middle `size` ranks."""
    from pyspark.sql import functions as F

    start = F.floor((count - size) / 2)
    return (rank >= start) & (rank < start + size)


def _share(count: Any) -> Any:
    """max(1, round(count * TEST_SHARE)), rounding half to even as Python's round does."""
    from pyspark.sql import functions as F

    return F.greatest(F.lit(1), F.bround(count * F.lit(TEST_SHARE), 0).cast("long"))


def _number_block(name: Any) -> Any:
    """The test mask of number_blocks: group = label + name with its first number replaced by
    '#'; ranked by that number's value (leading zeros dropped: compared by length, then
    digits, so any length compares exactly), then by path."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    digits = F.regexp_replace(F.regexp_extract(name, r"\d+", 0), "^0+", "")
    pattern = F.concat(F.regexp_extract(name, r"^(\D*)\d", 1), F.lit("#"), F.regexp_extract(name, r"^\D*\d+(.*)$", 1))
    group = Window.partitionBy(F.col("label"), pattern)
    rank = F.row_number().over(group.orderBy(F.length(digits), digits, F.col("path"))) - 1
    count = F.count(F.lit(1)).over(group)
    return (count >= MIN_BLOCK_GROUP) & _middle(rank, _share(count), count)


def _random_share(seed: int) -> Any:
    """Per label, a seeded random TEST_SHARE of the rows (none of a label with one row)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    label = Window.partitionBy("label")
    rank = F.row_number().over(label.orderBy(F.rand(seed), F.col("path"))) - 1
    count = F.count(F.lit(1)).over(label)
    return (count > 1) & (rank < _share(count))
