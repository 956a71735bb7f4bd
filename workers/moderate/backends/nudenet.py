"""NudeNet's detector (ONNX, CPU) on the thumbnail the fetch stage already made, in batches.

The reference decodes each full 1280x720 frame and runs the model once per frame; here a 320x180 JPEG is decoded
(16 times fewer pixels), padded to the model's square input, and frames waiting together share one model run.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from framewatch.blobs.base import BlobStore
from schemas.messages import FrameStored, StoredImage, Verdict
from workers.moderate.backends.base import ModerationBackend, read_image
from workers.moderate.thresholds import Thresholds

INPUT = 320  # the 320n model's input size (longest side)
STRIDE = 32  # its input sides must be multiples of this
# Detector classes that make a frame a violation; the others (faces, covered parts, feet) are not.
EXPOSED = {
    "FEMALE_BREAST_EXPOSED": "Porn",
    "FEMALE_GENITALIA_EXPOSED": "Porn",
    "MALE_GENITALIA_EXPOSED": "Porn",
    "ANUS_EXPOSED": "Porn",
    "BUTTOCKS_EXPOSED": "Sexy",
}
MIN_SCORE = 0.2  # NudeNet's own detection floor


def _labels() -> list[str]:
    import nudenet.nudenet as module

    return list(module.__dict__["__labels"])


class NudeNetBackend(ModerationBackend):
    name = "nudenet"
    max_batch = 16

    def __init__(self, blobs: BlobStore, thresholds: Thresholds, threads: int | None = None) -> None:
        self.blobs = blobs
        self.thresholds = thresholds
        self.threads = threads or os.cpu_count() or 1
        self.session: Any = None
        self.labels: list[str] = []
        self.version = "nudenet"
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudenet")  # the model uses its own threads

    async def start(self) -> None:
        await self.blobs.start()
        import nudenet
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: on a machine shared with the other stages, spinning threads burn the cores
        # the rest of the pipeline needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = Path(nudenet.__file__).parent / "320n.onnx"
        self.session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.labels = _labels()
        self.version = f"nudenet/320n-{_package_version()}"

    async def moderate(self, frames: list[FrameStored]) -> list[Verdict | None]:
        images = await asyncio.gather(*(read_image(self.blobs, _smallest_fitting(frame)) for frame in frames))
        started = time.perf_counter()
        results = await asyncio.get_running_loop().run_in_executor(self.pool, self._infer, images)
        latency = (time.perf_counter() - started) * 1000 / len(frames)
        return [self._verdict(scores, latency) for scores in results]

    def _infer(self, images: list[bytes]) -> list[dict[str, float]]:
        inputs = [_prepare(data) for data in images]
        results: list[dict[str, float]] = [{}] * len(inputs)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, array in enumerate(inputs):
            by_shape.setdefault(array.shape, []).append(i)
        for indexes in by_shape.values():  # one model run per input shape (all frames of a stream share one)
            [output] = self.session.run(None, {"images": np.stack([inputs[i] for i in indexes])})
            for i, rows in zip(indexes, output, strict=True):
                results[i] = self._class_scores(rows)
        return results

    def _class_scores(self, rows: np.ndarray) -> dict[str, float]:
        """The best score of each class among the model's candidate boxes (boxes do not matter for a verdict)."""
        class_scores = rows[4:]  # (classes, candidates)
        best = class_scores.max(axis=1)
        return {self.labels[i]: round(float(s) * 100, 1) for i, s in enumerate(best) if s >= MIN_SCORE}

    def _verdict(self, scores: dict[str, float], latency_ms: float) -> Verdict:
        exposed = {name: score for name, score in scores.items() if name in EXPOSED}
        if not exposed:
            return Verdict(suggestion="Pass", scores=scores, source=self.version, latency_ms=latency_ms)
        worst = max(exposed, key=exposed.__getitem__)
        score = exposed[worst]
        return Verdict(
            suggestion=self.thresholds.suggestion(score),
            label=EXPOSED[worst],
            sub_label=worst,
            score=round(score),
            scores=scores,
            source=self.version,
            latency_ms=latency_ms,
        )

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _smallest_fitting(frame: FrameStored) -> StoredImage:
    """The smallest thumbnail that still fills the model's input; the original when there is none."""
    fitting = [t for t in frame.thumbnails if max(t.width, t.height) >= INPUT]
    return min(fitting, key=lambda t: t.width * t.height) if fitting else frame.original


def _prepare(data: bytes) -> np.ndarray:
    """JPEG to the model's input: RGB, longest side 320, CHW floats in 0..1.

    The model takes any height and width that are multiples of 32, so a 16:9 frame is padded to 320x192 rather
    than to the 320x320 square the reference pads to: the same pixels of picture, 40% less computation.
    """
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (INPUT, INPUT))
    image = image.convert("RGB")
    if max(image.size) != INPUT:
        scale = INPUT / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    padded = np.zeros((-(-image.height // STRIDE) * STRIDE, -(-image.width // STRIDE) * STRIDE, 3), np.float32)
    padded[: image.height, : image.width] = np.asarray(image, np.float32) * (1 / 255.0)
    return padded.transpose(2, 0, 1)


def _package_version() -> str:
    from importlib.metadata import version

    return version("nudenet")
