#!/usr/bin/env python3
"""Thumbnails per core: the fetch stage's image path against bench/references/limits_thumb.py, same frames, one run.

Both run in this process, pinned to one core, alternating for several rounds:
  reference     limits_thumb's pillow+draft (shrink-on-load, one 320x180 JPEG per frame), and the same job made
                with two sizes as the Celery reference pipeline makes them (one draft decode to the larger size,
                Pillow's thumbnail() for each size in turn, each encoded): framewatch's defaults (320x180 +
                160x90) and the reference pipeline's (640x360 + 320x180)
  framewatch    images.process: magic bytes, header and pixel checks, sha256, EXIF orientation, the DCT-scaled
                decode, the same thumbnails; each figure against the reference doing the same sizes

    .venv/bin/python bench/thumbnails.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES

sys.path.insert(0, str(REFERENCES))
import limits_thumb
from PIL import Image

from workers.fetch.images import process

MAX_PIXELS = 40_000_000


def rate(fn: Callable[[bytes], object], frames: list[bytes], seconds: float) -> float:
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn(frames[n % len(frames)])
        n += 1
    return n / (time.perf_counter() - started)


def reference_sizes(data: bytes, sizes: list[tuple[int, int]]) -> list[bytes]:
    """limits_thumb's pillow+draft, made with several sizes (limits_pipeline.py's thumbnails())."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", sizes[0])
    image.load()
    made = []
    for size in sizes:
        image.thumbnail(size)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
        made.append(out.getvalue())
    return made


JOBS = {"320x180": [(320, 180)], "320x180+160x90": [(320, 180), (160, 90)], "640x360+320x180": [(640, 360), (320, 180)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    frames = limits_thumb.FRAMES
    contenders: dict[str, Callable[[bytes], object]] = {"reference 320x180": lambda d: limits_thumb.pillow(d, True)}
    for job, sizes in JOBS.items():
        if len(sizes) > 1:
            contenders[f"reference {job}"] = lambda d, sizes=sizes: reference_sizes(d, sizes)
        contenders[f"framewatch {job}"] = lambda d, sizes=sizes: process(d, sizes, MAX_PIXELS)
    for fn in contenders.values():
        fn(frames[0])
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            best[name] = max(best[name], rate(fn, frames, args.seconds))
    print(f"frames: {len(frames)} x 1280x720 JPEG, avg {sum(map(len, frames)) // len(frames)} bytes; one core")
    for name, value in best.items():
        print(f"{name:28s} {value:8.1f} frames/s  {1000 / value:6.2f} ms CPU per frame")
    for job in JOBS:
        ours, theirs = best[f"framewatch {job}"], best[f"reference {job}"]
        print(f"ratio (framewatch / reference pillow+draft), {job}: {ours / theirs:.2f}x per core")


if __name__ == "__main__":
    main()
