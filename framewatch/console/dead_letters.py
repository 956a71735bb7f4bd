"""The dead letters of the account's domains, per stage, and their replay: one broker connection per view."""

from __future__ import annotations

import structlog
from aiohttp import web

from framewatch.broker.dlq import DeadLetters
from framewatch.console.pages import Pages, back_to
from framewatch.console.sessions import Session
from framewatch.streams.store import StreamStore

log = structlog.get_logger("framewatch.console")

# Dead letters examined per stage on the page (the CLI reads them all).
DLQ_PAGE = 500


class DeadLetterViews:
    def __init__(self, pages: Pages, streams: StreamStore, dead: DeadLetters) -> None:
        self.pages = pages
        self.streams = streams
        self.dead = dead

    async def dead_letters(self, request: web.Request, session: Session) -> web.Response:
        mine = set(await self.streams.domains(session.account_id))
        found = await self.dead.list(self.dead.topology.stages, limit=DLQ_PAGE)
        stages = [
            {"name": stage, "letters": [letter for letter in letters if letter.domain in mine]}
            for stage, letters in found.items()
        ]
        return self.pages.page("dlq.html", session, stages=stages, notice=request.query.get("notice", ""))

    async def replay(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await request.post()
        stage = form.get("stage")
        if stage not in self.dead.topology.stages:
            raise web.HTTPBadRequest(text="unknown stage")
        mine = set(await self.streams.domains(session.account_id))
        chosen = {value for value in form.getall("id", []) if isinstance(value, str)}
        replayed = await self.dead.replay(str(stage), chosen or None, limit=DLQ_PAGE, domains=mine)
        log.info("console_replayed", stage=stage, messages=replayed, account=session.account)
        raise back_to("dlq", f"{replayed} replayed into {stage}")
