"""A directory on local disk; the ingress serves it under /blobs/ unless a public base URL says otherwise."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from framewatch.blobs.base import Blob, BlobStore


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path, public_url: str) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def _write(self, blob: Blob) -> None:
        path = self.path(blob.key)
        try:
            if path.stat().st_size == len(blob.data):
                return  # the same key holds the same frame (the key carries its digest): already stored
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, flush to disk, then rename: a reader sees the whole file or none.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(blob.data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, blob: Blob) -> None:
        await asyncio.to_thread(self._write, blob)

    async def put_many(self, blobs: list[Blob]) -> None:
        def write_all() -> None:
            for blob in blobs:
                self._write(blob)

        await asyncio.to_thread(write_all)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            raise KeyError(key) from None

    async def url(self, key: str) -> str:
        return f"{self.public_url}/{quote(key)}"
