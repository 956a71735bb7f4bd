"""Pick the blob store from BLOB_URL: `s3://bucket/prefix` or a directory (optionally `file://`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from framewatch.blobs.base import BlobStore
from framewatch.settings import Settings


def local_root(settings: Settings) -> Path | None:
    """The directory of a local store, None for S3."""
    if settings.blobs.url.startswith("s3://"):
        return None
    return Path(settings.blobs.url.removeprefix("file://"))


def create(settings: Settings) -> BlobStore:
    root = local_root(settings)
    if root is not None:
        from framewatch.blobs.backends.local import LocalBlobStore

        public = settings.blobs.public_url or f"http://{settings.host}:{settings.port}/blobs"
        return LocalBlobStore(root, public)
    from framewatch.blobs.backends.s3 import S3BlobStore

    parts = urlsplit(settings.blobs.url)
    return S3BlobStore(
        parts.netloc,
        parts.path,
        endpoint_url=settings.blobs.s3.endpoint_url,
        region=settings.blobs.s3.region,
        public_url=settings.blobs.public_url,
        presign_expiry=settings.blobs.presign_expiry,
    )
