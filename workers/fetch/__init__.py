"""The fetch stage: screenshot callbacks in, frames and thumbnails stored, "frame stored" out; the providers' own
verdicts in, the judged frame stored when it can be downloaded, the verdict handed straight on."""

from schemas.messages import CallbackReceived, FrameModerated, FrameStored
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "fetch"
CONSUMES = (Consumes(CallbackReceived, ("screenshot", "image_moderation")),)
# What it hands on (FrameModerated straight, when moderation is off or the provider judged the frame).
EMITS = (FrameStored, FrameModerated)
