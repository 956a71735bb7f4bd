"""Thumbnails as a viewer would see them: upright, the right size, the right colours, whatever the JPEG holds."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from workers.failures import Permanent
from workers.fetch.images import process

BOXES = [(320, 180), (160, 90)]


def halves(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", size, top)
    image.paste(bottom, (0, size[1] // 2, size[0], size[1]))
    return image


def encoded(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def shown(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel, colour, strict=False))


RED, BLUE = (220, 20, 20), (20, 20, 220)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (854, 480)])
def test_each_box_gets_its_size_and_the_frame_its_colours(size: tuple[int, int]) -> None:
    frame = process(encoded(halves(size, RED, BLUE)), BOXES, 10**8)
    assert (frame.width, frame.height, frame.format) == (*size, "JPEG")
    for box, thumb in zip(BOXES, frame.thumbnails, strict=True):
        assert (thumb.width, thumb.height) == (box[0], round(box[0] * size[1] / size[0]))
        image = shown(thumb.data)
        assert image.size == (thumb.width, thumb.height)
        assert near(image.getpixel((thumb.width // 2, 2)), RED)
        assert near(image.getpixel((thumb.width // 2, thumb.height - 3)), BLUE)


def test_a_rotated_camera_frame_is_thumbnailed_upright() -> None:
    """EXIF orientation 6: stored landscape, shown turned a quarter clockwise, so the stored top is on the right."""
    exif = Image.Exif()
    exif[0x0112] = 6
    frame = process(encoded(halves((1280, 720), RED, BLUE), exif=exif.tobytes()), BOXES, 10**8)
    big = frame.thumbnails[0]
    assert (big.width, big.height) == (101, 180)  # portrait, fitted to the box's height
    image = shown(big.data)
    assert near(image.getpixel((big.width - 3, big.height // 2)), RED)
    assert near(image.getpixel((2, big.height // 2)), BLUE)


def test_a_grey_frame_stays_grey() -> None:
    frame = process(encoded(Image.new("L", (1280, 720), 200)), BOXES, 10**8)
    for thumb in frame.thumbnails:
        image = Image.open(io.BytesIO(thumb.data))
        assert image.mode == "L" and abs(image.getpixel((5, 5)) - 200) < 4


def test_a_cmyk_frame_is_thumbnailed_in_rgb() -> None:
    """libjpeg-turbo will not convert CMYK; Pillow does, and the thumbnails are ordinary RGB JPEGs."""
    frame = process(encoded(halves((1280, 720), RED, BLUE).convert("CMYK")), BOXES, 10**8)
    image = Image.open(io.BytesIO(frame.thumbnails[0].data))
    assert image.mode == "RGB" and image.size == (320, 180)
    assert near(image.getpixel((160, 2)), RED)


def test_a_damaged_jpeg_is_refused_as_corrupt() -> None:
    data = encoded(halves((1280, 720), RED, BLUE))
    with pytest.raises(Permanent) as refused:
        process(data[: len(data) // 2], BOXES, 10**8)
    assert refused.value.reason == "corrupt_image"


def test_webp_thumbnails_and_their_sizes() -> None:
    frame = process(encoded(halves((1280, 720), RED, BLUE)), BOXES, 10**8, encoding="webp")
    for box, thumb in zip(BOXES, frame.thumbnails, strict=True):
        image = Image.open(io.BytesIO(thumb.data))
        assert image.format == "WEBP" and image.size == (box[0], box[1])


def test_near_identical_frames_hash_alike_and_a_cut_does_not() -> None:
    one = process(encoded(halves((1280, 720), RED, BLUE)), BOXES, 10**8).phash
    again = process(encoded(halves((1280, 720), (222, 22, 18), BLUE)), BOXES, 10**8).phash
    cut = process(encoded(halves((1280, 720), BLUE, RED).rotate(90, expand=False)), BOXES, 10**8).phash
    distance = lambda a, b: bin(int(a, 16) ^ int(b, 16)).count("1")  # noqa: E731
    assert distance(one, again) <= 2 and distance(one, cut) > 8


def test_without_moderation_the_hash_is_skipped_and_the_thumbnails_are_the_same() -> None:
    data = encoded(halves((1280, 720), RED, BLUE))
    hashed, unhashed = process(data, BOXES, 10**8), process(data, BOXES, 10**8, hashed=False)
    assert unhashed.phash is None and hashed.phash is not None
    assert [t.data for t in unhashed.thumbnails] == [t.data for t in hashed.thumbnails]
