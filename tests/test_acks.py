"""Acknowledgements of messages that finish together, gathered into `multiple` acks: never one for a message still
in hand, every finished one sent by the end of the loop's turn, the broker's channel never closed by an ack out of
order. Against the real RabbitMQ (a quorum queue), beside a fast test of which acks go on the wire."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import aio_pika
import pytest

from workers.acks import Acks


@dataclass
class Channel:
    is_closed: bool = False
    wire: list[tuple[int, bool]] = field(default_factory=list)  # (delivery tag, multiple) as sent


@dataclass
class Message:
    delivery_tag: int
    channel: Channel

    async def ack(self, multiple: bool = False) -> None:
        self.channel.wire.append((self.delivery_tag, multiple))


def covered(wire: list[tuple[int, bool]]) -> list[int]:
    """The tags those acks settle, as the broker reads them; a tag settled twice is the broker's channel error."""
    settled: list[int] = []
    for tag, multiple in wire:
        assert tag not in settled, f"tag {tag} acknowledged twice: the broker would close the channel"
        settled += [t for t in range(1, tag + 1) if t not in settled] if multiple else [tag]
    return settled


async def finish_together(acks: Acks, messages: list[Message]) -> None:
    """As a committed batch resumes its messages: each in its own task, all in one turn of the loop."""
    await asyncio.gather(*(acks.ack(message) for message in messages))


async def test_messages_finishing_together_are_one_ack_and_one_in_hand_is_never_covered() -> None:
    channel = Channel()
    acks = Acks()
    messages = [Message(tag, channel) for tag in range(1, 9)]
    await finish_together(acks, [messages[tag - 1] for tag in (1, 2, 3, 5, 6)])  # 4 is still being handled
    await asyncio.sleep(0)  # the end of the turn
    await asyncio.sleep(0)
    assert channel.wire == [(3, True), (5, False), (6, False)]
    await finish_together(acks, [messages[tag - 1] for tag in (4, 7, 8)])
    await acks.flush()
    assert channel.wire[3:] == [(8, True)]  # 4, past the ones acknowledged alone, to 8
    assert sorted(covered(channel.wire)) == list(range(1, 9))


async def test_an_ack_waits_for_no_timer() -> None:
    channel = Channel()
    acks = Acks()
    await acks.ack(Message(1, channel))
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.wire == [(1, True)]


async def test_a_nacked_message_is_passed_over_and_a_new_channel_counts_from_one() -> None:
    first, second = Channel(), Channel()
    acks = Acks()
    acks.settled(Message(1, first))  # given back to the queue
    await acks.ack(Message(2, first))
    await acks.flush()
    assert first.wire == [(2, True)]  # past 1, which is no longer outstanding once nacked
    first.is_closed = True  # the connection moved to another node: tags start over
    await acks.ack(Message(1, second))
    await acks.flush()
    assert second.wire == [(1, True)]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_acks_in_any_finishing_order_settle_each_message_once(seed: int) -> None:
    channel = Channel()
    acks = Acks()
    order = [Message(tag, channel) for tag in range(1, 201)]
    random.Random(seed).shuffle(order)
    sizes = random.Random(seed + 10)
    while order:
        count = sizes.randint(1, 12)
        together, order = order[:count], order[count:]
        await finish_together(acks, together)
        await asyncio.sleep(0)
    await acks.flush()
    assert sorted(covered(channel.wire)) == list(range(1, 201))
    assert len(channel.wire) < 200


async def test_only_the_message_in_hand_is_redelivered_when_the_process_dies(amqp_url: str, namespace: str) -> None:
    queue_name = f"{namespace}.acks"
    arguments = {"x-queue-type": "quorum"}
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=50)
        queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
        for n in range(40):
            await channel.default_exchange.publish(
                aio_pika.Message(str(n).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT), queue_name
            )
        received: list[aio_pika.abc.AbstractIncomingMessage] = []
        everything = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(message)
            if len(received) == 40:
                everything.set()

        await queue.consume(on_message)
        await asyncio.wait_for(everything.wait(), 10)
        held = next(m for m in received if m.body == b"17")  # still being handled when the process dies
        finishing = [m for m in received if m is not held]
        random.Random(5).shuffle(finishing)
        acks = Acks()
        for start in range(0, len(finishing), 6):
            await asyncio.gather(*(acks.ack(message) for message in finishing[start : start + 6]))
            await asyncio.sleep(0.005)
        await acks.flush()
        await asyncio.sleep(0.2)
        assert not channel.is_closed  # no ack the broker refused
    finally:
        await connection.close()  # the process dies holding message 17

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=True, arguments=arguments)
        redelivered = []
        while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
            redelivered.append(message.body)
        await queue.delete(if_unused=False, if_empty=False)
    assert redelivered == [b"17"]
