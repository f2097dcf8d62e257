"""``ssmd market list|show|sync``: markets in the secmaster (NATS KV ``{env}-secmaster``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import click
import orjson

from ssmd.cli.component_cli import env_option, load_env, nats_option, nats_url_for
from ssmd.cli.errors import UserError


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _run(coro: Any) -> Any:
    from ssmd.transport.connect import NatsUnavailable

    try:
        return asyncio.run(coro)
    except NatsUnavailable as exc:
        raise UserError(str(exc)) from None


async def _store(url: str, env_name: str) -> tuple[Any, Any, Any]:
    from ssmd.secmaster.store import MarketStore
    from ssmd.transport.connect import connect

    nc = await connect(url, name="ssmd-market-cli", reconnect=False, initial_attempts=1)
    store = MarketStore()
    await store.start(nc.jetstream(), env_name)
    try:
        await asyncio.wait_for(store.loaded.wait(), 10)
    except TimeoutError:
        raise UserError("timed out reading the secmaster KV") from None
    return nc, store, nc.jetstream()


@click.group()
def market() -> None:
    """List and show markets from the secmaster."""


@market.command("list")
@env_option
@nats_option
@click.option("--status", default=None, help="open, paused, closed, settled, ...")
@click.option("--series", default=None, help="Series ticker.")
@click.option("--category", default=None, help="Category (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(
    env_file: Path,
    nats_url: str | None,
    status: str | None,
    series: str | None,
    category: str | None,
    as_json: bool,
) -> None:
    """List markets, optionally filtered."""
    env = load_env(env_file)
    url = nats_url_for(env, env_file, nats_url)

    async def main() -> list[dict[str, Any]]:
        nc, store, _ = await _store(url, env.name)
        try:
            return store.query(status=status, series=series, category=category)
        finally:
            await store.stop()
            await nc.close()

    rows = _run(main())
    if as_json:
        _echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("TICKER", "STATUS", "SERIES", "CATEGORY", "CLOSE", "TITLE", box=None)
    for r in rows:
        t.add_row(
            r["ticker"],
            r.get("status") or "",
            r.get("series_ticker") or "",
            r.get("category") or "",
            r.get("close_time") or "",
            (r.get("title") or "")[:60],
        )
    Console(width=200).print(t)
    click.echo(f"{len(rows)} market(s)")


@market.command()
@click.argument("ticker")
@env_option
@nats_option
@click.option("--history", is_flag=True, help="Every kept version and what changed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(ticker: str, env_file: Path, nats_url: str | None, history: bool, as_json: bool) -> None:
    """Show one market (and its change history)."""
    from ssmd.secmaster.store import read_record, record_history, secmaster_kv
    from ssmd.transport.connect import connect

    env = load_env(env_file)
    url = nats_url_for(env, env_file, nats_url)

    async def main() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        nc = await connect(url, name="ssmd-market-cli", reconnect=False, initial_attempts=1)
        try:
            kv = await secmaster_kv(nc.jetstream(), env.name)
            rec = await read_record(kv, "market", ticker)
            hist = (
                await record_history(nc.jetstream(), env.name, "market", ticker) if history else []
            )
            return rec, hist
        finally:
            await nc.close()

    rec, hist = _run(main())
    if rec is None:
        raise UserError(
            f"no market {ticker!r} in the secmaster of {env.name!r} (try `ssmd market sync`)"
        )
    if as_json:
        _echo_json({"market": rec, "history": hist} if history else rec)
        return
    width = max(len(k) for k in rec)
    for k, v in rec.items():
        if k.startswith("_"):
            continue
        click.echo(f"{k:<{width}}  {'' if v is None else v}")
    if history:
        click.echo("")
        click.echo("history (oldest first):")
        for h in hist:
            when = (
                dt.datetime.fromtimestamp(h["time_ms"] / 1000, dt.UTC).isoformat(timespec="seconds")
                if h.get("time_ms")
                else "?"
            )
            if not h["changes"]:
                click.echo(f"  rev {h['revision']:>6}  {when}  created")
                continue
            for field, (old, new) in h["changes"].items():
                click.echo(f"  rev {h['revision']:>6}  {when}  {field}: {old!r} -> {new!r}")


@market.command()
@env_option
@nats_option
@click.option("--rest-url", default=None, help="Exchange REST base URL (default: from spec.feed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync(env_file: Path, nats_url: str | None, rest_url: str | None, as_json: bool) -> None:
    """Run one secmaster sync now."""
    from ssmd.runtime import RuntimeContext
    from ssmd.secmaster.service import rest_url as derive_rest_url
    from ssmd.secmaster.store import secmaster_kv
    from ssmd.secmaster.sync import KalshiRest, RestUnavailable, sync_once
    from ssmd.transport.streams import ensure_streams

    env = load_env(env_file)
    url = nats_url_for(env, env_file, nats_url)
    ctx = RuntimeContext(env=env, nats_url=url, feed_rest_url=rest_url)
    try:
        base = derive_rest_url(ctx)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    async def main() -> dict[str, Any]:
        nc, store, js = await _store(url, env.name)
        try:
            await ensure_streams(js, env)
            kv = await secmaster_kv(js, env.name)

            def progress(what: str, n: int) -> None:
                if not as_json:
                    click.echo(f"  read {n} {what}", err=True)

            async with KalshiRest(base, rate_per_s=env.spec.connector.rest_rate_per_s) as rest:
                res = await sync_once(
                    js, kv, store, rest, env=env.name, feed=env.spec.feed.name, progress=progress
                )
            return res.as_dict()
        finally:
            await store.stop()
            await nc.close()

    try:
        out = _run(main())
    except RestUnavailable as exc:
        raise UserError(str(exc)) from None
    if as_json:
        _echo_json(out)
    else:
        click.echo(
            f"synced {out['markets']} markets ({out['created']} new, {out['updated']} changed, "
            f"{out['unchanged']} unchanged), {out['events']} events, {out['series']} series "
            f"in {out['seconds']}s"
        )
