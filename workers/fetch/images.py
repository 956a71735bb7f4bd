"""Check a downloaded frame and make its thumbnails: header first, then one decode at reduced scale.

Runs in a worker thread: Pillow releases the GIL while it decodes, resizes and encodes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from workers.failures import Permanent

# Magic bytes: what the body says it is, whatever the URL or the Content-Type claim.
FORMATS = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ENCODERS = {"jpeg": ("JPEG", "image/jpeg", "jpg"), "webp": ("WEBP", "image/webp", "webp")}

# Pillow's own bomb check would raise only at twice its limit; ours is explicit and runs before decoding.
Image.MAX_IMAGE_PIXELS = None


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
    phash: str  # the difference hash of the smallest thumbnail: near-identical frames differ in a few bits


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
    kind, image = _open(data, max_pixels)
    return 0 if kind == "JPEG" else image.width * image.height


def process(
    data: bytes, boxes: list[tuple[int, int]], max_pixels: int, encoding: str = "jpeg", quality: int = 80
) -> Frame:
    """Validate and thumbnail one frame. Raises Permanent for anything that is not a sound, bounded image."""
    kind, image = _open(data, max_pixels)
    width, height = image.size  # from the header: nothing decoded yet
    largest = max(boxes, key=lambda box: box[0] * box[1])
    # Rotated frames swap sides; ask the decoder for enough pixels in either orientation.
    draft_box = (max(largest), max(largest)) if _rotated(image) else largest
    fmt, _, _ = ENCODERS[encoding]
    if kind == "JPEG":
        image.draft("RGB", draft_box)  # shrink-on-load: the decoder skips the pixels it would throw away
    try:
        image.load()
    except Exception as exc:  # truncated or corrupt data
        raise Permanent("corrupt_image", f"{type(exc).__name__}: {exc}") from None
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    made: dict[tuple[int, int], Thumbnail] = {}
    # Largest first; each smaller size is made from the previous one, never from the full frame again.
    for box in sorted(set(boxes), key=lambda b: b[0] * b[1], reverse=True):
        # reducing_gap=1: integer factors go through reduce() (a box average), far cheaper than a resampling pass.
        image.thumbnail(box, Image.Resampling.BICUBIC, reducing_gap=1.0)
        out = io.BytesIO()
        image.save(out, fmt, quality=quality)
        made[box] = Thumbnail(image.width, image.height, out.getvalue())
    thumbnails = [made[box] for box in boxes]
    digest = hashlib.sha256(data).hexdigest()
    return Frame(kind, CONTENT_TYPES[kind], width, height, digest, thumbnails, difference_hash(image))


def difference_hash(image: Image.Image) -> str:
    """64 bits, one per pair of neighbouring pixels of a 9x8 grey copy: whether brightness rises left to right.
    A frame's re-encoding or noise flips few of them; a cut, a pan or a new object in a part of the frame, many.
    Made from the smallest thumbnail, already in memory: about 20 microseconds."""
    pixels = image.convert("L").resize((9, 8), Image.Resampling.BOX).tobytes()
    bits = 0
    for row in range(8):
        line = pixels[row * 9 : row * 9 + 9]
        for column in range(8):
            bits = bits << 1 | (line[column] < line[column + 1])
    return f"{bits:016x}"


def _rotated(image: Image.Image) -> bool:
    try:
        return image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation that swaps width and height
    except Exception:
        return False
