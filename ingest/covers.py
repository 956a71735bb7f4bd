"""GET /covers/{domain}/{stream}.jpg on the callback listener: what a platform's room list shows for a live stream."""

from __future__ import annotations

from aiohttp import web

from framewatch.providers.refusals import Reason, Refused
from framewatch.runtime import metrics
from framewatch.streams.covers import Covers
from ingest.refusals import refusal_response

SUFFIX = ".jpg"


def add_cover_routes(app: web.Application, covers: Covers, max_age: int) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            response = await cover_response(request, covers, max_age)
        except Refused as refused:
            metrics.COVERS_SERVED.labels(str(refused.reason.status)).inc()
            return refusal_response(refused)
        metrics.COVERS_SERVED.labels(str(response.status)).inc()
        return response

    app.router.add_get("/covers/{domain}/{file}", handle)


async def cover_response(request: web.Request, covers: Covers, max_age: int) -> web.Response:
    domain, file = request.match_info["domain"].lower(), request.match_info["file"]
    if not file.endswith(SUFFIX) or len(file) == len(SUFFIX):
        raise Refused(Reason.StreamNotFound, "covers are named /covers/{domain}/{stream}.jpg")
    return await covers.respond(request, domain, file[: -len(SUFFIX)], f"public, max-age={max_age}")
