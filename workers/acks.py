"""Acknowledgements of messages that finish together, sent as one `multiple` ack where their tags are contiguous.

In a quorum queue every acknowledgement is a command the queue's replicas write to their log, like the message
itself; acknowledging ten messages at once is one command instead of ten. Messages do finish together: the streams
stage commits a batch of frames in one transaction, and every message whose frame was in it resumes at once. No
ack waits for a timer: the ones that become due during one turn of the event loop are sent at the end of it, so a
process that dies has no more acknowledged work to redo than before. Delivery tags count up from 1 on each channel;
a run of finished tags right after the last one acknowledged covers no message still in hand, and a finished
message behind one still in hand is acknowledged alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage


@dataclass
class _Channel:
    acked: int = 0  # every tag up to this one is settled
    done: dict[int, AbstractIncomingMessage] = field(default_factory=dict)  # finished, not yet acknowledged
    settled: set[int] = field(default_factory=set)  # settled otherwise (nacked, or acknowledged alone)


class Acks:
    def __init__(self) -> None:
        self._channels: dict[int, tuple[Any, _Channel]] = {}
        self._due: asyncio.Handle | None = None
        # One sender at a time: a `multiple` ack sent ahead of a single one it covers would make the broker close
        # the channel (an unknown delivery tag).
        self._sender: asyncio.Task[None] | None = None

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Acknowledge a handled message at the end of this turn of the loop, with those finishing beside it."""
        tag = message.delivery_tag
        if tag is None:
            await message.ack()
            return
        self._state(message).done[tag] = message
        if self._due is None:
            self._due = asyncio.get_running_loop().call_soon(self._send_all)

    def settled(self, message: AbstractIncomingMessage) -> None:
        """The message was settled another way (a nack): runs go past its tag."""
        if message.delivery_tag is not None:
            self._state(message).settled.add(message.delivery_tag)

    async def flush(self) -> None:
        """Send what is due now and wait for it (a graceful stop, before the channel closes)."""
        self._send_all()
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)

    def _state(self, message: AbstractIncomingMessage) -> _Channel:
        channel = message.channel  # the underlying channel: a new one after a reconnect, its tags from 1 again
        entry = self._channels.get(id(channel))
        if entry is None or entry[0] is not channel:
            for key, (old, _) in list(self._channels.items()):
                if old.is_closed:  # what it held is redelivered by the broker
                    del self._channels[key]
            entry = (channel, _Channel())
            self._channels[id(channel)] = entry
        return entry[1]

    def _send_all(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_pending())

    async def _send_pending(self) -> None:
        while True:  # what finished while the last acks were being written goes now too
            pending = [(key, channel, state) for key, (channel, state) in self._channels.items() if state.done]
            if not pending:
                return
            for key, channel, state in pending:
                if channel.is_closed:  # its messages are redelivered by the broker
                    self._channels.pop(key, None)
                    continue
                await self._send(state)

    @staticmethod
    async def _send(state: _Channel) -> None:
        last = None
        while True:  # the run of settled tags right after the last one acknowledged
            following = state.acked + 1
            if following in state.done:
                last = state.done.pop(following)
            elif following in state.settled:
                state.settled.discard(following)
            else:
                break
            state.acked = following
        alone = list(state.done.values())  # finished behind a message still in hand
        for message in alone:
            assert message.delivery_tag is not None
            state.settled.add(message.delivery_tag)
        state.done.clear()
        with contextlib.suppress(Exception):  # a closed channel: the broker redelivers what it did not hear of
            if last is not None:
                await last.ack(multiple=True)
            for message in alone:
                await message.ack()
