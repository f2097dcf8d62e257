"""Ordered startup and teardown: a pure step function.

Teardown (schedule or ``spec.suspend``): connector first, then the archiver once it reports
its files closed (or after a grace period), then gateway and secmaster.
Startup: secmaster first (markets must be known), then archiver, gateway and connector.

Each reconcile pass calls :func:`next_step` with what is running now and applies the result;
the step is also recorded as a Kubernetes Event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ssmd_operator.children import Component
from ssmd_operator.schedule import Target

ARCHIVER_CLOSE_GRACE_S = 120.0  # a silent archiver must not keep the pipeline up forever


@dataclass(frozen=True)
class Step:
    """Set these components' replicas; ``reason``/``message`` go into an Event."""

    replicas: dict[Component, int]
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Observed:
    current: dict[Component, int]  # replicas now, of the enabled components
    available: dict[Component, int] = field(default_factory=dict)
    archiver_closed: bool = False
    waited_s: float = 0.0  # since the current step began


def archiver_reports_closed(doc: dict[str, Any] | None, since_epoch: float) -> bool:
    """The archiver status document says its files are closed, written after ``since_epoch``.

    Accepted fields: ``filesClosed``/``files_closed`` true, ``openFiles``/``open_files`` 0, or
    ``caughtUp``/``caught_up`` true: every frame in the stream is written, so stopping the
    archiver now (SIGTERM closes and renames its current file) loses nothing."""
    if not doc:
        return False
    try:
        heartbeat = float(doc.get("heartbeat") or 0)
    except (TypeError, ValueError):
        return False
    if heartbeat < since_epoch:
        return False
    closed = doc.get("filesClosed", doc.get("files_closed"))
    if closed is not None and bool(closed):
        return True
    if bool(doc.get("caughtUp", doc.get("caught_up"))):
        return True
    open_files = doc.get("openFiles", doc.get("open_files"))
    return open_files is not None and int(open_files) == 0


def next_step(target: Target, running: dict[Component, int], obs: Observed) -> Step | None:
    """The next step towards ``target`` (``running`` = replicas each component has when up),
    or None when nothing can be done now (done, or waiting for a component)."""
    cur = obs.current
    if target == "down":
        if cur.get("connector", 0) > 0:
            return Step({"connector": 0}, "TeardownConnector", "connector stopped first")
        if cur.get("archiver", 0) > 0:
            if obs.archiver_closed:
                return Step(
                    {"archiver": 0}, "TeardownArchiver", "archiver reported its files closed"
                )
            if obs.waited_s >= ARCHIVER_CLOSE_GRACE_S:
                return Step(
                    {"archiver": 0},
                    "TeardownArchiver",
                    f"archiver did not report its files closed within {ARCHIVER_CLOSE_GRACE_S:.0f}s",
                    warning=True,
                )
            return None  # wait for the archiver
        rest: dict[Component, int] = {c: 0 for c in ("gateway", "secmaster") if cur.get(c, 0) > 0}
        if rest:
            return Step(rest, "TeardownGateway", "gateway and secmaster stopped")
        return None
    # up
    if "secmaster" in running and cur.get("secmaster", 0) < running["secmaster"]:
        return Step({"secmaster": running["secmaster"]}, "StartupSecmaster", "secmaster sync first")
    if "secmaster" in running and obs.available.get("secmaster", 0) < 1:
        if any(cur.get(c, 0) > 0 for c in running if c != "secmaster"):
            pass  # already (partly) running, e.g. a secmaster restart: do not stop the rest
        else:
            return None  # wait for the secmaster to be available
    rest2: dict[Component, int] = {
        c: n for c, n in running.items() if c != "secmaster" and cur.get(c, 0) != n
    }
    if rest2:
        return Step(rest2, "StartupComponents", "archiver, gateway and connector started")
    return None


def phase_for(
    target: Target, running: dict[Component, int], obs: Observed, *, suspend: bool
) -> str:
    if target == "down":
        if any(n > 0 for n in obs.current.values()):
            return "Stopping"
        return "Suspended" if suspend else "Stopped"
    if all(obs.current.get(c, 0) == n and obs.available.get(c, 0) >= n for c, n in running.items()):
        return "Running"
    return "Starting"
