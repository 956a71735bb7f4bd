"""Check a downloaded frame and make its thumbnails: header first, then one decode at reduced scale.

A JPEG made into JPEG thumbnails goes through libjpeg-turbo's own interface (simplejpeg): it decodes straight to
the smallest eighth of the frame that still covers the largest thumbnail (3/8 of a 1080p frame for 640x360, where
Pillow's draft stops at 1/2) and encodes from the decoded pixels without a copy; Pillow reads the header and the
orientation and resizes. Anything it cannot take (CMYK, a damaged file) is done by Pillow alone, whose checks say
what is wrong. Runs in a worker thread: both release the GIL while they decode, resize and encode.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image, ImageOps

from workers.failures import Permanent

# Magic bytes: what the body says it is, whatever the URL or the Content-Type claim.
FORMATS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ENCODERS = {"jpeg": ("JPEG", "image/jpeg", "jpg"), "webp": ("WEBP", "image/webp", "webp")}

# Pillow's own bomb check would raise only at twice its limit; ours is explicit and runs before decoding.
Image.MAX_IMAGE_PIXELS = None

# EXIF orientation -> the transpose that shows the frame upright (Pillow's ImageOps.exif_transpose's table).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class Thumbnail:
    width: int
    height: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Frame:
    format: str  # JPEG, PNG or WEBP
    content_type: str
    width: int
    height: int
    sha256: str
    thumbnails: list[Thumbnail]
    phash: str | None  # the smallest thumbnail's difference hash (None unasked): near-identical frames differ little


def sniff(data: bytes) -> str:
    for magic, name in FORMATS.items():
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise Permanent("not_an_image", f"starts with {data[:8].hex()}")


def _open(data: bytes, max_pixels: int) -> tuple[str, Image.Image]:
    """The image's format and header, nothing decoded yet; refused past the pixel cap."""
    kind = sniff(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Exception as exc:
        raise Permanent("not_an_image", f"{type(exc).__name__}: {exc}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise Permanent("too_many_pixels", f"{width}x{height} exceeds {max_pixels} pixels")
    return kind, image


def decodes_in_full(data: bytes, max_pixels: int) -> int:
    """How many pixels decoding this frame costs at full scale: 0 for a JPEG, which decodes at reduced scale
    (shrink-on-load) whatever size it declares; the declared size for the formats that have no such mode."""
    if sniff(data) == "JPEG":  # the magic is enough: process() reads the header and applies the cap
        return 0
    _, image = _open(data, max_pixels)
    return image.width * image.height


def process(
    data: bytes,
    boxes: list[tuple[int, int]],
    max_pixels: int,
    encoding: str = "jpeg",
    quality: int = 80,
    hashed: bool = True,
) -> Frame:
    """Validate and thumbnail one frame. Raises Permanent for anything that is not a sound, bounded image.
    `hashed=False` skips the difference hash: only moderation's reuse reads it."""
    kind, image = _open(data, max_pixels)
    width, height = image.size  # from the header: nothing decoded yet
    orientation = _orientation(image)
    largest = max(boxes, key=lambda box: box[0] * box[1])
    # Rotated frames swap sides; ask the decoder for enough pixels in either orientation.
    turned = orientation in (5, 6, 7, 8)
    least = (max(largest), max(largest)) if turned else largest
    upright = (height, width) if turned else (width, height)
    made = None
    if kind == "JPEG" and encoding == "jpeg" and image.mode in ("RGB", "L"):
        made = _thumbnails_turbo(data, image.mode, upright, least, orientation, boxes, quality)
    if made is None:
        made = _thumbnails_pillow(kind, image, upright, least, boxes, encoding, quality)
    by_box, smallest = made
    digest = hashlib.sha256(data).hexdigest()
    phash = difference_hash(smallest) if hashed else None
    return Frame(kind, CONTENT_TYPES[kind], width, height, digest, [by_box[box] for box in boxes], phash)


# Each box's thumbnail, and the smallest as an image (its difference hash is the frame's).
Made = tuple[dict[tuple[int, int], Thumbnail], Image.Image]


def _largest_first(boxes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each smaller size is made from the previous one, never from the full frame again; the last is the smallest."""
    return sorted(set(boxes), key=lambda box: box[0] * box[1], reverse=True)


def fitted(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The frame's size fitted into the box, its aspect kept, never enlarged: Pillow's thumbnail() rule, applied to
    the frame's own size so a reduced-scale decode's rounding never shows in the result."""
    width, height = size
    x, y = box
    if x >= width and y >= height:
        return size
    aspect = width / height
    if x / y >= aspect:
        return max(min(math.floor(y * aspect), math.ceil(y * aspect), key=lambda n: abs(aspect - n / y)), 1), y
    exact = x / aspect
    return x, max(min(math.floor(exact), math.ceil(exact), key=lambda n: abs(aspect - x / n) if n else 0), 1)


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    width, height = image.size
    if width % size[0] == 0 and height % size[1] == 0:
        # An exact integer factor: reduce() alone (a box average). resize() would follow it with a bicubic pass at
        # scale one, the same pixels for a third more time.
        return image.reduce((width // size[0], height // size[1]))
    # reducing_gap=1: integer factors go through reduce() (a box average), far cheaper than a resampling pass.
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)


def _thumbnails_turbo(
    data: bytes,
    mode: str,
    upright: tuple[int, int],
    least: tuple[int, int],
    orientation: int,
    boxes: list[tuple[int, int]],
    quality: int,
) -> Made | None:
    """libjpeg-turbo decodes at the reduced scale and encodes; None for what it will not take (Pillow will)."""
    grey = mode == "L"
    layout, colorspace, subsampling = ("L", "GRAY", "Gray") if grey else ("RGBX", "RGBX", "420")
    try:  # strict: a damaged stream is refused here, then described by Pillow
        pixels = simplejpeg.decode_jpeg(
            data, colorspace, fastdct=True, fastupsample=True, min_width=least[0], min_height=least[1]
        )
    except ValueError:
        return None
    # A view of the decoded pixels, no copy: four bytes a pixel is Pillow's own layout for RGB.
    image = Image.frombuffer(layout, (pixels.shape[1], pixels.shape[0]), pixels, "raw", layout, 0, 1)
    if orientation in UPRIGHT:
        image = image.transpose(UPRIGHT[orientation])
    decoded = orientation not in UPRIGHT  # still the decoder's array, which the encoder reads in place
    made: dict[tuple[int, int], Thumbnail] = {}
    for box in _largest_first(boxes):
        before = image.size
        image = _resized(image, fitted(upright, box))
        decoded = decoded and image.size == before
        source = pixels if decoded else np.asarray(image).reshape(image.height, image.width, -1)
        encoded = simplejpeg.encode_jpeg(source, quality, colorspace, subsampling, fastdct=True)
        made[box] = Thumbnail(image.width, image.height, encoded)
    return made, image


def _thumbnails_pillow(
    kind: str,
    image: Image.Image,
    upright: tuple[int, int],
    least: tuple[int, int],
    boxes: list[tuple[int, int]],
    encoding: str,
    quality: int,
) -> Made:
    fmt, _, _ = ENCODERS[encoding]
    if kind == "JPEG":
        image.draft("RGB", least)  # shrink-on-load: the decoder skips the pixels it would throw away
    try:
        image.load()
    except Exception as exc:  # truncated or corrupt data
        raise Permanent("corrupt_image", f"{type(exc).__name__}: {exc}") from None
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    made: dict[tuple[int, int], Thumbnail] = {}
    for box in _largest_first(boxes):
        image = _resized(image, fitted(upright, box))
        out = io.BytesIO()
        image.save(out, fmt, quality=quality)
        made[box] = Thumbnail(image.width, image.height, out.getvalue())
    return made, image


def difference_hash(image: Image.Image) -> str:
    """64 bits, one per pair of neighbouring pixels of a 9x8 grey copy: whether brightness rises left to right.
    A frame's re-encoding or noise flips few of them; a cut, a pan or a new object in a part of the frame, many.
    Made from the smallest thumbnail, already in memory: about 80 microseconds, most of it the grey copy."""
    grey = np.frombuffer(image.convert("L").resize((9, 8), Image.Resampling.BOX).tobytes(), np.uint8).reshape(8, 9)
    bits = int.from_bytes(np.packbits(grey[:, :-1] < grey[:, 1:]).tobytes(), "big")
    return f"{bits:016x}"


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))  # EXIF orientation; 5 to 8 swap width and height
    except Exception:
        return 1
