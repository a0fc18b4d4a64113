#!/usr/bin/env python3
"""Pick the photos that calibrate the int8 backbone (job/fruits/featurize/calibration_photos/).

    python .ci/calibration_photos.py           # writes the folder from ../shared's Fruits-360 sample
    python .ci/calibration_photos.py --check   # exit 1 when the committed folder is not what it would write

Twelve photos of each of the sample's 18 classes (216), chosen with a fixed seed over the
sorted file names, copied byte for byte as `<class, lower case>--<file>`. The set is part of the package,
so every machine that converts the int8 model (the image's build, a laptop, a driver) feeds
the converter the same photos and gets the same model.
"""

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "fruits360-sample"
TARGET = ROOT / "job" / "fruits" / "featurize" / "calibration_photos"
PER_CLASS = 12
SEED = 20261204


def chosen() -> dict[str, bytes]:
    photos = {}
    for folder in sorted(p for p in SAMPLE.iterdir() if p.is_dir()):
        names = sorted(p.name for p in folder.glob("*.jpg"))
        for name in random.Random(f"{SEED}:{folder.name}").sample(names, PER_CLASS):
            photos[f"{folder.name.lower().replace(' ', '_')}--{name}"] = (folder / name).read_bytes()
    return photos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not SAMPLE.is_dir():
        print(f"{SAMPLE} is missing: the photos are picked from ../shared's Fruits-360 sample.", file=sys.stderr)
        return 2
    photos = chosen()
    present = {p.name: p.read_bytes() for p in TARGET.glob("*.jpg")}
    if args.check:
        if present != photos:
            print(f"{TARGET} differs from the seeded pick: run python .ci/calibration_photos.py", file=sys.stderr)
            return 1
        return 0
    for name in set(present) - set(photos):
        (TARGET / name).unlink()
    for name, data in photos.items():
        (TARGET / name).write_bytes(data)
    print(f"wrote {len(photos)} photos to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
