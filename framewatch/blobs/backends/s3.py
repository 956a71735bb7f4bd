"""S3-compatible object storage (AWS S3, Tencent COS, MinIO) through aiobotocore.

Credentials come the standard AWS ways (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote

from aiobotocore.session import get_session

from framewatch.blobs.base import Blob, BlobStore


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str | None,
        region: str,
        public_url: str | None,
        presign_expiry: int,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.public_url = public_url.rstrip("/") if public_url else None
        self.presign_expiry = presign_expiry
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        async with self._starting:  # shared by the stages of a process: the first start makes the client
            if self._client is not None:
                return
            session = get_session()
            self._client = await self._stack.enter_async_context(
                session.create_client("s3", endpoint_url=self.endpoint_url, region_name=self.region)
            )

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3BlobStore.start() was not awaited")
        return self._client

    async def put(self, blob: Blob) -> None:
        await self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + blob.key, Body=blob.data, ContentType=blob.content_type
        )

    async def get(self, key: str) -> bytes:
        try:
            response = await self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        async with response["Body"] as stream:
            return await stream.read()

    async def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            objects = [{"Key": self.prefix + key} for key in keys[start : start + 1000]]
            await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})

    async def copy(self, source: str, target: str, content_type: str) -> None:
        await self.client.copy_object(
            Bucket=self.bucket,
            Key=self.prefix + target,
            CopySource={"Bucket": self.bucket, "Key": self.prefix + source},
            ContentType=content_type,
            MetadataDirective="REPLACE",
            CacheControl="public, max-age=1",
        )

    @property
    def serves_covers(self) -> bool:
        return True

    async def url(self, key: str) -> str:
        if self.public_url:
            return f"{self.public_url}/{quote(self.prefix + key)}"
        return await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key}, ExpiresIn=self.presign_expiry
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
