"""The blob store interface. Keys are deterministic, so storing the same frame twice is harmless."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Blob:
    key: str
    data: bytes
    content_type: str


class BlobStore(ABC):
    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients."""

    @abstractmethod
    async def put(self, blob: Blob) -> None:
        """Store durably; raise on failure (the fetch stage retries)."""

    async def put_many(self, blobs: list[Blob]) -> None:
        await asyncio.gather(*(self.put(blob) for blob in blobs))

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """The stored bytes; KeyError when absent."""

    @abstractmethod
    async def url(self, key: str) -> str:
        """Where the platform can fetch the blob."""

    @abstractmethod
    async def delete(self, keys: list[str]) -> None:
        """Remove these blobs; a key already gone is no error."""

    async def copy(self, source: str, target: str, content_type: str) -> None:
        """Store the blob at `source` under `target` as well (replacing what `target` held)."""
        await self.put(Blob(target, await self.get(source), content_type))

    @property
    def serves_covers(self) -> bool:
        """Whether each stream's cover is also kept at a stable key (a CDN serves it from the bucket)."""
        return False

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close clients."""
