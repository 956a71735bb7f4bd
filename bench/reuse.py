#!/usr/bin/env python3
"""Moderation reuse: how many model calls a template's `moderation_reuse_seconds` saves, and what it misses.

Synthetic 1280x720 streams, one screenshot every INTERVAL seconds, each made into the fetch stage's thumbnails by
its own code (workers/fetch/images.py, the default sizes) and judged by the moderate stage's own reuse rule
(workers/moderate/reuse.py); the "model" is an oracle that flags a frame when flagged content (pure red) covers at
least FLAG_AREA of it.

- moving: a scene that pans, with people moving, and a cut to another scene every 12 frames;
- static: a fixed camera on a slide, sensor noise and a ticking clock;
- partial: the static scene where flagged content appears in part of the frame (2% to 40% of it) for 6 frames,
  at different moments: each frame the oracle would flag and that carried a safe verdict is a miss; how late
  each appearance was caught is the capture time from its first frame to the first one the model judged.

    .venv/bin/python bench/reuse.py [--max-age 30] [--distances 2,4,6,8]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from schemas.messages import CallbackReceived, FrameStored, StoredImage, Verdict
from workers.fetch import images
from workers.moderate.reuse import Reuse

INTERVAL = 5  # seconds between a stream's screenshots (CSS's default is 10; many platforms ask for 5)
FLAG_AREA = 0.02
SIZES = [(320, 180), (160, 90)]


def encode(image: Image.Image, quality: int = 80) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def noisy(image: Image.Image, rng: random.Random, amount: int = 6) -> Image.Image:
    noise = Image.effect_noise(image.size, amount).convert("RGB")
    return Image.blend(image, noise, 0.06 + rng.random() * 0.02)


def moving(n: int, rng: random.Random) -> tuple[bytes, float]:
    cut = n // 12
    scene = random.Random(cut)
    base = tuple(scene.randrange(30, 200) for _ in range(3))
    image = Image.new("RGB", (1280, 720), base)
    draw = ImageDraw.Draw(image)
    pan = (n % 12) * 40
    for _ in range(8):  # the set, panning
        x = (scene.randrange(0, 1600) - pan) % 1600 - 160
        draw.rectangle(
            (x, scene.randrange(0, 400), x + 220, 720), fill=tuple(scene.randrange(0, 255) for _ in range(3))
        )
    for _ in range(3):  # people moving
        x = (scene.randrange(100, 1100) + (n % 12) * scene.randrange(-60, 60)) % 1180
        draw.ellipse((x, 200, x + 100, 300), fill=(220, 180, 150))
        draw.rectangle((x - 20, 300, x + 120, 600), fill=tuple(scene.randrange(0, 255) for _ in range(3)))
    return encode(noisy(image, rng)), 0.0


def slide() -> Image.Image:
    image = Image.new("RGB", (1280, 720), (235, 235, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((80, 60, 1200, 140), fill=(30, 60, 140))
    for row in range(6):
        draw.rectangle((120, 200 + row * 70, 900 - row * 60, 230 + row * 70), fill=(90, 90, 100))
    draw.ellipse((980, 260, 1180, 460), fill=(200, 120, 40))
    return image


SLIDE = slide()


def static(n: int, rng: random.Random) -> tuple[bytes, float]:
    image = SLIDE.copy()
    ImageDraw.Draw(image).text((1150, 680), f"{n * INTERVAL // 60:02d}:{n * INTERVAL % 60:02d}", fill=(0, 0, 0))
    return encode(noisy(image, rng), 75 + rng.randrange(10)), 0.0


def partial(n: int, rng: random.Random, area: float, start: int, length: int = 6) -> tuple[bytes, float]:
    image = SLIDE.copy()
    flagged = 0.0
    if start <= n < start + length:
        width, height = int(1280 * area**0.5), int(720 * area**0.5)
        x, y = rng.randrange(0, 1280 - width), rng.randrange(0, 720 - height)
        ImageDraw.Draw(image).rectangle((x, y, x + width, y + height), fill=(250, 10, 10))
        flagged = area
    return encode(noisy(image, rng), 75 + rng.randrange(10)), flagged


def frame(n: int, phash: str, stream: str) -> FrameStored:
    shot = StoredImage(key="k", url="u", width=1280, height=720, bytes=1, content_type="image/jpeg")
    callback = CallbackReceived.model_construct(id=f"{stream}-{n}")
    return FrameStored.model_construct(
        id=f"{stream}-{n}", provider="tencent", domain="bench.live", stream_id=stream, capture_time=n * INTERVAL,
        source_url="", sha256="", original=shot, thumbnails=[], callback=callback, phash=phash,
    )  # fmt: skip


def run(stream: list[tuple[str, float]], name: str, distance: int, max_age: int) -> tuple[int, list[int], list]:
    """(model calls, missed frames' numbers, each appearance's lateness in seconds: None when never caught)."""
    reuse = Reuse(distance)
    calls, missed, late = 0, [], []
    since: int | None = None  # the first frame of the flagged content in view, until the model saw it
    showing = False
    for n, (phash, flagged_area) in enumerate(stream):
        stored = frame(n, phash, name)
        flagged = flagged_area >= FLAG_AREA
        if flagged and not showing:
            since, showing = n, True
        if not flagged and showing:
            if since is not None:
                late.append(None)  # gone before the model saw it
            since, showing = None, False
        carried = reuse.carried(stored, max_age)
        if carried is not None:
            if flagged:
                missed.append(n)
            continue
        calls += 1
        if flagged and since is not None:
            late.append((n - since) * INTERVAL)
            since = None
        reuse.judged(stored, Verdict(suggestion="Block" if flagged else "Pass", source="oracle"))
    if showing and since is not None:
        late.append(None)
    return calls, missed, late


def hashes(make, count: int, seed: int, **kwargs) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        data, flagged = make(n, rng, **kwargs)
        out.append((images.process(data, SIZES, 16_000_000).phash, flagged))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-age", type=int, default=30, help="the template's moderation_reuse_seconds")
    parser.add_argument("--distances", default="2,4,6,8")
    parser.add_argument("--frames", type=int, default=120, help="per stream")
    args = parser.parse_args()
    distances = [int(d) for d in args.distances.split(",")]
    streams = {"moving": hashes(moving, args.frames, 1), "static": hashes(static, args.frames, 2)}
    appearances = {
        f"partial {int(area * 100)}% at {start}": hashes(partial, 40, 10 + k, area=area, start=start)
        for k, (area, start) in enumerate((a, s) for a in (0.02, 0.05, 0.1, 0.2, 0.4) for s in (3, 10, 17))
    }
    print(f"one screenshot every {INTERVAL} s, reuse for {args.max_age} s, {args.frames} frames per stream")
    for distance in distances:
        parts = []
        for name, stream in streams.items():
            calls, _, _ = run(stream, name, distance, args.max_age)
            parts.append(f"{name}: {100 * (1 - calls / len(stream)):.0f}% of model calls saved")
        missed = late = never = total_flagged = worst = 0
        for name, stream in appearances.items():
            _, misses, lateness = run(stream, name, distance, args.max_age)
            missed += len(misses)
            total_flagged += sum(1 for _, area in stream if area >= FLAG_AREA)
            late += sum(1 for seconds in lateness if seconds)
            never += sum(1 for seconds in lateness if seconds is None)
            worst = max([worst, *(seconds for seconds in lateness if seconds)])
        parts.append(
            f"partial content: {missed} of {total_flagged} flagged frames carried as safe, "
            f"{late} of {len(appearances)} appearances caught late (worst {worst} s), {never} never"
        )
        print(f"distance {distance}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
