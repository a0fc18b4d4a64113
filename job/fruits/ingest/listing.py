"""Ingest: list the image files under the input (a local folder or an S3 prefix) and label
each by its folder.

Every file under the input is accounted for, by one of three outcomes:
- an image to read: a regular file named *.jpg, *.jpeg or *.png in any letter case (names
  starting with `_` included: cameras and exports make them);
- an error row (a symlink loop, a dangling symlink, a folder that cannot be listed, a
  symlink to a folder already read, a special file with an image name), written to errors/;
- skipped by a rule, counted in the manifest: hidden entries (names starting with `.`; a
  hidden folder counts once) and files that are not images by their extension.

Symlinks are followed once: a linked folder is read under the first path that reaches it.
"""

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs

from fruits.io.output import ERROR_SCHEMA
from fruits.io.storage import Store
from fruits.settings.config import IMAGE_EXTENSIONS
from fruits.settings.errors import UserError

# A grandparent folder with one of these names is the split (Fruits-360: Training/, Test/).
SPLIT_NAMES = ("train", "training", "test", "testing", "val", "valid", "validation")
HIDDEN, NOT_IMAGE = "hidden (name starts with '.')", "not an image (extension)"


def label_and_split(path: str) -> tuple[str | None, str | None]:
    """(parent folder name as is, grandparent folder name when it is a known split name)."""
    parts = path.rstrip("/").split("/")
    label = parts[-2] if len(parts) >= 2 and parts[-2] else None
    split = parts[-3] if len(parts) >= 3 and parts[-3].lower() in SPLIT_NAMES else None
    return label, split


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


class ListedImage(NamedTuple):
    """One image to read, as a featurize task gets it (LISTED_SCHEMA's columns)."""

    path: str
    label: str | None
    split: str | None
    size: int
    modified: int  # µs since the epoch


