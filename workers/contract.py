"""What a stage is: what it consumes, what it does with one message, what it hands on.

A stage declares the messages it takes (`consumes`); the transport binds its queue from that, decodes each message
into the declared model and owns the refusal of one that does not decode (`bad_message`). `handle` sees a typed
message and returns outputs; a failure is a `StageFailure` (workers/failures.py) and the transport decides what
follows. Nothing here knows about AMQP: the RabbitMQ consumer (workers/consumer.py) and the in-memory transport
(workers/memory.py) run the same stages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from schemas.messages import SCHEMA_VERSION, CallbackReceived, routing_key


class PipelineMessage(Protocol):
    TYPE: ClassVar[str]
    id: str
    domain: str

    def model_dump_json(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Consumes:
    """One kind of message a stage takes: a pipeline model, or callbacks of the given kinds."""

    model: type[BaseModel]
    kinds: tuple[str, ...] = ()  # CallbackReceived only: the callback kinds (routed `<provider>.<kind>`)
    # False: no longer routed to the stage (its binding is removed at declare), still taken when found queued,
    # so that an upgrade drains what the old routing left in the queue.
    routed: bool = True

    def __post_init__(self) -> None:
        if (self.model is CallbackReceived) != bool(self.kinds):
            raise ValueError("callbacks are consumed by kind, and only callbacks are")

    @property
    def message_type(self) -> str:
        return str(self.model.TYPE)  # type: ignore[attr-defined]

    def bindings(self) -> tuple[str, ...]:
        return self.keys() if self.routed else ()

    def retired(self) -> tuple[str, ...]:
        return () if self.routed else self.keys()

    def keys(self) -> tuple[str, ...]:
        if self.model is CallbackReceived:
            return tuple(f"*.{kind}" for kind in self.kinds)
        return (routing_key(self.message_type),)


@dataclass(frozen=True, slots=True)
class Output:
    """A message a stage wants published once its effects are durable. Made from a model (`of`), it keeps the model:
    a stage in the same process takes it as it is (workers/handoff.py), and it is encoded only for the broker."""

    routing_key: str
    message_id: str
    message_type: str
    headers: dict[str, Any] = field(default_factory=dict)
    model: BaseModel | None = field(default=None, compare=False, repr=False)
    encoded: bytes | None = None

    @property
    def body(self) -> bytes:
        if self.encoded is not None:
            return self.encoded
        assert self.model is not None
        return self.model.model_dump_json().encode()

    @classmethod
    def of(cls, message: PipelineMessage, ladder: str) -> Output:
        """A pipeline message on its routing key; `ladder` picks the next stage's retry ladder."""
        return cls(
            routing_key(message.TYPE),
            message_id=message.id,
            message_type=message.TYPE,
            headers={"domain": message.domain, LADDER: ladder, "schema_version": SCHEMA_VERSION},
            model=message,  # type: ignore[arg-type]
        )


# The header naming the retry ladder a message climbs at the next stage (a callback's own headers carry its kind
# under the same name, which is the ladder it climbs).
LADDER = "kind"


@dataclass(frozen=True, slots=True)
class Retries:
    """A stage's retry ladders: the delays between tries for each ladder (the message's LADDER header), else the
    default; a ladder's length is the number of retries. `extra`: delays the stage asks for outside its ladders."""

    default: tuple[float, ...]
    by_ladder: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    extra: tuple[float, ...] = ()

    def delays(self, ladder: object) -> tuple[float, ...]:
        return self.by_ladder.get(ladder, self.default) if isinstance(ladder, str) else self.default

    def every_delay(self) -> set[float]:
        """Every delay the stage may ask for, declared as delay queues at start."""
        return {*self.default, *(delay for ladder in self.by_ladder.values() for delay in ladder), *self.extra}


class Consumption(Protocol):
    """The handle a stage gets on its own consumption: a circuit breaker pauses it, and resumes it."""

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...


M = TypeVar("M", bound=BaseModel)


class Stage(ABC, Generic[M]):
    name: ClassVar[str]
    consumes: ClassVar[tuple[Consumes, ...]]

    # True: takes messages handed over in-process by the stage that made them (workers/handoff.py), besides those
    # from its queue.
    inline: ClassVar[bool] = False

    def __init__(self, concurrency: int, retries: Retries) -> None:
        self.concurrency = concurrency
        self.retries = retries

    async def start(self, consumption: Consumption) -> None:
        """Open clients and pools; `consumption` pauses and resumes this stage's intake."""

    @abstractmethod
    async def handle(self, message: M) -> list[Output]:
        """Do the stage's work; raise a StageFailure subclass when it cannot."""

    async def handle_inline(self, message: M) -> list[Output]:
        """`handle`, for a message handed over in-process; raising sends it to the stage's queue instead, so a stage
        declines here what it would rather take through the broker (a slow receiver)."""
        return await self.handle(message)

    async def close(self) -> None:
        """Close what `start` opened."""
