"""The pipeline's stages by name, and the topology their declarations make: each stage's queue is bound to what
the stage says it consumes (its package's CONSUMES). Light to import: no stage is loaded here."""

from __future__ import annotations

from pydantic import BaseModel

from framewatch.broker.topology import Topology
from workers import deliver, fetch, moderate, streams
from workers.contract import Consumes

DECLARED: dict[str, tuple[Consumes, ...]] = {
    package.NAME: package.CONSUMES for package in (fetch, moderate, deliver, streams)
}
NAMES = tuple(DECLARED)
EMITTED: dict[str, tuple[type[BaseModel], ...]] = {
    package.NAME: package.EMITS for package in (fetch, moderate, deliver, streams)
}
BINDINGS = {
    name: tuple(key for consumed in declared for key in consumed.bindings()) for name, declared in DECLARED.items()
}

# Routing keys a stage no longer takes: unbound at declare, so an upgraded deployment routes like a new one.
RETIRED = {
    name: keys
    for name, declared in DECLARED.items()
    if (keys := tuple(key for consumed in declared for key in consumed.retired()))
}


def downstream(names: list[str]) -> list[str]:
    """The stages that what these stages emit reaches, directly or through another stage (themselves included
    when a message comes back to them)."""
    found: list[str] = []
    emitted = {model for name in names for model in EMITTED[name]}
    while True:
        reached = [
            name
            for name, declared in DECLARED.items()
            if name not in found and any(consumed.model in emitted and consumed.routed for consumed in declared)
        ]
        if not reached:
            return found
        found += reached
        emitted |= {model for name in reached for model in EMITTED[name]}


def topology(namespace: str) -> Topology:
    return Topology(namespace, BINDINGS, RETIRED)
