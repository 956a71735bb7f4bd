"""What the batching stages (the streams writer, the moderation batcher) do when a whole batch fails: unless the
failure is the store's or the backend's own (down, frozen, overloaded: every item would fail alike), each item is
tried on its own, so only the message at fault goes to its retry ladder and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def settle_alone(
    batch: Sequence[tuple[T, asyncio.Future[R]]],
    run_one: Callable[[T], Awaitable[R]],
    systemic: Callable[[BaseException], bool],
) -> None:
    """Each item of a failed batch on its own; once one fails for a systemic reason, the rest fail with it
    (a store that went down mid-way costs one more try, not one per item)."""
    for index, (item, future) in enumerate(batch):
        if future.done():  # its message was cancelled meanwhile
            continue
        try:
            result = await run_one(item)
        except Exception as exc:
            future.set_exception(exc)
            if systemic(exc):
                for _, rest in batch[index + 1 :]:
                    if not rest.done():
                        rest.set_exception(exc)
                return
        else:
            future.set_result(result)
