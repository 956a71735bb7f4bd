"""The deliver stage: every callback kind but screenshots and verdicts, moderated frames, and webhooks split
off a message, POSTed signed to the platform's URLs."""

from typing import get_args

from schemas.messages import CallbackReceived, FrameModerated, Kind, Webhook
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "deliver"
# Callbacks of every kind but these come straight to delivery; screenshots and the providers' verdicts come as
# moderated frames, once fetched and judged.
_NOT_DIRECT = ("screenshot", "image_moderation")
CONSUMES = (
    Consumes(CallbackReceived, tuple(kind for kind in get_args(Kind) if kind not in _NOT_DIRECT)),
    Consumes(FrameModerated),
    Consumes(Webhook),  # one of a message's several webhooks, split off to succeed or fail on its own
)
EMITS = (Webhook,)  # a message's webhooks, when it has several
