"""The operator's plain functions: schedule, ordered steps, versions, status, children,
archive inventory. No Kubernetes, no NATS."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from ssmd.archiver.manifest import DayManifest, write_manifest
from ssmd.archiver.storage import LocalStore
from ssmd.spec.environment import Schedule
from ssmd_operator import children, inventory, pipeline, schedule, status, versions
from ssmd_operator.children import Owner
from tests.support import make_environment

OWNER = Owner(name="test", namespace="ns", uid="u-1")


def test_schedule_window_in_its_time_zone() -> None:
    assert schedule.in_window(time(9), time(17), time(12))
    assert not schedule.in_window(time(9), time(17), time(17))
    assert schedule.in_window(time(20), time(6), time(23)) and schedule.in_window(
        time(20), time(6), time(1)
    )
    assert not schedule.in_window(time(20), time(6), time(12))
    assert schedule.in_window(time(9), time(9), time(3))  # equal: always on
    ny = Schedule(timezone="America/New_York", startup="09:30", teardown="16:00")
    # 14:00 UTC is 09:00 in New York in winter (before startup), 15:00 UTC is 10:00.
    assert schedule.desired_target(ny, datetime(2026, 1, 15, 14, 0, tzinfo=UTC)) == "down"
    assert schedule.desired_target(ny, datetime(2026, 1, 15, 15, 0, tzinfo=UTC)) == "up"
    assert schedule.desired_target(None, datetime(2026, 1, 15, tzinfo=UTC)) == "up"
    assert schedule.desired_target(None, datetime(2026, 1, 15, tzinfo=UTC), suspend=True) == "down"
    nxt = schedule.next_transition(ny, datetime(2026, 1, 15, 15, 0, tzinfo=UTC))
    assert nxt.isoformat() == "2026-01-15T16:00:00-05:00"


RUNNING: dict[Any, int] = {"secmaster": 1, "archiver": 1, "gateway": 2, "connector": 1}


def test_teardown_order() -> None:
    up = dict(RUNNING)
    step = pipeline.next_step("down", RUNNING, pipeline.Observed(current=up))
    assert step is not None and step.replicas == {"connector": 0}
    after = {**up, "connector": 0}
    assert pipeline.next_step("down", RUNNING, pipeline.Observed(current=after)) is None  # waits
    closed = pipeline.Observed(current=after, archiver_closed=True)
    step = pipeline.next_step("down", RUNNING, closed)
    assert step is not None and step.replicas == {"archiver": 0} and not step.warning
    late = pipeline.Observed(current=after, waited_s=pipeline.ARCHIVER_CLOSE_GRACE_S)
    step = pipeline.next_step("down", RUNNING, late)
    assert step is not None and step.warning  # a silent archiver does not block forever
    rest = {**after, "archiver": 0}
    step = pipeline.next_step("down", RUNNING, pipeline.Observed(current=rest))
    assert step is not None and step.replicas == {"gateway": 0, "secmaster": 0}
    done = dict.fromkeys(RUNNING, 0)
    assert pipeline.next_step("down", RUNNING, pipeline.Observed(current=done)) is None
    assert (
        pipeline.phase_for("down", RUNNING, pipeline.Observed(current=done), suspend=True)
        == "Suspended"
    )


def test_startup_order() -> None:
    zero = dict.fromkeys(RUNNING, 0)
    step = pipeline.next_step("up", RUNNING, pipeline.Observed(current=zero))
    assert step is not None and step.replicas == {"secmaster": 1}
    sec = {**zero, "secmaster": 1}
    assert pipeline.next_step("up", RUNNING, pipeline.Observed(current=sec)) is None
    ready = pipeline.Observed(current=sec, available={"secmaster": 1})
    step = pipeline.next_step("up", RUNNING, ready)
    assert step is not None and step.replicas == {"archiver": 1, "gateway": 2, "connector": 1}
    obs = pipeline.Observed(current=dict(RUNNING), available=dict(RUNNING))
    assert pipeline.phase_for("up", RUNNING, obs, suspend=False) == "Running"


def test_archiver_report_must_be_fresh() -> None:
    assert pipeline.archiver_reports_closed({"filesClosed": True, "heartbeat": 10.0}, 5.0)
    assert not pipeline.archiver_reports_closed({"filesClosed": True, "heartbeat": 1.0}, 5.0)
    assert pipeline.archiver_reports_closed({"open_files": 0, "heartbeat": 10}, 5.0)
    assert not pipeline.archiver_reports_closed({"open_files": 2, "heartbeat": 10}, 5.0)
    assert not pipeline.archiver_reports_closed(None, 0)
    # caught up with the stream: a SIGTERM now closes the open file with nothing left to write
    assert pipeline.archiver_reports_closed(
        {"caught_up": True, "open_files": 1, "heartbeat": 10}, 5.0
    )
    assert not pipeline.archiver_reports_closed(
        {"caught_up": False, "open_files": 1, "heartbeat": 10}, 5.0
    )


def _cm(version: int, chash: str) -> dict[str, Any]:
    return versions.version_configmap(OWNER, version, {"v": version}, chash, "t")


def test_versions_plan_and_prune() -> None:
    assert versions.plan([], "h1") == (1, [])
    assert versions.plan([_cm(1, "h1")], "h1") == (None, [])  # same spec: no new version
    assert versions.plan([_cm(1, "h1")], "h2") == (2, [])
    many = [_cm(v, f"h{v}") for v in range(1, 21)]
    new, prune = versions.plan(many, "h21")
    assert new == 21 and prune == ["test-v1"]  # the last 20 are kept
    cm = _cm(3, "abc")
    assert cm["immutable"] is True and versions.record_of(cm)["version"] == 3
    assert versions.config_hash({"a": 1, "b": 2}) == versions.config_hash({"b": 2, "a": 1})


def test_status_is_bounded() -> None:
    docs = {
        f"c{i}": {f"k{j}": "x" * 500 for j in range(40)} | {"nested": {"a": 1}} for i in range(12)
    }
    reg = status.registry(docs, simulated=True, today=date(2026, 1, 31))
    assert len(reg["components"]) == status.MAX_COMPONENTS
    doc = next(iter(reg["components"].values()))
    assert len(doc) == status.MAX_FIELDS and "nested" not in doc
    assert all(len(v) == status.MAX_STRING for v in doc.values())
    assert reg["source"] == "simulator"
    days = [
        {"date": f"2026-01-{d:02d}", "records": d, "files": 1, "gaps": []} for d in range(1, 32)
    ]
    inv = status.inventory_from_documents({"archiver": {"inventory": days}}, date(2026, 1, 31))
    assert len(inv) == 30 and inv[0]["date"] == "2026-01-31" and inv[-1]["date"] == "2026-01-02"
    ok, reason, _ = status.components_ready({"connector": 1}, {"connector": 0})
    assert (ok, reason) == (False, "ComponentsNotAvailable")


def test_children_local_storage_and_disabled_gateway() -> None:
    env = make_environment("test", gateway={"enabled": False}, storage={"local": {"size": "5Gi"}})
    objs = children.desired_children(env, OWNER, {"connector": 1, "archiver": 1, "secmaster": 1})
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == [
        ("ConfigMap", "test-environment"),
        ("Deployment", "test-archiver"), ("Deployment", "test-connector"),
        ("Deployment", "test-secmaster"),
        ("PersistentVolumeClaim", "test-archive"),
    ]  # fmt: skip
    pvc = next(o for o in objs if o["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    archiver = next(o for o in objs if o["metadata"]["name"] == "test-archiver")
    assert archiver["spec"]["strategy"]["type"] == "Recreate"
    mounts = archiver["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "archive", "mountPath": children.ARCHIVE_DIR} in mounts
    rendered = children.rendered_environment(env, "ns")
    assert rendered["spec"]["storage"]["local"]["path"] == children.ARCHIVE_DIR
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == "u-1" for o in objs)
    # The hash changes with the content, so the reconciler replaces only what changed.
    again = children.desired_children(env, OWNER, {"connector": 0, "archiver": 1, "secmaster": 1})
    hashes = {o["metadata"]["name"]: o["metadata"]["annotations"][children.SPEC_HASH] for o in objs}
    hashes2 = {
        o["metadata"]["name"]: o["metadata"]["annotations"][children.SPEC_HASH] for o in again
    }
    assert [n for n in hashes if hashes[n] != hashes2[n]] == ["test-connector"]


async def test_inventory_from_day_manifests(tmp_path: Path) -> None:
    today = date(2026, 3, 10)
    for day, records in (("2026-03-10", 5), ("2026-03-09", 7), ("2026-01-01", 1)):
        m = DayManifest(feed="kalshi", date=day, records=records, bytes=records * 10)
        m.gaps["stream"].append({"from_seq": 1, "to_seq": 2})
        path = tmp_path / "kalshi" / day / "manifest.json"
        path.parent.mkdir(parents=True)
        write_manifest(path, m)
    days = await inventory.from_store(LocalStore(tmp_path), "kalshi", today)
    assert days == [
        {"date": "2026-03-10", "records": 5, "bytes": 50, "files": 0, "gaps": 1},
        {"date": "2026-03-09", "records": 7, "bytes": 70, "files": 0, "gaps": 1},
    ]  # 2026-01-01 is older than 30 days
