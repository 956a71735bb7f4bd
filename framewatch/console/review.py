"""The review queue: flagged frames filtered, decided one by one or in bulk (each decision's webhook published,
confirmed, before it is recorded), and the quality of each label and source as reviewers judged it."""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web

from framewatch.broker.publisher import PublishError, Publishing
from framewatch.config.live import LiveConfig
from framewatch.console import decisions
from framewatch.console.pages import SECURITY_HEADERS, Pages, back_to
from framewatch.console.sessions import Session
from framewatch.runtime import metrics
from framewatch.streams.store import DECISIONS, StreamStore

log = structlog.get_logger("framewatch.console")

MAX_DECISIONS = 500  # frames in one bulk decision


class Review:
    def __init__(self, pages: Pages, streams: StreamStore, config: LiveConfig, publisher: Publishing) -> None:
        self.pages = pages
        self.streams = streams
        self.config = config
        self.publisher = publisher

    async def review(self, request: web.Request, session: Session) -> web.Response:
        q = request.query
        min_score = q.get("min_score", "")
        filters = {
            "domain": q.get("domain", ""),
            "stream": q.get("stream", ""),
            "label": q.get("label", ""),
            "source": q.get("source", ""),
            "min_score": min_score if min_score.isdigit() else "",
            "status": q.get("status", "pending") if q.get("status") in ("pending", "all") else "pending",
        }
        frames = await self.streams.flagged(
            session.account_id,
            domain=filters["domain"] or None,
            stream=filters["stream"] or None,
            label=filters["label"] or None,
            source=filters["source"] or None,
            min_score=int(filters["min_score"]) if filters["min_score"] else None,
            pending_only=filters["status"] == "pending",
            limit=200,
        )
        return self.pages.page(
            "review.html",
            session,
            frames=frames,
            filters=filters,
            domains=await self.streams.domains(session.account_id),
            choices=await self.streams.filter_values(session.account_id),
            notice=q.get("notice", ""),
        )

    async def decide(self, request: web.Request, session: Session) -> web.StreamResponse:
        """Decides frames: publishes each decision's webhook first (confirmed by the broker), then records the
        decisions. A failure records nothing, and the reviewer's retry sends them again: none is lost."""
        form = await request.post()
        decision = form.get("decision")
        ids = [value for value in form.getall("id", []) if isinstance(value, str)][:MAX_DECISIONS]
        if decision not in DECISIONS or not ids:
            return _answer(request, 400, {"error": "InvalidDecision", "message": "choose frames and a decision"})
        frames = await self.streams.flagged_frames(session.account_id, ids)
        at = int(time.time())
        unsent = 0
        try:
            for frame in frames:
                webhook = decisions.decision_webhook(frame, decision, session.reviewer, at, self.config.snapshot)
                if webhook is None:
                    unsent += 1
                    continue
                await decisions.publish(self.publisher, webhook)
        except PublishError as exc:
            log.warning("decision_not_published", reason=exc.reason)
            return _answer(request, 503, {"error": "BrokerUnavailable", "message": "not sent, nothing recorded: retry"})
        decided = await self.streams.decide(session.account_id, [f.id for f in frames], decision, session.reviewer, at)
        metrics.REVIEW_DECISIONS.labels(decision).inc(len(decided))
        log.info("review_decided", decision=decision, frames=len(decided), reviewer=session.reviewer)
        notice = f"{len(decided)} decided"
        if unsent:
            notice += f"; {unsent} not sent: no detect notify URL for their domain"
        return _answer(request, 200, {"decided": [f.id for f in decided], "unsent": unsent, "notice": notice})

    async def quality(self, request: web.Request, session: Session) -> web.Response:
        rows: dict[tuple[str, str], dict[str, int]] = {}
        for row in await self.streams.quality(session.account_id):
            counts = rows.setdefault((row.label, row.source), {"violation": 0, "not_violation": 0, "pending": 0})
            counts[row.decision or "pending"] += row.count
        table = [
            {
                "label": label,
                "source": source,
                **counts,
                "total": sum(counts.values()),
                "precision": _share(counts["violation"], counts["violation"] + counts["not_violation"]),
            }
            for (label, source), counts in sorted(rows.items())
        ]
        widest = max((row["total"] for row in table), default=1)
        return self.pages.page("quality.html", session, table=table, widest=widest)


def _share(part: int, whole: int) -> int | None:
    return round(100 * part / whole) if whole else None


def _answer(request: web.Request, status: int, body: dict[str, Any]) -> web.StreamResponse:
    """JSON for the page's script; a redirect back to the queue for a plain form."""
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response(body, status=status, headers=SECURITY_HEADERS)
    raise back_to("review", body.get("notice") or body.get("message", ""))
