"""Client commands (kalshi-protocol.md §2): subscribe, unsubscribe, update_subscription,
list_subscriptions, with the exchange's error codes for bad input.

Validation is all-or-nothing per command: an error changes no subscription.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from ssmd.sim.kalshi.config import SimConfig
from ssmd.sim.kalshi.engine import Engine
from ssmd.sim.kalshi.hub import Hub
from ssmd.sim.kalshi.protocol import (
    K_SNAPSHOT,
    K_TICKER,
    KNOWN_CHANNELS,
    PRIVATE_CHANNELS,
    UNFILTERED_CHANNELS,
)
from ssmd.sim.kalshi.session import Connection, Subscription, error_frame, response
from ssmd.sim.kalshi.universe import Universe

ACTIONS = ("add_markets", "delete_markets", "get_snapshot")


@dataclass
class Context:
    hub: Hub
    engine: Engine
    universe: Universe
    config: SimConfig


class CommandError(Exception):
    def __init__(self, code: int, **extra: str) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def handle(ctx: Context, conn: Connection, data: str | bytes) -> None:
    """Handle one client text frame; responses go to the connection's queue."""
    cmd_id: int | None = None
    try:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CommandError(1) from None
        if not isinstance(msg, dict):
            raise CommandError(1)
        raw_id = msg.get("id")
        if raw_id is not None:
            if not _is_int(raw_id):
                raise CommandError(11)
            cmd_id = raw_id or None  # id 0 counts as no id
        if not _rate_ok(ctx.config, conn):
            raise CommandError(27)
        cmd = msg.get("cmd")
        params = msg.get("params")
        if cmd == "subscribe":
            _subscribe(ctx, conn, cmd_id, params)
        elif cmd == "unsubscribe":
            _unsubscribe(ctx, conn, cmd_id, params)
        elif cmd == "update_subscription":
            _update(ctx, conn, cmd_id, params)
        elif cmd == "list_subscriptions":
            subs = sorted(conn.subs.values(), key=lambda s: s.sid)
            conn.push(
                response(
                    cmd_id,
                    {"type": "ok", "msg": [{"channel": s.channel, "sid": s.sid} for s in subs]},
                )
            )
        else:
            raise CommandError(5)
    except CommandError as exc:
        conn.push(error_frame(cmd_id, exc.code, **exc.extra))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _rate_ok(cfg: SimConfig, conn: Connection) -> bool:
    if cfg.max_commands_per_s is None:
        return True
    now = time.monotonic()
    times = [t for t in conn.cmd_times if now - t < 1.0]
    conn.cmd_times = times
    if len(times) >= cfg.max_commands_per_s:
        return False
    times.append(now)
    return True


def _params(params: Any) -> dict[str, Any]:
    if params is None:
        raise CommandError(2)
    if not isinstance(params, dict):
        raise CommandError(11)
    return params


def _bool(params: dict[str, Any], name: str) -> bool:
    v = params.get(name, False)
    if not isinstance(v, bool):
        raise CommandError(11)
    return v


def _markets(ctx: Context, params: dict[str, Any], ids_ok: bool) -> tuple[list[int] | None, bool]:
    """Resolve market_ticker(s) / market_id(s) to market indexes (deduplicated, in order).
    Returns (None, False) when no market was given; the flag says ids were used."""
    forms = [
        k for k in ("market_ticker", "market_tickers", "market_id", "market_ids") if k in params
    ]
    if not forms:
        return None, False
    if len(forms) > 1:
        raise CommandError(11)  # the forms cannot be combined
    form = forms[0]
    by_id = form.startswith("market_id")
    if by_id and not ids_ok:
        raise CommandError(11)  # market ids work on the ticker channel only
    value = params[form]
    if form in ("market_ticker", "market_id"):
        if not isinstance(value, str) or not value:
            raise CommandError(11)
        names = [value]
    else:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise CommandError(11)
        names = value
    table = ctx.universe.by_id if by_id else ctx.universe.by_ticker
    out: dict[int, None] = {}
    for name in names:
        i = table.get(name)
        if i is None:
            raise CommandError(16, **{"market_id" if by_id else "market_ticker": name})
        out[i] = None
    return list(out), by_id


def _subscribe(ctx: Context, conn: Connection, cmd_id: int | None, raw: Any) -> None:
    params = _params(raw)
    channels = params.get("channels")
    if channels is None or channels == []:
        raise CommandError(3)
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise CommandError(11)
    channels = list(dict.fromkeys(channels))
    for ch in channels:
        if ch not in KNOWN_CHANNELS:
            raise CommandError(8)
    if not conn.authenticated and any(ch in PRIVATE_CHANNELS for ch in channels):
        raise CommandError(9)
    filtered = [ch for ch in channels if ch not in UNFILTERED_CHANNELS]
    markets: list[int] | None = None
    by_id = False
    if filtered:  # lifecycle-like channels ignore market filters entirely
        markets, by_id = _markets(ctx, params, ids_ok=all(ch == "ticker" for ch in filtered))
    send_initial = _bool(params, "send_initial_snapshot")
    skip_ack = _bool(params, "skip_ticker_ack")
    if _bool(params, "use_yes_price"):
        raise CommandError(11)  # not simulated: refuse rather than send NO prices silently
    for ch in channels:
        if ch == "orderbook_delta" and markets is None:
            raise CommandError(14)
        if ch in ("cfbenchmarks_value", "cfbenchmarks_value_5hz") and not params.get("index_ids"):
            raise CommandError(24)
        if ch == "communications":
            _check_shards(params)
    if markets is not None and len(markets) > ctx.config.max_markets_per_subscription:
        raise CommandError(26)
    if ctx.config.emit_already_subscribed:
        for ch in channels:
            want = None if ch in UNFILTERED_CHANNELS or markets is None else set(markets)
            for s in conn.subs.values():
                have = None if s.markets is None else set(s.markets)
                if s.channel == ch and have == want:
                    raise CommandError(6)
    subs: list[Subscription] = []
    for ch in channels:
        sub = Subscription(
            conn,
            conn.next_sid,
            ch,
            None if ch in UNFILTERED_CHANNELS else markets,
            by_id=by_id,
            skip_ack=skip_ack,
            send_initial=send_initial,
        )
        conn.next_sid += 1
        ctx.hub.add_sub(sub)
        subs.append(sub)
        conn.push(response(cmd_id, {"type": "subscribed", "msg": {"channel": ch, "sid": sub.sid}}))
    for sub in subs:
        if sub.markets is not None:
            _initial_frames(ctx, sub, list(sub.markets), send_initial)


