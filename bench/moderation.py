#!/usr/bin/env python3
"""Moderation frames per second on one core: the stage's NudeNet path against bench/references/limits_nudenet.py.

Both in this process, pinned to one core, one ONNX thread, alternating rounds on the same 20 reference frames:
  reference    limits_nudenet: NudeDetector.detect on each full 1280x720 JPEG, one at a time
  framewatch   NudeNetBackend.moderate on the 320x180 thumbnails the fetch stage makes of those frames, in the
               batches the stage forms when its queue is deep (8), read from a blob directory like the stage does

    .venv/bin/python bench/moderation.py [--seconds 4] [--rounds 2] [--batch 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))
from _harness import REFERENCES

sys.path.insert(0, str(REFERENCES))
import onnxruntime as ort
from frames import frames
from nudenet import NudeDetector

from framewatch.blobs.backends.local import LocalBlobStore
from framewatch.blobs.base import Blob
from schemas.messages import CallbackReceived, FrameStored, StoredImage
from workers.fetch.images import process
from workers.moderate.backends.nudenet import NudeNetBackend
from workers.moderate.thresholds import Thresholds


def reference_detector() -> NudeDetector:
    """Exactly as limits_nudenet.py builds it: one intra-op and inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    detector = NudeDetector()
    model = os.path.join(os.path.dirname(__import__("nudenet").__file__), "320n.onnx")
    detector.onnx_session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return detector


async def stored_frames(store: LocalBlobStore, data: list[bytes]) -> list[FrameStored]:
    result = []
    for n, frame_bytes in enumerate(data):
        thumb = process(frame_bytes, [(320, 180), (160, 90)], 10**8).thumbnails[0]
        key = f"bench/{n}_320x180.jpg"
        await store.put(Blob(key, thumb.data, "image/jpeg"))
        image = StoredImage(key=key, url="", width=thumb.width, height=thumb.height, bytes=len(thumb.data),
                            content_type="image/jpeg")  # fmt: skip
        callback = CallbackReceived(id=str(n), provider="tencent", domain="d", kind="screenshot", event_type=200,
                                    received_at=0, event={})  # fmt: skip
        frame = FrameStored(id=str(n), provider="tencent", domain="d", stream_id="s", capture_time=n, source_url="",
                            sha256="", original=image, thumbnails=[image], callback=callback)  # fmt: skip
        result.append(frame)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    data = frames()
    detector = reference_detector()
    store = LocalBlobStore(Path(tempfile.mkdtemp(prefix="fwbench-moderation-")), "http://bench")
    stored = await stored_frames(store, data)
    backend = NudeNetBackend(store, Thresholds(), threads=1)
    await backend.start()

    def reference_rate() -> float:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            detector.detect(data[n % len(data)])
            n += 1
        return n / (time.perf_counter() - started)

    async def framewatch_rate() -> float:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            batch = [stored[(n + i) % len(stored)] for i in range(args.batch)]
            await backend.moderate(batch)
            n += len(batch)
        return n / (time.perf_counter() - started)

    detector.detect(data[0])
    await backend.moderate(stored[:1])
    reference = framewatch = 0.0
    for _ in range(args.rounds):
        reference = max(reference, reference_rate())
        framewatch = max(framewatch, await framewatch_rate())
    await backend.close()
    print(f"reference (limits_nudenet, full frames)  {reference:6.1f} frames/s/core")
    print(f"framewatch moderation stage (batch {args.batch})   {framewatch:6.1f} frames/s/core   "
          f"{framewatch / reference:4.2f}x (target 1.5x)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
