"""A small synthetic fruit dataset drawn by code, so the quickstart needs no download.

Each class is a fruit-like shape of a distinct colour on a white 100x100 background (like
Fruits-360), with random size, position, rotation, shading and noise.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# class name -> (base RGB colour, shape)
DEMO_CLASSES = {
    "Apple Red": ((190, 25, 35), "round"),
    "Banana": ((235, 205, 40), "crescent"),
    "Lime": ((90, 170, 40), "oval"),
    "Blueberry": ((60, 70, 150), "small"),
    "Orange": ((245, 140, 20), "round"),
}
SIZE = 100
VERSION = "1"  # bump when the drawing changes, so cached copies are redrawn


def _jitter(colour: tuple[int, ...], rng: random.Random, amount: int = 25) -> tuple[int, ...]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def draw_fruit(colour: tuple[int, ...], shape: str, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (SIZE * 2, SIZE * 2), "white")  # draw at 2x, then downsample
    draw = ImageDraw.Draw(img)
    c = _jitter(colour, rng)
    cx, cy = SIZE + rng.randint(-20, 20), SIZE + rng.randint(-20, 20)
    r = rng.randint(55, 80)
    if shape == "round":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
        draw.line((cx, cy - r, cx + 6, cy - r - 22), fill=(90, 60, 20), width=6)  # stem
    elif shape == "oval":
        draw.ellipse((cx - r, cy - int(r * 0.75), cx + r, cy + int(r * 0.75)), fill=c)
    elif shape == "small":
        for _ in range(rng.randint(3, 5)):
            bx, by, br = cx + rng.randint(-40, 40), cy + rng.randint(-40, 40), rng.randint(22, 32)
            draw.ellipse((bx - br, by - br, bx + br, by + br), fill=_jitter(colour, rng, 15))
    elif shape == "crescent":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
        off = int(r * 0.45)
        draw.ellipse((cx - r + off, cy - r - off, cx + r + off, cy + r - off), fill="white")
    highlight = tuple(min(255, v + 60) for v in c)
    draw.ellipse((cx - r // 2, cy - r // 2, cx - r // 4, cy - r // 4), fill=highlight)
    img = img.rotate(rng.uniform(0, 360), resample=Image.Resampling.BILINEAR, fillcolor="white")
    return img.filter(ImageFilter.GaussianBlur(1.2)).resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def make_demo_dataset(folder: Path, per_class: int = 24, seed: int = 0) -> Path:
    """Write <folder>/<class>/<n>.jpg once; a finished copy (marker file) is reused."""
    folder = Path(folder)
    marker = folder / f".complete-v{VERSION}-{per_class}"
    if marker.exists():
        return folder
    rng = random.Random(seed)
    for name, (colour, shape) in DEMO_CLASSES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_fruit(colour, shape, rng).save(folder / name / f"{i:03d}.jpg", quality=92)
    marker.touch()
    return folder
