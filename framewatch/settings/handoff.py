"""Handing a stage's output to the next stages in the same process instead of through the broker."""

from pydantic import Field, field_validator

from framewatch.settings.base import CommaList, Group, group, split


class HandoffSettings(Group):
    model_config = group("HANDOFF_")

    # The stages a worker runs in-process for what its own stages emit (a screenshot's webhook and its stream
    # record, made where the frame was stored); empty: every hop goes through the broker. Only the deliver and
    # streams stages can be handed messages.
    stages: CommaList = ["deliver", "streams"]
    # How long a handed-over message may take (a webhook's answer, a stream store's commit) before it goes to the
    # stage's queue instead, where the stage's own retries take it.
    timeout: float = Field(2.0, gt=0, le=60)

    _split = field_validator("stages", mode="before")(split)
