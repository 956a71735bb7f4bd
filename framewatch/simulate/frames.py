"""The simulated streams' screenshots: JPEGs with the stream id and capture time drawn on them."""

from __future__ import annotations

import hashlib
import io
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

_FONT = ImageFont.load_default_imagefont()  # a bitmap font: several times cheaper than FreeType per frame


@cache
def _background(stream: str, width: int, height: int) -> Image.Image:
    """A stream's own colours and shapes, so frames of different streams differ at a glance."""
    d = hashlib.sha256(stream.encode()).digest()
    gradient = Image.linear_gradient("L").rotate(d[0] % 360).resize((width, height))
    image = ImageOps.colorize(gradient, (d[1], d[2], d[3]), (d[4], d[5], d[6]))
    draw = ImageDraw.Draw(image)
    for i in range(4):
        x, y, r = d[7 + i] * width // 256, d[11 + i] * height // 256, 10 + d[15 + i] * height // 1024
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(d[19 + i], d[23 + i], d[27 + i]))
    return image


def render(stream: str, sequence: int, captured_at: float, width: int, height: int) -> bytes:
    """Deterministic: the same arguments always give the same bytes (a re-fetch sees the announced file_size)."""
    label = Image.new("RGB", (width // 2, 14))
    ImageDraw.Draw(label).text((4, 1), f"{stream}  #{sequence}  t={captured_at:.3f}", fill=(255, 255, 255), font=_FONT)
    image = _background(stream, width, height).copy()
    image.paste(label.resize((width, 28), Image.Resampling.NEAREST))  # twice the bitmap size: readable
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()
