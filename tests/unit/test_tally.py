"""The statistics the featurize pass hands to the driver: moments, counts, exactly once per partition."""

from collections import Counter

import numpy as np
import pytest

from fruits.fit.moments import BLOCK_ROWS, Moments, MomentsBuilder
from fruits.fit.tally import PartitionTally, RunTally


def rows(n: int, seed: int) -> np.ndarray:
    # large offset, small spread: where a naive sum-of-squares loses its digits
    return (1000 + np.random.default_rng(seed).normal(size=(n, 7))).astype(np.float32)


def test_moments_built_in_blocks_and_merged_equal_the_direct_computation():
    data = rows(2 * BLOCK_ROWS + 333, 0)
    builder = MomentsBuilder()
    for start in range(0, len(data), 64):  # Arrow-batch-sized pieces
        builder.add(data[start : start + 64])
    built = builder.result()
    assert built.n == len(data)
    np.testing.assert_allclose(built.mean, data.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(built.scatter / (built.n - 1), np.cov(data.astype(np.float64).T), rtol=1e-9)


def partition_tally(partition: int, data: np.ndarray, labels: list[str], failed: int = 0) -> RunTally:
    counts = PartitionTally(partition)
    counts.add(labels, [None] * len(labels), data, failed)
    return counts.result()


def test_a_partition_merged_twice_counts_once_and_a_tally_survives_its_file():
    """Tallies travel as files (stats-NNNNN.npz) and merge by partition."""
    first, second = rows(50, 1), rows(70, 2)
    total = RunTally()
    for update in (
        partition_tally(0, first, ["apple"] * 50, failed=3),
        partition_tally(1, second, ["pear"] * 70),
        partition_tally(0, first, ["apple"] * 50, failed=3),
    ):
        total = total.merge(RunTally.from_bytes(update.to_bytes()))
    assert total.partitions == {0, 1}
    assert (total.rows, total.failed, total.ok) == (123, 3, 120)
    assert total.labels == Counter(apple=50, pear=70)
    both = np.concatenate([first, second]).astype(np.float64)
    np.testing.assert_allclose(total.moments.scatter / 119, np.cov(both.T), rtol=1e-9)


def test_the_attempts_lost_before_a_partition_committed_survive_its_file_and_add_up():
    """A task run again (attempt n after n attempts lost: an executor gone, a worker killed)
    says so in its tally; the manifest's featurize.retried_tasks is their sum."""
    data = rows(10, 5)
    tallies = []
    for partition, attempt in ((0, 0), (1, 1), (2, 2), (1, 1)):  # partition 1 merged twice counts once
        counts = PartitionTally(partition, attempt=attempt)
        counts.add(["x"] * 10, [None] * 10, data, 0)
        tallies.append(RunTally.from_bytes(counts.result().to_bytes()))
    total = RunTally()
    for tally in tallies:
        total = total.merge(tally)
    assert total.retried == 3 and total.rows == 30
    assert partition_tally(3, data, ["x"] * 10).retried == 0


def test_fit_fraction_samples_the_rows_the_same_way_on_a_retry():
    data = rows(1000, 3)
    one, again = PartitionTally(5, fit_fraction=0.3, seed=7), PartitionTally(5, fit_fraction=0.3, seed=7)
    for counts in (one, again):
        counts.add(["x"] * 1000, [None] * 1000, data, 0)
    first, second = one.result(), again.result()
    assert 200 < first.moments.n < 400 and first.ok == 1000  # counts cover every row, the fit a sample
    np.testing.assert_array_equal(first.moments.mean, second.moments.mean)


def test_splits_are_counted_for_usable_images_only():
    counts = PartitionTally(0)
    counts.add(["a", "b", "b"], ["Training", "Test", None], rows(3, 4), failed=2)
    tally = counts.result()
    assert tally.splits == Counter(Training=1, Test=1) and tally.labels == Counter(a=1, b=2)
    assert (tally.rows, tally.failed) == (5, 2)


def test_empty_moments_merge_to_the_other_side():
    some = Moments.of(rows(10, 5))
    assert Moments.empty().merge(some) is some and some.merge(Moments.empty()) is some
    with pytest.raises(ValueError):
        from fruits.fit.reduce import fit_reduction

        fit_reduction(Moments.of(rows(1, 6)), k=None, variance=0.9)


def test_removing_rows_from_moments_gives_the_moments_of_the_rest():
    rows = np.random.default_rng(3).normal(5.0, 3.0, size=(900, 24))
    whole, dropped = Moments.of(rows), Moments.of(rows[600:])
    rest = whole.without(dropped)
    expected = Moments.of(rows[:600])
    assert rest.n == 600
    np.testing.assert_allclose(rest.mean, expected.mean, atol=1e-12)
    np.testing.assert_allclose(rest.scatter, expected.scatter, rtol=1e-9, atol=1e-8)
    assert whole.without(Moments.empty()) is whole
    with pytest.raises(ValueError):
        dropped.without(whole)


def test_a_carried_tally_keeps_the_usable_rows_left_and_their_labels():
    vectors = np.random.default_rng(4).normal(size=(10, 6)).astype(np.float32)
    before, gone = PartitionTally(0), PartitionTally(1)
    before.add(["a"] * 6 + ["b"] * 4, ["train"] * 10, vectors, failed=2)
    gone.add(["b"] * 4, ["train"] * 4, vectors[6:], failed=0)
    carried = before.result().without(gone.result(), partition=-1)
    assert carried.partitions == frozenset([-1]) and carried.ok == 6 and carried.failed == 0
    assert carried.labels == {"a": 6} and carried.splits == {"train": 6}
    np.testing.assert_allclose(carried.moments.mean, vectors[:6].astype(np.float64).mean(axis=0), atol=1e-6)
