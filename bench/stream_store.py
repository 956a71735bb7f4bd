#!/usr/bin/env python3
"""The stream store's CPU per frame by batch size, in this process: frames of 40 streams written in batches of
each size (`StreamStore.apply`, one transaction a batch, as the streams stage writes them), twice each, the sizes
alternating. A batch's size is what STREAMS_BATCH_WAIT gathers: at 40 screenshots/s, 0.25 s makes ten, 0.5 s
twenty.

    .venv/bin/python bench/stream_store.py [--sizes 10,20,40] [--frames 2000] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
from sqlalchemy import insert

from framewatch.config import tables as t
from framewatch.config.store import ConfigStore
from framewatch.streams.store import FrameRecord, StreamStore

STREAMS, NOW = 40, int(time.time())


def frame(n: int, domain: str, account: int) -> FrameRecord:
    stream = f"s{n % STREAMS}"
    return FrameRecord(
        id=f"{domain}-{stream}-{n}",
        domain=domain,
        stream=stream,
        app="live",
        provider="tencent",
        capture_time=NOW + n,
        source_url=f"https://cos.example.com/{stream}/{n}.jpg",
        image_key=f"{domain}/{stream}/{n}_640x360.jpg",
        image_content_type="image/jpeg",
        blob_keys=(f"{domain}/{stream}/{n}.jpg", f"{domain}/{stream}/{n}_640x360.jpg"),
        suggestion=None,
        label="",
        source="",
        account_id=account,
    )


async def prepared(url: str, domain: str) -> tuple[ConfigStore, int]:
    """The store with an account of its own owning `domain` (a database given by URL keeps earlier runs' rows)."""
    config = ConfigStore(url)
    await config.migrate()
    async with config.engine.begin() as conn:
        account = (await conn.execute(insert(t.accounts).values(name=domain, created_at=NOW))).inserted_primary_key[0]
        values = {"account_id": account, "name": "main", "created_at": NOW, "updated_at": NOW}
        template = (await conn.execute(insert(t.templates).values(**values))).inserted_primary_key[0]
        await conn.execute(
            insert(t.rules).values(account_id=account, domain=domain, template_id=template, created_at=NOW)
        )
    return config, int(account)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,20,40", help="batch sizes, comma-separated")
    parser.add_argument("--frames", type=int, default=2000, help="frames written per size and round")
    parser.add_argument("--database", help="the store's URL (default: a fresh SQLite file per size)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="fw-store-") as work:
        for round_ in range(2):
            for size in sizes:
                url = args.database or f"sqlite+aiosqlite:///{work}/store-{round_}-{size}.db"
                domain = f"r{round_}-{size}-{NOW}.bench.example.com"
                config, account = await prepared(url, domain)
                try:
                    store = StreamStore(config.engine)
                    started = time.process_time()
                    for first in range(0, args.frames, size):
                        await store.apply(
                            [frame(n, domain, account) for n in range(first, min(first + size, args.frames))]
                        )
                    spent = time.process_time() - started
                finally:
                    await config.close()
                print(f"batches of {size:3d}: {1e6 * spent / args.frames:6.0f} us CPU per frame (round {round_ + 1})")


if __name__ == "__main__":
    asyncio.run(main())
