"""The moderate stage: stored frames get a verdict; the providers' own moderation callbacks bring theirs."""

from schemas.messages import CallbackReceived, FrameStored
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "moderate"
CONSUMES = (Consumes(FrameStored), Consumes(CallbackReceived, ("image_moderation",)))
