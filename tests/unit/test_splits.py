"""evaluate's train/test split: near-duplicates kept apart (the split column, else blocks of the
file names' numbering), a random split only as the labelled, optimistic fallback."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from fruits.results.evaluate import NUMBER_BLOCKS, RANDOM_SPLIT, SPLIT_COLUMN, evaluate, number_blocks, split_rows

ROOT = Path(__file__).resolve().parents[2]


def fruits360_names(label: str, frames: int) -> list[str]:
    """Two videos of one fruit, as Fruits-360 names them (frame numbers with gaps)."""
    return [f"s3a://b/{label}/{video}{3 * n}_100.jpg" for video in ("", "r_") for n in range(frames)]


def test_each_video_holds_out_one_contiguous_middle_block_of_its_frames():
    paths = fruits360_names("Kiwi", 20) + fruits360_names("Lemon", 10)
    labels = np.array(["Kiwi"] * 40 + ["Lemon"] * 20, dtype=object)
    test = number_blocks(labels, paths)
    assert test is not None
    for first in (0, 20, 40, 50):  # each video: rows first .. first + frames, in frame order
        frames = 20 if first < 40 else 10
        held = np.flatnonzero(test[first : first + frames])
        assert len(held) == round(frames * 0.3)
        assert list(held) == list(range(held[0], held[0] + len(held)))  # one block
        assert held[0] > 0 and held[-1] < frames - 1  # the middle: not the first or last frames


def test_the_split_column_wins_then_numbering_then_a_random_split_said_to_be_optimistic():
    labels = np.array(["a", "a", "a", "a", "b", "b", "b", "b"], dtype=object)
    numbered = [f"{label}/img_{i}.jpg" for i, label in enumerate(labels)]
    named = [f"{label}/photo-{chr(97 + i)}.jpg" for i, label in enumerate(labels)]
    splits = np.array(["Training", "Test"] * 4, dtype=object)
    none = np.array([None] * 8, dtype=object)
    assert split_rows(labels, splits, numbered)[2] == SPLIT_COLUMN
    assert split_rows(labels, none, numbered)[2] == NUMBER_BLOCKS
    assert split_rows(labels, none, named)[2] == RANDOM_SPLIT and "optimistic" in RANDOM_SPLIT
    vectors = [[float(i)] for i in range(8)]
    assert evaluate(labels, none, vectors, numbered, random_split=True)["split"] == RANDOM_SPLIT


def test_the_committed_calibration_photos_are_the_seeded_pick():
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "calibration_photos.py"), "--check"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
