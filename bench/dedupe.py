#!/usr/bin/env python3
"""The dedupe window's cost per callback (claim, then confirm) in its steady state: full, its oldest ids expiring
one by one as new ones arrive, as in an ingress that has run longer than the window. The window is shortened to
`--window` seconds so that it fills within the run; it then holds what this process confirms in that time. No
shared reference: the figure to watch is that the cost stays flat however many ids the window holds.

    .venv/bin/python bench/dedupe.py [--window 8] [--seconds 8] [--redis URL] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from framewatch.dedupe.backends.memory import MemoryDedupe
from framewatch.dedupe.backends.redis import RedisDedupe
from framewatch.dedupe.base import DedupeStore


async def callbacks_for(store: DedupeStore, seconds: float, concurrency: int) -> tuple[int, float, float]:
    """As many claim+confirm pairs as fit in `seconds`, `concurrency` at a time: (count, wall s, CPU s)."""
    counter = iter(range(10**12))

    async def callback() -> None:
        event_id = f"{uuid.uuid4().hex}{next(counter)}"
        await store.claim(event_id)
        await store.confirm(event_id)

    cpu, wall, done = time.process_time(), time.perf_counter(), 0
    while time.perf_counter() - wall < seconds:
        for _ in range(100):
            await asyncio.gather(*(callback() for _ in range(concurrency)))
        done += 100 * concurrency
    return done, time.perf_counter() - wall, time.process_time() - cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=8.0, help="seconds an id is remembered")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured once the window is full")
    parser.add_argument("--redis", help="also measure the Redis window at this URL (its keys expire by themselves)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    stores: dict[str, DedupeStore] = {"memory": MemoryDedupe(args.window, pending_ttl=5, max_entries=10**8)}
    if args.redis:
        prefix = f"fwbench-{uuid.uuid4().hex[:8]}"
        stores["redis"] = RedisDedupe(args.redis, args.window, pending_ttl=5, prefix=prefix)
    for name, store in stores.items():
        await callbacks_for(store, args.window, args.concurrency)  # fill: from now on ids expire as they arrive
        done, wall, cpu = await callbacks_for(store, args.seconds, args.concurrency)
        held = f"{len(store):,} ids" if isinstance(store, MemoryDedupe) else "ids in Redis"
        rate, cost = done / wall, cpu / done * 1e6
        print(f"{name:7s} window holding {held:>13s}: {rate:9,.0f} callbacks/s  {cost:5.1f} µs CPU each")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
