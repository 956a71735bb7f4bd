"""A directory on local disk; the ingress serves it under /blobs/ unless a public base URL says otherwise.

Writes are committed in groups: the blobs of every frame that arrived while the previous group was being written
go to disk together, under temporary names, then one flush of the filesystem (syncfs) makes them all durable before
any of them is renamed into place and any caller is answered. Flushing a file costs the same whether it holds one
blob or thirty; a frame's three blobs used to pay it three times.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import itertools
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from framewatch.blobs.base import Blob, BlobStore

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
Staged = list[tuple[str, str]]  # (temporary name, final name)


def _filesystem_flush() -> Callable[[int], None] | None:
    """syncfs(2): every dirty page of the filesystem holding `fd`, written and flushed; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    syncfs = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).syncfs

    def flush(fd: int) -> None:
        if syncfs(fd) != 0:  # since Linux 5.8 a writeback error of any file of the filesystem is reported here
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs: {os.strerror(errno)}")

    return flush


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path, public_url: str) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self._tmp_names = itertools.count()
        self._flush = _filesystem_flush()
        # One writer: a group is written by one thread while the next one gathers on the loop.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-writes")
        self._waiting: list[tuple[list[Blob], asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    def path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"blob key escapes the store or is malformed: {key!r}")
        return os.path.join(self.root, *parts)  # a str: the writes below take no Path

    def _stage(self, blobs: list[Blob], staged: Staged) -> None:
        """Write each blob beside its target; flushed here only where the filesystem cannot be flushed whole.
        Plain os calls on str paths: this runs for every blob of every frame."""
        for blob in blobs:
            path = self._file(blob.key)
            try:
                if os.stat(path).st_size == len(blob.data):
                    continue  # the same key holds the same frame (the key carries its digest): already stored
            except FileNotFoundError:
                pass
            folder = os.path.dirname(path)
            tmp = f"{folder}/.tmp-{os.getpid()}-{next(self._tmp_names)}"
            try:
                fd = os.open(tmp, _CREATE, 0o644)
            except FileNotFoundError:  # a new folder, or one removed since (a cleanup, a remount): made on failure,
                os.makedirs(folder, exist_ok=True)  # never trusted from a cache
                fd = os.open(tmp, _CREATE, 0o644)
            staged.append((tmp, path))
            try:
                view = memoryview(blob.data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._flush is None:
                    os.fdatasync(fd)
            finally:
                os.close(fd)

    def _write_groups(self, groups: list[list[Blob]]) -> list[BaseException | None]:
        """Stage every group, flush once, then rename: a reader sees a whole file or none, and a caller is answered
        only once its blobs are on disk. A group that fails fails alone; a failed flush fails them all."""
        staged: list[Staged] = [[] for _ in groups]
        errors: list[BaseException | None] = [None] * len(groups)
        for n, blobs in enumerate(groups):
            try:
                self._stage(blobs, staged[n])
            except Exception as exc:
                errors[n] = exc
        if self._flush is not None and any(staged[n] for n in range(len(groups)) if errors[n] is None):
            try:
                fd = os.open(self.root, os.O_RDONLY)
                try:
                    self._flush(fd)
                finally:
                    os.close(fd)
            except Exception as exc:
                errors = [error or exc for error in errors]
        for n, pairs in enumerate(staged):
            if errors[n] is None:
                try:
                    for tmp, path in pairs:
                        os.replace(tmp, path)
                except Exception as exc:
                    errors[n] = exc
            if errors[n] is not None:
                for tmp, _ in pairs:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
        return errors

    async def put(self, blob: Blob) -> None:
        await self.put_many([blob])

    async def put_many(self, blobs: list[Blob]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((blobs, done))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit())
        await done

    async def _commit(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                errors = await loop.run_in_executor(self.pool, self._write_groups, [blobs for blobs, _ in group])
            except asyncio.CancelledError:  # the loop is closing: nobody is told a blob is stored
                for _, done in group + self._waiting:
                    done.cancel()
                raise
            except Exception as exc:  # the pool is gone (shutting down)
                errors = [exc] * len(group)
            for (_, done), error in zip(group, errors, strict=True):
                if done.done():  # its caller was cancelled; the blobs are stored all the same
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

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
