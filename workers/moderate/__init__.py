"""The moderate stage: stored frames get a verdict. The providers' own verdicts go to the fetch stage (which stores
the judged frame) and from there straight on; the ones an earlier release queued here are still passed on."""

from schemas.messages import CallbackReceived, FrameModerated, FrameStored
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "moderate"
CONSUMES = (Consumes(FrameStored), Consumes(CallbackReceived, ("image_moderation",), routed=False))
EMITS = (FrameModerated,)
