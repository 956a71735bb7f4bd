"""A directory on local disk; the ingress serves it under /blobs/ unless a public base URL says otherwise."""

from __future__ import annotations

import asyncio
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from framewatch.blobs.base import Blob, BlobStore


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path, public_url: str) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self._tmp_names = itertools.count()
        # Few threads: each write is short, and more threads only fight over the GIL with the thumbnailers.
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="blob-writes")

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"blob key escapes the store or is malformed: {key!r}")
        return self.root.joinpath(*parts)

    def _write(self, blob: Blob) -> None:
        path = self.path(blob.key)
        try:
            if path.stat().st_size == len(blob.data):
                return  # the same key holds the same frame (the key carries its digest): already stored
        except FileNotFoundError:
            pass
        folder = path.parent
        # Write beside the target, flush to disk, then rename: a reader sees the whole file or none.
        tmp = folder / f".tmp-{os.getpid()}-{next(self._tmp_names)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            fd = os.open(tmp, flags, 0o644)
        except FileNotFoundError:  # a new folder, or one removed since (a cleanup, a remount): made on failure,
            folder.mkdir(parents=True, exist_ok=True)  # never trusted from a cache
            fd = os.open(tmp, flags, 0o644)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(blob.data)
                file.flush()
                os.fdatasync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def put(self, blob: Blob) -> None:
        await asyncio.to_thread(self._write, blob)

    async def put_many(self, blobs: list[Blob]) -> None:
        def write_all() -> None:
            for blob in blobs:
                self._write(blob)

        await asyncio.get_running_loop().run_in_executor(self.pool, write_all)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            raise KeyError(key) from None

    async def delete(self, keys: list[str]) -> None:
        def remove() -> None:
            for key in keys:
                self.path(key).unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def url(self, key: str) -> str:
        return f"{self.public_url}/{quote(key)}"
