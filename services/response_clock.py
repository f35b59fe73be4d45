"""The response clock: how much of a request's target has been used, as red / amber / green."""

from dataclasses import dataclass
from datetime import datetime, timedelta

RED = "red"
AMBER = "amber"
GREEN = "green"


@dataclass(frozen=True)
class ClockReading:
    rag: str
    time_left: timedelta
    share_used: float


def read_clock(received_at: datetime, due_at: datetime, now: datetime, amber_percent: int) -> ClockReading:
    """Red when overdue, amber once `amber_percent` of the target is used, green before."""
    target = due_at - received_at
    used = now - received_at
    share = used / target if target > timedelta(0) else 1.0
    if now >= due_at:
        rag = RED
    elif share >= amber_percent / 100:
        rag = AMBER
    else:
        rag = GREEN
    return ClockReading(rag=rag, time_left=due_at - now, share_used=share)
