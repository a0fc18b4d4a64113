"""Decode and validate image bytes into fixed-size RGB arrays (pure: no Spark, no TF).

A file that cannot become a usable image raises `BadImage` with a short reason; the
featurize stage turns that into an error row instead of failing the job.

Small plain JPEGs (the common case: Fruits-360 is 100x100) take a fast path through
libjpeg-turbo directly (simplejpeg): a third of Pillow's decode cost, the same pixels.
Everything else (PNG, EXIF orientation, CMYK, photos big enough for DCT scaling, and
anything the fast path refuses) goes through Pillow, which also words the errors.
"""

import io

import numpy as np
import simplejpeg
from PIL import Image, ImageOps

# Far beyond any real photo (a 100 MP camera is 1e8): larger is a decompression bomb.
MAX_PIXELS = 150_000_000
MIN_SIDE = 8
# Our own MAX_PIXELS check (on the header, before any pixel is decoded) replaces Pillow's,
# so the error row can say which dimensions were refused.
Image.MAX_IMAGE_PIXELS = None

EMPTY_FILE = "empty file (0 bytes)"


class BadImage(ValueError):
    """The bytes are not a usable image; the message is the reason recorded in the error row."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparency is composited onto white (the Fruits-360 background)."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit / float grayscale: stretch to 8 bits rather than clip to white.
        values = np.asarray(img, dtype=np.float64)
        span = values.max() - values.min()
        scaled = (values - values.min()) * (255.0 / span) if span else np.zeros_like(values)
        img = Image.fromarray(scaled.astype(np.uint8), mode="L")
    return img.convert("RGB")


def _resized(rgb: Image.Image, size: int) -> Image.Image:
    if rgb.size == (size, size):
        return rgb
    return rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)


_JPEG_START = b"\xff\xd8"
_EXIF = b"Exif\x00\x00"  # an APP1 EXIF block may rotate the image: Pillow applies it
_FAST_COLORSPACES = ("YCbCr", "Gray")  # what libjpeg-turbo turns into RGB as Pillow does


def _fast_jpeg(data: bytes, size: int) -> np.ndarray | None:
    """The fast path's result, or None where Pillow must decode (the same pixels either way:
    libjpeg-turbo with Pillow's settings, then Pillow's own resize)."""
    if not data.startswith(_JPEG_START) or data.find(_EXIF, 0, 65536) >= 0:
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        # At 2x the model size Pillow's draft() would decode at a DCT scale: leave it that case.
        if (
            colorspace not in _FAST_COLORSPACES
            or min(width, height) < MIN_SIDE
            or min(width, height) >= 2 * size
            or width * height > MAX_PIXELS
        ):
            return None
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        return None  # corrupt or unusual: Pillow decides, and says why
    if pixels.shape[:2] == (size, size):
        return pixels
    rgb = Image.frombuffer("RGB", (width, height), pixels, "raw", "RGB", 0, 1)
    return np.asarray(_resized(rgb, size), dtype=np.uint8)


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Bytes of a JPEG/PNG (or anything Pillow reads) -> uint8 array (size, size, 3)."""
    if not data:
        raise BadImage(EMPTY_FILE)
    fast = _fast_jpeg(data, size)
    return fast if fast is not None else decode_with_pillow(data, size)


def decode_with_pillow(data: bytes, size: int) -> np.ndarray:
    """decode_image without the fast path: any format, EXIF orientation, DCT-scaled drafts."""
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise BadImage(f"absurd dimensions {width}x{height} (over {MAX_PIXELS:,} pixels)")
        if min(width, height) < MIN_SIDE:
            raise BadImage(f"too small ({width}x{height}, need at least {MIN_SIDE} px a side)")
        # JPEG: let libjpeg decode at 1/2..1/8 scale, so a 4000x3000 photo costs little.
        img.draft("RGB", (size, size))
        img = ImageOps.exif_transpose(img)
        img.load()
        rgb = _resized(_to_rgb(img), size)
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image (Pillow cannot identify the format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"corrupt image: {exc}") from None
    return np.asarray(rgb, dtype=np.uint8)
