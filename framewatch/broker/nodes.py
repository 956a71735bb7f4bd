"""The broker's nodes: `AMQP_URL` may list several, comma-separated (a cluster). Every connection tries them in
turn, on start and on every reconnect, from a random one so that a fleet spreads over the nodes."""

from __future__ import annotations

import random

from yarl import URL


class Nodes:
    def __init__(self, urls: str) -> None:
        self.urls = [url.strip() for url in urls.split(",") if url.strip()]
        if not self.urls:
            raise ValueError("AMQP_URL names no broker")
        self._next = random.randrange(len(self.urls))

    def __len__(self) -> int:
        return len(self.urls)

    def next(self) -> str:
        url = self.urls[self._next]
        self._next = (self._next + 1) % len(self.urls)
        return url


def redact(urls: str) -> str:
    """Every URL of the list with its password replaced, fit for a log line."""
    return ",".join(_redact_one(url.strip()) for url in urls.split(",") if url.strip())


def _redact_one(url: str) -> str:
    try:
        parsed = URL(url)
    except ValueError:
        return "(unparsable URL)"
    return str(parsed.with_password("***")) if parsed.password else url
