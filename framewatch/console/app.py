"""The review console on the admin listener: sign-in, the live wall (server-sent events), the review queue with
decisions and quality, and the dead letters, each in a module of its own over the shared page plumbing.

Every page is rendered on the server (Jinja2, autoescaped); a little plain JavaScript adds the keyboard, live
updates and decisions without a reload. An account sees only its own domains, everywhere.
"""

from __future__ import annotations

from aiohttp import web

from framewatch.blobs.base import BlobStore
from framewatch.broker.dlq import DeadLetters
from framewatch.broker.publisher import Publishing
from framewatch.broker.topology import Topology
from framewatch.config.live import LiveConfig
from framewatch.console.dead_letters import DeadLetterViews
from framewatch.console.pages import HERE, PREFIX, Pages
from framewatch.console.review import Review
from framewatch.console.sessions import Sessions
from framewatch.console.signin import SignIn
from framewatch.console.wall import Wall
from framewatch.settings.console import ConsoleSettings
from framewatch.streams.covers import Covers
from framewatch.streams.store import StreamStore


class Console:
    def __init__(
        self,
        options: ConsoleSettings,
        config: LiveConfig,
        streams: StreamStore,
        covers: Covers,
        blobs: BlobStore,
        publisher: Publishing,
        *,
        amqp_urls: str,
        topology: Topology,
    ) -> None:
        sessions = Sessions(config.store, options.session_ttl)
        self.pages = Pages(sessions, secure_cookie=options.secure_cookie, public_origin=options.public_origin)
        self.signin = SignIn(self.pages, config.store, sessions)
        self.wall = Wall(self.pages, streams, covers, blobs)
        self.review = Review(self.pages, streams, config, publisher)
        self.dead_letters = DeadLetterViews(self.pages, streams, DeadLetters(amqp_urls, topology))


def add_routes(app: web.Application, console: Console) -> None:
    signed_in = console.pages.signed_in
    signin, wall, review, dead = console.signin, console.wall, console.review, console.dead_letters

    async def home(_: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/")

    app.router.add_get(PREFIX, home)
    app.router.add_get(f"{PREFIX}/login", signin.login_form)
    app.router.add_post(f"{PREFIX}/login", signin.login)
    app.router.add_post(f"{PREFIX}/logout", signed_in(signin.logout))
    app.router.add_get(f"{PREFIX}/", signed_in(wall.wall))
    app.router.add_get(f"{PREFIX}/events", signed_in(wall.events, page=False))
    app.router.add_get(f"{PREFIX}/streams/{{domain}}/{{stream}}", signed_in(wall.stream))
    app.router.add_get(f"{PREFIX}/covers/{{domain}}/{{stream}}.jpg", signed_in(wall.cover, page=False))
    app.router.add_get(f"{PREFIX}/frames/{{id}}", signed_in(wall.frame_image, page=False))
    app.router.add_get(f"{PREFIX}/review", signed_in(review.review))
    app.router.add_post(f"{PREFIX}/review/decide", signed_in(review.decide, page=False))
    app.router.add_get(f"{PREFIX}/quality", signed_in(review.quality))
    app.router.add_get(f"{PREFIX}/dlq", signed_in(dead.dead_letters))
    app.router.add_post(f"{PREFIX}/dlq/replay", signed_in(dead.replay))
    app.router.add_static(f"{PREFIX}/static", HERE / "static", append_version=True)
