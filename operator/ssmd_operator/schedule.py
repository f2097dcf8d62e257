"""When should the pipeline run? Pure functions of a schedule and the current time."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ssmd.spec.environment import Schedule

Target = Literal["up", "down"]


def in_window(startup: time, teardown: time, now: time) -> bool:
    """Is ``now`` inside the daily run window [startup, teardown)? A window may span midnight
    (startup 20:00, teardown 06:00); startup == teardown means always on."""
    if startup == teardown:
        return True
    if startup < teardown:
        return startup <= now < teardown
    return now >= startup or now < teardown


def desired_target(schedule: Schedule | None, now: datetime, *, suspend: bool = False) -> Target:
    """``up`` or ``down`` for a schedule (None: 24/7) at ``now`` (aware), and spec.suspend."""
    if suspend:
        return "down"
    if schedule is None:
        return "up"
    local = now.astimezone(ZoneInfo(schedule.timezone)).time().replace(tzinfo=None)
    return "up" if in_window(schedule.startup_time(), schedule.teardown_time(), local) else "down"


def next_transition(schedule: Schedule, now: datetime) -> datetime:
    """The next startup or teardown after ``now``, in the schedule's time zone."""
    tz = ZoneInfo(schedule.timezone)
    local = now.astimezone(tz)
    candidates = []
    for t in (schedule.startup_time(), schedule.teardown_time()):
        for days in (0, 1):
            at = datetime.combine(local.date() + timedelta(days=days), t, tzinfo=tz)
            if at > local:
                candidates.append(at)
    return min(candidates)
