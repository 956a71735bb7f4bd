"""The streams stage: begin and end events and every moderated frame, written to the stream store."""

from schemas.messages import CallbackReceived, FrameModerated
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "streams"
CONSUMES = (Consumes(CallbackReceived, ("stream_begin", "stream_end")), Consumes(FrameModerated))
EMITS = ()
