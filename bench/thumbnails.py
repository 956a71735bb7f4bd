#!/usr/bin/env python3
"""Thumbnails per core: the fetch stage's image path against bench/references/limits_thumb.py, same frames, one run.

Both run in this process, pinned to one core, alternating for several rounds:
  reference     limits_thumb's pillow+draft (shrink-on-load, one 320x180 JPEG per frame)
  framewatch    images.process: magic bytes, header and pixel checks, sha256, EXIF orientation, shrink-on-load,
                the same single 320x180 JPEG (the same job), and then the default two sizes (320x180 + 160x90)

    .venv/bin/python bench/thumbnails.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES

sys.path.insert(0, str(REFERENCES))
import limits_thumb

from workers.fetch.images import process

MAX_PIXELS = 40_000_000


def rate(fn: Callable[[bytes], object], frames: list[bytes], seconds: float) -> float:
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn(frames[n % len(frames)])
        n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    frames = limits_thumb.FRAMES
    contenders = {
        "reference pillow+draft": lambda d: limits_thumb.pillow(d, True),
        "framewatch, 320x180": lambda d: process(d, [(320, 180)], MAX_PIXELS),
        "framewatch, 320x180+160x90": lambda d: process(d, [(320, 180), (160, 90)], MAX_PIXELS),
    }
    for fn in contenders.values():
        fn(frames[0])
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            best[name] = max(best[name], rate(fn, frames, args.seconds))
    reference = best["reference pillow+draft"]
    print(f"frames: {len(frames)} x 1280x720 JPEG, avg {sum(map(len, frames)) // len(frames)} bytes; one core")
    for name, value in best.items():
        print(f"{name:30s} {value:8.1f} frames/s   {value / reference:5.2f}x reference")


if __name__ == "__main__":
    main()
