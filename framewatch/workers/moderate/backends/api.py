"""What the two cloud API backends share: the image to send, and how an HTTP failure is classified."""

from __future__ import annotations

import aiohttp

from framewatch.blobs.base import BlobStore
from framewatch.runtime.http import retry_after
from framewatch.schemas.messages import FrameStored, StoredImage
from framewatch.workers.failures import Permanent, Transient
from framewatch.workers.moderate.backends.base import BackendUnavailable


def image_for_api(frame: FrameStored) -> StoredImage:
    """The largest thumbnail: small to send, large enough for any classifier; the original when none."""
    return max(frame.thumbnails, key=lambda t: t.width * t.height) if frame.thumbnails else frame.original


async def image_bytes(blobs: BlobStore, image: StoredImage) -> bytes:
    try:
        return await blobs.get(image.key)
    except KeyError:
        raise Permanent("image_missing", image.key) from None
    except Exception as exc:
        raise Transient("storage_error", f"{type(exc).__name__}: {exc}") from None


def check_status(response: aiohttp.ClientResponse, api: str) -> None:
    """429 and 5xx: the API is unavailable (retry, count towards the breaker); other non-2xx: it refuses the frame."""
    if response.status == 429 or response.status >= 500:
        raise BackendUnavailable(f"{api}_http_{response.status}", "", retry_after(response))
    if not 200 <= response.status < 300:
        raise Permanent(f"{api}_http_{response.status}")
