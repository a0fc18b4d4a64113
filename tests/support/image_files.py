"""Odd and broken image files, written by code, for the bad-input tests."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _gradient(size=(120, 90)) -> Image.Image:
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 128, np.uint8)], axis=-1)
    return Image.fromarray(rgb, "RGB")


def jpeg_bytes(img: Image.Image | None = None, **save) -> bytes:
    buffer = io.BytesIO()
    (img or _gradient()).save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png_header(width=100_000, height=100_000) -> bytes:
    """A PNG whose header claims absurd dimensions (the pixels never need to exist)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


# name -> bytes of every kind of file the job must survive; True = decodes, False = error row
def odd_files() -> dict[str, tuple[bytes, bool]]:
    base = _gradient()
    palette_with_alpha = base.convert("P", palette=Image.Palette.ADAPTIVE)
    palette_with_alpha.info["transparency"] = 0
    return {
        "grayscale.jpg": (jpeg_bytes(base.convert("L")), True),
        "cmyk.jpg": (jpeg_bytes(base.convert("CMYK")), True),
        "rgba.png": (png_bytes(base.convert("RGBA")), True),
        "palette.png": (png_bytes(palette_with_alpha), True),
        "sixteen_bit.png": (
            png_bytes(Image.fromarray(np.arange(0, 65000, 8, dtype=np.uint16)[:8100].reshape(90, 90))),
            True,
        ),
        "UPPER.JPG": (jpeg_bytes(base), True),
        "large_photo.jpeg": (jpeg_bytes(_gradient((4000, 3000)), quality=85), True),
        "zero_bytes.jpg": (b"", False),
        "truncated.jpg": (jpeg_bytes(base)[:600], False),
        "text.jpg": (b"this is a shopping list, not a picture\n" * 20, False),
        "absurd.png": (huge_png_header(), False),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
