"""The pipeline's stages by name, and the topology their declarations make: each stage's queue is bound to what
the stage says it consumes (its package's CONSUMES). Light to import: no stage is loaded here."""

from __future__ import annotations

from framewatch.broker.topology import Topology
from workers import deliver, fetch, moderate, streams
from workers.contract import Consumes

DECLARED: dict[str, tuple[Consumes, ...]] = {
    package.NAME: package.CONSUMES for package in (fetch, moderate, deliver, streams)
}
NAMES = tuple(DECLARED)
BINDINGS = {
    name: tuple(key for consumed in declared for key in consumed.bindings()) for name, declared in DECLARED.items()
}

# Routing keys a stage no longer takes: unbound at declare, so an upgraded deployment routes like a new one.
RETIRED = {
    name: keys
    for name, declared in DECLARED.items()
    if (keys := tuple(key for consumed in declared for key in consumed.retired()))
}


def topology(namespace: str) -> Topology:
    return Topology(namespace, BINDINGS, RETIRED)