def _check_shards(params: dict[str, Any]) -> None:
    factor = params.get("shard_factor")
    key = params.get("shard_key")
    if (factor is not None and not _is_int(factor)) or (key is not None and not _is_int(key)):
        raise CommandError(11)
    if key is not None and factor is None:
        raise CommandError(20)
    if factor is not None:
        if factor <= 0:
            raise CommandError(19)
        if factor > 100:
            raise CommandError(22)
        if key is not None and not 0 <= key < factor:
            raise CommandError(21)


def _initial_frames(
    ctx: Context, sub: Subscription, markets: list[int], send_initial: bool
) -> None:
    """Snapshots for an orderbook sub (continuing its seq), initial tickers on request."""
    if sub.channel == "orderbook_delta":
        for m in markets:
            sub.conn.push(
                sub.frame(K_SNAPSHOT, b',"msg":' + ctx.engine.books[m].snapshot_msg() + b"}")
            )
    elif sub.channel == "ticker" and send_initial:
        ms = ctx.engine.vnow_us // 1000
        for m in markets:
            sub.conn.push(sub.frame(K_TICKER, ctx.engine.ticker_tail(ctx.engine.books[m], ms)))


def _unsubscribe(ctx: Context, conn: Connection, cmd_id: int | None, raw: Any) -> None:
    params = _params(raw)
    sids = params.get("sids")
    if sids is None or sids == []:
        raise CommandError(4)
    if not isinstance(sids, list) or not all(_is_int(s) for s in sids):
        raise CommandError(11)
    for sid in dict.fromkeys(sids):
        sub = conn.subs.get(sid)
        if sub is None:
            conn.push(error_frame(cmd_id, 7))
            continue
        ctx.hub.remove_sub(sub)
        # seq = the next value of the sid's counter (what the fixtures show).
        conn.push(response(cmd_id, {"sid": sid, "seq": sub.seq + 1, "type": "unsubscribed"}))


def _update(ctx: Context, conn: Connection, cmd_id: int | None, raw: Any) -> None:
    params = _params(raw)
    has_sid, has_sids = "sid" in params, "sids" in params
    if has_sid == has_sids:
        raise CommandError(12)  # neither or both
    if has_sid:
        sid = params["sid"]
    else:
        sids = params["sids"]
        if not isinstance(sids, list) or len(sids) != 1:
            raise CommandError(12)
        sid = sids[0]
    if not _is_int(sid):
        raise CommandError(11)
    action = params.get("action")
    if action is None:
        raise CommandError(15)
    if action not in ACTIONS:
        raise CommandError(13)
    sub = conn.subs.get(sid)
    if sub is None:
        raise CommandError(7)
    if action == "get_snapshot" and sub.channel != "orderbook_delta":
        raise CommandError(13)  # get_snapshot is orderbook-only
    markets, _by_id = _markets(ctx, params, ids_ok=sub.channel == "ticker")
    if markets is None:
        raise CommandError(14)
    if sub.markets is None:
        raise CommandError(11)  # a firehose or unfiltered subscription has no market list
    current = sub.markets
    if action == "get_snapshot":
        for m in markets:
            if m not in current:
                raise CommandError(11, market_ticker=ctx.universe.markets[m].ticker)
        _initial_frames(ctx, sub, markets, False)  # no `ok`: the fixtures show none
        return
    if action == "add_markets":
        new = [m for m in markets if m not in current]
        if len(current) + len(new) > ctx.config.max_markets_per_subscription:
            raise CommandError(26)
        for m in new:
            current[m] = None
        ctx.hub.index_markets(sub, new)
    else:
        gone = [m for m in markets if m in current]
        for m in gone:
            del current[m]
        ctx.hub.unindex_markets(sub, gone)
        new = []
    body: dict[str, Any] = {"sid": sid, "type": "ok"}
    if not sub.skip_ack:
        u = ctx.universe.markets
        if sub.by_id:
            body["msg"] = {"market_ids": [u[m].market_id for m in current]}
        else:
            body["msg"] = {"market_tickers": [u[m].ticker for m in current]}
    conn.push(response(cmd_id, body))
    if new:
        send_initial = _bool(params, "send_initial_snapshot") or sub.send_initial
        _initial_frames(ctx, sub, new, send_initial)
