"""Model scores (0-100) to suggestions, with configurable thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.messages import Suggestion


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: float = 50.0
    block: float = 80.0

    def suggestion(self, score: float) -> Suggestion:
        if score >= self.block:
            return "Block"
        if score >= self.review:
            return "Review"
        return "Pass"
