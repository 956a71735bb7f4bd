"""The fetch stage: screenshot callbacks in, frames and thumbnails stored, "frame stored" out."""

from schemas.messages import CallbackReceived
from workers.contract import Consumes

# What the stage consumes, declared here so that the topology binds its queue without loading the stage.
NAME = "fetch"
CONSUMES = (Consumes(CallbackReceived, ("screenshot",)),)
