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

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close clients."""
