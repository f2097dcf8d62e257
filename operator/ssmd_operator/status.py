"""Environment status: conditions and the registry (stream, components, inventory).

Everything here is pure; the registry is bounded so a chatty component cannot grow the
object past what etcd accepts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

MAX_COMPONENTS = 8
MAX_FIELDS = 24
MAX_STRING = 200
INVENTORY_DAYS = 30
CONDITION_TYPES = ("KeysReady", "StreamReady", "ComponentsReady", "Ready")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: bool | None, reason: str, message: str = "", generation: int | None = None
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message[:1000],
        "observedGeneration": generation,
    }


def merge_conditions(
    old: list[dict[str, Any]], new: list[dict[str, Any]], at: str | None = None
) -> list[dict[str, Any]]:
    """Set ``lastTransitionTime`` only when a condition's status changes."""
    at = at or now_iso()
    prev = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        p = prev.get(c["type"])
        same = p is not None and p.get("status") == c["status"]
        out.append({**c, "lastTransitionTime": p.get("lastTransitionTime") if same and p else at})
    return out


def get_condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _pick(doc: dict[str, Any], *names: str) -> Any:
    for n in names:
        if doc.get(n) is not None:
            return doc[n]
    return None


def bounded_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The scalar fields of a status document (first MAX_FIELDS), long strings cut."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if len(out) >= MAX_FIELDS:
            break
        if isinstance(v, str):
            out[k] = v[:MAX_STRING]
        elif isinstance(v, bool | int | float) or v is None:
            out[k] = v
    return out


def inventory_from_documents(
    docs: dict[str, dict[str, Any]], today: date | None = None
) -> list[dict[str, Any]]:
    """Per-date archive summary of the last 30 days from the archiver's status document
    (``inventory``: a list of day records, or a mapping date -> record)."""
    today = today or datetime.now(UTC).date()
    raw = (docs.get("archiver") or {}).get("inventory")
    if isinstance(raw, dict):
        raw = [{"date": d, **(v if isinstance(v, dict) else {})} for d, v in raw.items()]
    if not isinstance(raw, list):
        return []
    first = (today - timedelta(days=INVENTORY_DAYS - 1)).isoformat()
    days: dict[str, dict[str, Any]] = {}
    for rec in raw:
        if not isinstance(rec, dict) or not isinstance(rec.get("date"), str):
            continue
        if not first <= rec["date"] <= today.isoformat():
            continue
        days[rec["date"]] = {
            "date": rec["date"],
            "records": int(rec.get("records") or 0),
            "bytes": int(rec.get("bytes") or 0),
            "files": int(rec.get("files") or 0),
            "gaps": int(
                rec["gaps"] if isinstance(rec.get("gaps"), int) else len(rec.get("gaps") or [])
            ),
        }
    return [days[d] for d in sorted(days, reverse=True)]


def registry(
    docs: dict[str, dict[str, Any]], simulated: bool, today: date | None = None
) -> dict[str, Any]:
    """Status fields from the components' KV documents (and the printer-column summary)."""
    components = {
        name: bounded_document(doc) for name, doc in sorted(docs.items())[:MAX_COMPONENTS]
    }
    connector = docs.get("connector") or {}
    secmaster = docs.get("secmaster") or {}
    archiver = docs.get("archiver") or {}
    inventory = inventory_from_documents(docs, today)
    sources = {d.get("source") for d in docs.values()}
    out: dict[str, Any] = {
        "components": components,
        "inventory": inventory,
        "source": "simulator" if simulated or "simulator" in sources else "exchange",
    }
    markets = _pick(connector, "markets", "marketCount") or _pick(
        secmaster, "markets", "marketCount"
    )
    if isinstance(markets, list):
        markets = len(markets)
    if markets is not None:
        out["markets"] = int(markets)
    rate = _pick(connector, "msgsPerSec", "msgs_per_sec")
    if rate is not None:
        out["msgsPerSec"] = round(float(rate), 1)
    lag_s = _pick(archiver, "lagSeconds", "lag_s", "lag_seconds")
    lag = _pick(archiver, "lag", "lagMessages", "lag_messages")
    if lag_s is not None:
        out["lag"] = f"{float(lag_s):.0f}s"
    elif lag is not None:
        out["lag"] = str(lag)
    last = _pick(archiver, "lastArchiveDate", "last_archive_date")
    if last is None and inventory:
        last = next((d["date"] for d in inventory if d["files"] > 0), None)
    if last is not None:
        out["lastArchiveDate"] = str(last)
    return out


def components_ready(wanted: dict[str, int], available: dict[str, int]) -> tuple[bool, str, str]:
    """(ready, reason, message): available replicas (from Deployment status) against wanted."""
    if all(n == 0 for n in wanted.values()):
        return True, "Stopped", "pipeline is scaled to zero as intended"
    missing = [
        f"{name} {available.get(name, 0)}/{n}"
        for name, n in wanted.items()
        if n > 0 and available.get(name, 0) < n
    ]
    if missing:
        return False, "ComponentsNotAvailable", "waiting for: " + ", ".join(missing)
    return True, "ComponentsAvailable", "every component is available"
