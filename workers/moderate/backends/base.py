"""The moderation backend interface: frames in, one verdict each (None: not reviewed)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from framewatch.blobs.base import BlobStore
from schemas.messages import FrameStored, StoredImage, Verdict
from workers.failures import Permanent, Transient


class BackendUnavailable(Transient):
    """The backend is down, overloaded or too slow: counts towards the circuit breaker."""


class ModerationBackend(ABC):
    name: ClassVar[str]
    # Frames one call may take; the stage batches up to this many when its queue is deep.
    max_batch: ClassVar[int] = 1
    # Calls per second when MODERATION_RATE_LIMIT is unset: a cloud API's documented quota, else no limit.
    default_rate_limit: ClassVar[float | None] = None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load models, open clients."""

    @abstractmethod
    async def moderate(self, frames: list[FrameStored]) -> list[Verdict | None]:
        """One verdict per frame, in order. Raise BackendUnavailable when the backend cannot answer now."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `start` took."""


async def read_image(blobs: BlobStore, image: StoredImage) -> bytes:
    """The stored bytes a backend moderates: a missing blob is permanent, a storage error transient."""
    try:
        return await blobs.get(image.key)
    except KeyError:
        raise Permanent("image_missing", image.key) from None
    except Exception as exc:
        raise Transient("storage_error", f"{type(exc).__name__}: {exc}") from None