@dataclass
class Listing:
    """What the input holds: images to read, problems found while listing, skipped counts."""

    paths: list[str] = field(default_factory=list)  # as the output rows spell them (file:/..., s3a://...)
    sizes: list[int] = field(default_factory=list)
    modified: list[int] = field(default_factory=list)  # µs since the epoch: a file's identity is (path, size, this)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    skipped: Counter = field(default_factory=Counter)  # rule -> entries

    def add_file(self, path: str, size: int, modified_ns: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.modified.append(modified_ns // 1000)

    def sorted(self) -> "Listing":
        order = sorted(range(len(self.paths)), key=self.paths.__getitem__)
        return self.subset(order, sorted(self.problems), self.skipped)

    def subset(
        self,
        indices: Sequence[int],
        problems: Iterable[tuple[str, str]] = (),
        skipped: Mapping[str, int] | None = None,
    ) -> "Listing":
        """The files at `indices`, in that order."""
        return Listing(
            [self.paths[i] for i in indices],
            [self.sizes[i] for i in indices],
            [self.modified[i] for i in indices],
            list(problems),
            Counter(skipped or {}),
        )

    def tasks(self, partitions: int) -> dict[int, list[ListedImage]]:
        """The images cut into `partitions` contiguous runs, equal in count to one image, by
        partition number: the same listing always gives the same tasks."""
        images = [
            ListedImage(path, *label_and_split(path), size, modified)
            for path, size, modified in zip(self.paths, self.sizes, self.modified)
        ]
        if not images:
            return {}
        partitions = max(1, min(partitions, len(images)))
        bounds = [len(images) * i // partitions for i in range(partitions + 1)]
        return {i: images[bounds[i] : bounds[i + 1]] for i in range(partitions)}

    def problem_rows(self) -> pa.Table:
        rows = [
            {"path": path, "label": label_and_split(path)[0], "split": label_and_split(path)[1], "error": reason}
            for path, reason in self.problems
        ]
        return pa.Table.from_pylist(rows, schema=ERROR_SCHEMA)


def list_images(store: Store, shown: str | None = None) -> Listing:
    """Every image file under the store's root, sorted by path (the same input always makes the
    same tasks). Raises UserError when the root does not exist or holds no image at all;
    messages name the input as `shown` (the user's spelling)."""
    shown = shown or store.uri
    listing = (_list_local(store, shown) if store.is_local else _list_s3(store, shown)).sorted()
    if not listing.paths and not listing.problems:
        skipped = "; ".join(f"{count} {rule}" for rule, count in sorted(listing.skipped.items()))
        raise UserError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) under {shown!r}"
            f"{f' (skipped: {skipped})' if skipped else ''}: put images in <label>/<file>.jpg "
            "folders there, or point --input elsewhere."
        )
    return listing


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _list_local(store: Store, shown: str) -> Listing:
    root = store.root
    listing = Listing()
    try:
        top = os.stat(root)
    except FileNotFoundError:
        raise UserError(f"Input path {shown!r} does not exist: check --input.") from None
    except OSError as exc:
        raise UserError(
            f"Cannot read the input {shown!r} ({_reason(exc)}): check --input and its permissions."
        ) from None
    if not stat.S_ISDIR(top.st_mode):
        if is_image_name(root):
            listing.add_file(store.uri_of(root), top.st_size, top.st_mtime_ns)
        else:
            listing.skipped[NOT_IMAGE] += 1
        return listing
    read_folders = {os.path.realpath(root)}
    # (folder, real paths of the folders above it and itself)
    pending: list[tuple[str, tuple[str, ...]]] = [(root, (os.path.realpath(root),))]
    while pending:
        folder, chain = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            listing.problems.append((store.uri_of(folder), f"cannot list this folder: {_reason(exc)}"))
            continue
        for entry in entries:
            path = store.uri_of(entry.path)
            if entry.name.startswith("."):
                listing.skipped[HIDDEN] += 1
                continue
            try:
                info = os.stat(entry.path)  # follows symlinks
            except FileNotFoundError:
                listing.problems.append((path, f"dangling symlink (its target {os.readlink(entry.path)!r} is missing)"))
                continue
            except OSError as exc:
                reason = "symlink loop" if exc.errno == errno.ELOOP else _reason(exc)
                listing.problems.append((path, f"cannot read: {reason}"))
                continue
            if stat.S_ISDIR(info.st_mode):
                real = os.path.realpath(entry.path)
                if real in chain:
                    listing.problems.append((path, f"symlink loop: leads back to {real!r}, a folder above it"))
                elif real in read_folders:
                    listing.problems.append(
                        (
                            path,
                            f"symlink to a folder already read ({real!r}): its images "
                            "are read once, under the first path",
                        )
                    )
                else:
                    read_folders.add(real)
                    pending.append((entry.path, chain + (real,)))
            elif not is_image_name(entry.name):
                listing.skipped[NOT_IMAGE] += 1
            elif stat.S_ISREG(info.st_mode):
                listing.add_file(path, info.st_size, info.st_mtime_ns)
            else:
                listing.problems.append((path, "not a regular file (a device, pipe or socket)"))
    return listing


def _list_s3(store: Store, shown: str) -> Listing:
    listing = Listing()
    selector = pafs.FileSelector(store.root, recursive=True, allow_not_found=True)
    infos = store.filesystem.get_file_info(selector)
    if not infos:
        bucket = store.root.split("/")[0]
        if store.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise UserError(f"S3 bucket {bucket!r} does not exist: check the bucket name in {shown!r}.")
        raise UserError(f"Input {shown!r} matches no S3 objects: check the bucket and prefix in --input.")
    hidden_folders = set()
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        relative = PurePosixPath(info.path).relative_to(store.root)
        hidden = next((i for i, part in enumerate(relative.parts) if part.startswith(".")), None)
        if hidden is not None:
            if hidden == len(relative.parts) - 1:
                listing.skipped[HIDDEN] += 1
            elif relative.parts[: hidden + 1] not in hidden_folders:  # a hidden folder counts once
                hidden_folders.add(relative.parts[: hidden + 1])
                listing.skipped[HIDDEN] += 1
        elif is_image_name(info.base_name):
            listing.add_file(store.uri_of(info.path), info.size, info.mtime_ns or 0)
        else:
            listing.skipped[NOT_IMAGE] += 1
    return listing
