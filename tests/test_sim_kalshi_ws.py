"""Kalshi simulator over real sockets: auth, commands and errors, seq, books, lifecycle,
heartbeat, determinism. Clients are plain ``websockets`` (aiohttp only where pings must be
seen). The engine is paused and stepped, so what a test reads is exactly what it caused."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ssmd.feeds.kalshi.auth import KalshiCredentials, generate_private_key
from ssmd.sim.kalshi import KalshiSim, demo_credentials_paths

from .sim_kalshi_helpers import (
    KEY_ID,
    BookMirror,
    Client,
    Frame,
    client,
    config,
    headers,
    now_ms,
    tickers,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kalshi-fixtures.jsonl"
DOLLARS = re.compile(r"^\d\.\d{4}$")
FP = re.compile(r"^-?\d+\.\d{2}$")


async def read_all_sent(sim: KalshiSim, c: Client, conn_id: int = 1) -> list[Frame]:
    """Drain the simulator and read exactly what it sent; the bytes must be identical."""
    await sim.drain()
    sent = sim.sent_frames(conn_id)
    frames = [json.loads(await c.recv_text()) for _ in range(len(sent) - len(c.raw))]
    assert [s.decode() for s in sent] == c.raw
    return frames


# -- auth -------------------------------------------------------------------------------


async def test_good_signature_is_accepted() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await sim.wait_connection(1)
        i = await c.send("list_subscriptions")
        assert await c.recv() == {"id": i, "type": "ok", "msg": []}
        assert sim.connections()[0]["key_id"] == KEY_ID


@pytest.mark.parametrize(
    "case", ["wrong_key", "unknown_key_id", "stale", "future", "missing", "partial", "not_base64"]
)
async def test_bad_handshake_gets_401(case: str) -> None:
    h: dict[str, str]
    if case == "wrong_key":
        h = headers(key=generate_private_key())
    elif case == "unknown_key_id":
        h = headers(key_id="not-a-known-key")
    elif case == "stale":
        h = headers(now_ms=now_ms() - 31_000)
    elif case == "future":
        h = headers(now_ms=now_ms() + 31_000)
    elif case == "missing":
        h = {}
    elif case == "partial":
        h = {k: v for k, v in headers().items() if k != "KALSHI-ACCESS-SIGNATURE"}
    else:
        h = {**headers(), "KALSHI-ACCESS-SIGNATURE": "%%%not base64%%%"}
    async with KalshiSim(config()) as sim:
        with pytest.raises(InvalidStatus) as err:
            async with connect(sim.ws_url, additional_headers=h):
                pass
        assert err.value.response.status_code == 401
        assert sim.connections() == []


async def test_skew_is_configurable() -> None:
    async with (
        KalshiSim(config(auth_max_skew_s=120)) as sim,
        client(sim, headers(now_ms=now_ms() - 60_000)) as c,
    ):
        i = await c.send("list_subscriptions")
        assert (await c.recv())["id"] == i


async def test_legacy_optional_auth_gives_error_9_on_orderbook() -> None:
    async with KalshiSim(config(allow_unauthenticated=True)) as sim, client(sim, {}) as c:
        t = tickers(sim, 1)[0]
        i = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": t})
        assert await c.recv() == {
            "id": i,
            "type": "error",
            "msg": {"code": 9, "msg": "Authentication required"},
        }
        i = await c.send("subscribe", {"channels": ["ticker"], "market_ticker": t})
        assert await c.recv() == {
            "id": i,
            "type": "subscribed",
            "msg": {"channel": "ticker", "sid": 1},
        }
        assert sim.connections()[0]["authenticated"] is False


async def test_demo_credentials_written_0600_and_reused(tmp_path: Path) -> None:
    cfg = config(keys={}, data_dir=tmp_path / "sim")
    async with KalshiSim(cfg) as sim:
        assert sim.credentials_paths == demo_credentials_paths(tmp_path / "sim")
        keyid_path, pem_path = sim.credentials_paths
        for p in (keyid_path, pem_path):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
        key_id = keyid_path.read_text().strip()
        assert key_id == sim.key_id
        creds = KalshiCredentials.from_files(key_id, pem_path)
        async with client(sim, creds.headers()) as c:
            i = await c.send("list_subscriptions")
            assert (await c.recv())["type"] == "ok" and i == 1
    async with KalshiSim(cfg) as again:
        assert again.key_id == key_id  # same pair: a client's credentials survive restarts


# -- commands ---------------------------------------------------------------------------


async def test_subscribe_orderbook_snapshots_match_true_book() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        ts = tickers(sim, 2)
        i = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ts})
        assert await c.recv() == {
            "id": i,
            "type": "subscribed",
            "msg": {"channel": "orderbook_delta", "sid": 1},
        }
        for seq, t in enumerate(ts, 1):
            snap = await c.recv()
            assert list(snap) == ["type", "sid", "seq", "msg"]
            assert (snap["type"], snap["sid"], snap["seq"]) == ("orderbook_snapshot", 1, seq)
            msg = snap["msg"]
            assert msg["market_ticker"] == t and list(msg)[:2] == ["market_ticker", "market_id"]
            book = sim.true_book(t)
            assert msg["market_id"] == book.market_id
            assert [tuple(map(Decimal, lv)) for lv in msg.get("yes_dollars_fp", [])] == list(
                book.yes
            )
            assert [tuple(map(Decimal, lv)) for lv in msg.get("no_dollars_fp", [])] == list(book.no)


async def test_single_market_ticker_form_and_initial_tickers() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        t1, t2 = tickers(sim, 2)
        i = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": t1})
        assert (await c.recv())["msg"] == {"channel": "orderbook_delta", "sid": 1}
        assert (await c.recv())["msg"]["market_ticker"] == t1
        i = await c.send(
            "subscribe",
            {
                "channels": ["ticker", "trade"],
                "market_tickers": [t1, t2],
                "send_initial_snapshot": True,
            },
        )
        assert await c.recv_n(2) == [
            {"id": i, "type": "subscribed", "msg": {"channel": "ticker", "sid": 2}},
            {"id": i, "type": "subscribed", "msg": {"channel": "trade", "sid": 3}},
        ]
        for t in (t1, t2):
            tk = await c.recv()
            assert list(tk) == ["type", "sid", "msg", "sending_ts_ms"] and tk["sid"] == 2
            assert "seq" not in tk
            check_ticker_against(tk["msg"], sim.true_book(t))


def check_ticker_against(msg: dict[str, Any], book: Any) -> None:
    yes_bid = book.yes[-1][0] if book.yes else Decimal(0)
    yes_ask = 1 - book.no[-1][0] if book.no else Decimal(1)
    assert Decimal(msg["yes_bid_dollars"]) == yes_bid
    assert Decimal(msg["yes_ask_dollars"]) == yes_ask
    assert Decimal(msg["yes_bid_size_fp"]) == (book.yes[-1][1] if book.yes else 0)
    assert Decimal(msg["yes_ask_size_fp"]) == (book.no[-1][1] if book.no else 0)


async def test_ticker_by_market_id() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        m = sim.markets[0]
        i = await c.send(
            "subscribe",
            {"channels": ["ticker"], "market_ids": [m.market_id], "send_initial_snapshot": True},
        )
        assert (await c.recv())["id"] == i
        assert (await c.recv())["msg"]["market_id"] == m.market_id
        i = await c.send(
            "update_subscription",
            {"sid": 1, "action": "delete_markets", "market_ids": [m.market_id]},
        )
        assert await c.recv() == {"id": i, "sid": 1, "type": "ok", "msg": {"market_ids": []}}


async def test_add_delete_get_snapshot_unsubscribe_keep_one_seq_stream() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        a, b, new = tickers(sim, 3)
        await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": [a, b]})
        pre = await c.sync()
        await sim.step(400)
        frames = pre + await read_all_sent(sim, c)
        seqs = [f["seq"] for f in frames if f.get("sid") == 1 and "seq" in f]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 3

        i = await c.send(
            "update_subscription", {"sids": [1], "action": "add_markets", "market_tickers": [new]}
        )
        assert await c.recv() == {
            "id": i,
            "sid": 1,
            "type": "ok",
            "msg": {"market_tickers": [a, b, new]},
        }
        snap = await c.recv()
        assert (snap["type"], snap["sid"], snap["seq"], snap["msg"]["market_ticker"]) == (
            "orderbook_snapshot",
            1,
            seqs[-1] + 1,
            new,
        )

        i = await c.send(
            "update_subscription", {"sid": 1, "action": "get_snapshot", "market_tickers": [a]}
        )
        snap = await c.recv()  # no `ok` first: the re-baseline comes alone, on the same seq stream
        assert (snap["type"], snap["seq"], snap["msg"]["market_ticker"]) == (
            "orderbook_snapshot",
            seqs[-1] + 2,
            a,
        )
        i = await c.send("list_subscriptions")
        assert (await c.recv())["msg"] == [{"channel": "orderbook_delta", "sid": 1}]

        i = await c.send(
            "update_subscription", {"sid": 1, "action": "delete_markets", "market_tickers": [b]}
        )
        assert await c.recv() == {
            "id": i,
            "sid": 1,
            "type": "ok",
            "msg": {"market_tickers": [a, new]},
        }
        await sim.step(400)
        later = await read_all_sent(sim, c)
        assert later and all(f["msg"]["market_ticker"] in (a, new) for f in later)
        seqs2 = [f["seq"] for f in later]
        assert seqs2 == list(range(seqs[-1] + 3, seqs[-1] + 3 + len(seqs2)))

        i = await c.send("unsubscribe", {"sids": [1]})
        assert await c.recv() == {"id": i, "sid": 1, "seq": seqs2[-1] + 1, "type": "unsubscribed"}
        await sim.step(200)
        assert await read_all_sent(sim, c) == []


async def test_list_subscriptions_skip_ack_and_firehose() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        t = tickers(sim, 1)[0]
        await c.send(
            "subscribe", {"channels": ["ticker"], "market_ticker": t, "skip_ticker_ack": True}
        )
        await c.send("subscribe", {"channels": ["trade", "market_lifecycle_v2"]})
        i = await c.send("list_subscriptions")
        resp = await c.response(i)
        assert resp == {
            "id": i,
            "type": "ok",
            "msg": [
                {"channel": "ticker", "sid": 1},
                {"channel": "trade", "sid": 2},
                {"channel": "market_lifecycle_v2", "sid": 3},
            ],
        }
        i = await c.send(
            "update_subscription",
            {"sid": 1, "action": "add_markets", "market_tickers": tickers(sim, 2)},
        )
        assert await c.recv() == {"id": i, "sid": 1, "type": "ok"}
        await sim.step(3000)
        frames = await read_all_sent(sim, c)
        traded = {f["msg"]["market_ticker"] for f in frames if f["type"] == "trade"}
        assert len(traded) > 3  # trade without markets is the firehose
        assert {f["msg"]["market_ticker"] for f in frames if f["type"] == "ticker"} <= set(
            tickers(sim, 2)
        )


async def test_duplicate_subscribe_gets_new_sid_or_legacy_error_6() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        i = await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        assert (await c.response(i))["msg"] == {"channel": "market_lifecycle_v2", "sid": 2}
    async with KalshiSim(config(emit_already_subscribed=True)) as sim, client(sim) as c:
        await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        i = await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        assert (await c.response(i))["msg"] == {"code": 6, "msg": "Already subscribed"}


def _error_cases() -> list[tuple[str, Any, int, dict[str, str]]]:
    return [
        ("not_json", "{nope", 1, {}),
        ("not_object", "[1, 2]", 1, {}),
        ("unknown_command", {"cmd": "subscribe_all"}, 5, {}),
        ("params_required", {"cmd": "subscribe"}, 2, {}),
        ("channels_required", {"cmd": "subscribe", "params": {}}, 3, {}),
        ("channels_empty", {"cmd": "subscribe", "params": {"channels": []}}, 3, {}),
        ("ticker_v2_gone", {"cmd": "subscribe", "params": {"channels": ["ticker_v2"]}}, 8, {}),
        (
            "unknown_channel",
            {"cmd": "subscribe", "params": {"channels": ["ticker", "nope"]}},
            8,
            {},
        ),
        (
            "market_not_found",
            {
                "cmd": "subscribe",
                "params": {
                    "channels": ["orderbook_delta"],
                    "market_ticker": "KXBTCD-25DEC31-T999999",
                },
            },
            16,
            {"market_ticker": "KXBTCD-25DEC31-T999999"},
        ),
        (
            "market_id_not_found",
            {
                "cmd": "subscribe",
                "params": {
                    "channels": ["ticker"],
                    "market_ids": ["00000000-0000-4000-8000-000000000000"],
                },
            },
            16,
            {"market_id": "00000000-0000-4000-8000-000000000000"},
        ),
        (
            "orderbook_needs_markets",
            {"cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}},
            14,
            {},
        ),
        (
            "both_ticker_forms",
            {
                "cmd": "subscribe",
                "params": {"channels": ["ticker"], "market_ticker": "$0", "market_tickers": ["$0"]},
            },
            11,
            {},
        ),
        (
            "market_ids_not_on_orderbook",
            {
                "cmd": "subscribe",
                "params": {"channels": ["orderbook_delta"], "market_ids": ["$id0"]},
            },
            11,
            {},
        ),
        (
            "bad_bool",
            {
                "cmd": "subscribe",
                "params": {"channels": ["ticker"], "send_initial_snapshot": "yes"},
            },
            11,
            {},
        ),
        (
            "index_ids_required",
            {"cmd": "subscribe", "params": {"channels": ["cfbenchmarks_value"]}},
            24,
            {},
        ),
        (
            "shard_factor_zero",
            {"cmd": "subscribe", "params": {"channels": ["communications"], "shard_factor": 0}},
            19,
            {},
        ),
        (
            "shard_key_alone",
            {"cmd": "subscribe", "params": {"channels": ["communications"], "shard_key": 1}},
            20,
            {},
        ),
        (
            "shard_key_range",
            {
                "cmd": "subscribe",
                "params": {"channels": ["communications"], "shard_factor": 2, "shard_key": 2},
            },
            21,
            {},
        ),
        (
            "shard_factor_max",
            {"cmd": "subscribe", "params": {"channels": ["communications"], "shard_factor": 101}},
            22,
            {},
        ),
        ("unsubscribe_sids_required", {"cmd": "unsubscribe", "params": {}}, 4, {}),
        ("unsubscribe_unknown_sid", {"cmd": "unsubscribe", "params": {"sids": [99]}}, 7, {}),
        (
            "update_two_sids",
            {"cmd": "update_subscription", "params": {"sids": [1, 2], "action": "delete_markets"}},
            12,
            {},
        ),
        (
            "update_no_sid",
            {"cmd": "update_subscription", "params": {"action": "add_markets"}},
            12,
            {},
        ),
        (
            "update_sid_and_sids",
            {
                "cmd": "update_subscription",
                "params": {"sid": 1, "sids": [1], "action": "add_markets"},
            },
            12,
            {},
        ),
        (
            "update_action_required",
            {"cmd": "update_subscription", "params": {"sid": 1, "market_tickers": ["$0"]}},
            15,
            {},
        ),
        (
            "update_bad_action",
            {"cmd": "update_subscription", "params": {"sid": 1, "action": "replace"}},
            13,
            {},
        ),
        (
            "update_unknown_sid",
            {"cmd": "update_subscription", "params": {"sid": 99, "action": "add_markets"}},
            7,
            {},
        ),
        (
            "update_markets_required",
            {"cmd": "update_subscription", "params": {"sid": 1, "action": "add_markets"}},
            14,
            {},
        ),
        (
            "get_snapshot_not_orderbook",
            {
                "cmd": "update_subscription",
                "params": {"sid": 2, "action": "get_snapshot", "market_tickers": ["$0"]},
            },
            13,
            {},
        ),
        (
            "update_market_not_found",
            {
                "cmd": "update_subscription",
                "params": {"sid": 1, "action": "add_markets", "market_tickers": ["NOPE-1"]},
            },
            16,
            {"market_ticker": "NOPE-1"},
        ),
    ]


@pytest.mark.parametrize(
    ("name", "cmd", "code", "extra"), _error_cases(), ids=[c[0] for c in _error_cases()]
)
async def test_error_codes(name: str, cmd: Any, code: int, extra: dict[str, str]) -> None:
    from ssmd.sim.kalshi.protocol import ERRORS

    async with KalshiSim(config()) as sim, client(sim) as c:
        t0 = tickers(sim, 1)[0]
        await c.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": t0})  # sid 1
        await c.send("subscribe", {"channels": ["ticker"], "market_ticker": t0})  # sid 2
        await c.response(2)
        i = 9
        if isinstance(cmd, str):
            await c.ws.send(cmd)
        else:
            text = (
                json.dumps({"id": i, **cmd})
                .replace("$id0", sim.markets[0].market_id)
                .replace("$0", t0)
            )
            await c.ws.send(text)
        err = await c.recv()
        expected: dict[str, Any] = {
            "type": "error",
            "msg": {"code": code, "msg": ERRORS[code], **extra},
        }
        if not isinstance(cmd, str):
            expected = {"id": i, **expected}
        assert err == expected
        i = await c.send("list_subscriptions")  # an error changes no subscription
        assert [s["sid"] for s in (await c.recv())["msg"]] == [1, 2]


async def test_id_zero_means_no_id() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await c.ws.send(json.dumps({"id": 0, "cmd": "nope"}))
        assert await c.recv() == {"type": "error", "msg": {"code": 5, "msg": "Unknown command"}}


async def test_market_limit_26_and_command_rate_27() -> None:
    async with KalshiSim(config(max_markets_per_subscription=2)) as sim, client(sim) as c:
        ts = tickers(sim, 3)
        i = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ts})
        assert (await c.recv())["msg"]["code"] == 26
        i = await c.send("subscribe", {"channels": ["ticker"], "market_tickers": ts[:2]})
        assert (await c.recv())["id"] == i
        i = await c.send(
            "update_subscription", {"sid": 1, "action": "add_markets", "market_tickers": ts[2:]}
        )
        assert (await c.recv())["msg"] == {"code": 26, "msg": "Subscription market limit exceeded"}
    async with KalshiSim(config(max_commands_per_s=2)) as sim, client(sim) as c:
        for _ in range(3):
            await c.send("list_subscriptions")
        frames = await c.recv_n(3)
        assert [f["type"] for f in frames] == ["ok", "ok", "error"]
        assert frames[2]["msg"] == {"code": 27, "msg": "Too many requests"}


# -- the stream -------------------------------------------------------------------------


async def test_seq_books_tickers_and_trades_are_consistent() -> None:
    """One seq per sid across markets; deltas rebuild the true book; the book never crosses;
    every ticker matches the book; every trade is followed by the delta it caused."""
    async with KalshiSim(config(markets=8)) as sim, client(sim) as c:
        ts = tickers(sim, 4)
        await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ts})
        await c.send("subscribe", {"channels": ["ticker", "trade"], "market_tickers": ts})
        pre = await c.sync()
        await sim.step(6000)
        frames = pre + await read_all_sent(sim, c)
        mirror = BookMirror()
        seq = 0
        pending_trade: dict[str, Any] | None = None
        counts = {"orderbook_delta": 0, "ticker": 0, "trade": 0}
        for f in frames:
            if f["type"] in ("subscribed",):
                continue
            msg = f["msg"]
            if f["type"] in ("orderbook_snapshot", "orderbook_delta"):
                assert f["sid"] == 1 and f["seq"] == seq + 1
                seq = f["seq"]
                if f["type"] == "orderbook_snapshot":
                    mirror.snapshot(msg)
                    continue
                counts["orderbook_delta"] += 1
                assert DOLLARS.match(msg["price_dollars"]) and FP.match(msg["delta_fp"])
                if pending_trade is not None:
                    taker_yes = pending_trade["taker_book_side"] == "bid"
                    assert msg["market_ticker"] == pending_trade["market_ticker"]
                    assert msg["side"] == ("no" if taker_yes else "yes")
                    price = pending_trade["no_price_dollars" if taker_yes else "yes_price_dollars"]
                    assert msg["price_dollars"] == price
                    assert Decimal(msg["delta_fp"]) == -Decimal(pending_trade["count_fp"])
                    pending_trade = None
                mirror.delta(msg)
            elif f["type"] == "ticker":
                counts["ticker"] += 1
                t = msg["market_ticker"]
                yes, no = mirror.levels(t, "yes"), mirror.levels(t, "no")
                assert Decimal(msg["yes_bid_dollars"]) == (yes[-1][0] if yes else 0)
                assert Decimal(msg["yes_ask_dollars"]) == (1 - no[-1][0] if no else 1)
                assert Decimal(msg["yes_bid_size_fp"]) == (yes[-1][1] if yes else 0)
                assert Decimal(msg["yes_ask_size_fp"]) == (no[-1][1] if no else 0)
            elif f["type"] == "trade":
                counts["trade"] += 1
                assert pending_trade is None
                assert Decimal(msg["yes_price_dollars"]) + Decimal(msg["no_price_dollars"]) == 1
                assert msg["taker_outcome_side"] == (
                    "yes" if msg["taker_book_side"] == "bid" else "no"
                )
                pending_trade = msg
        assert min(counts.values()) > 10, counts
        for t in ts:
            book = sim.true_book(t)
            assert mirror.levels(t, "yes") == book.yes and mirror.levels(t, "no") == book.no


async def test_books_never_cross_or_go_negative_anywhere() -> None:
    async with KalshiSim(config(markets=60, lifecycle_interval_s=0.05)) as sim:
        for _ in range(10):
            await sim.step(2000)
            for book in sim.true_books().values():
                assert all(q > 0 for _, q in book.yes + book.no)
                if book.yes and book.no:
                    assert book.yes[-1][0] + book.no[-1][0] < 1


async def test_frames_have_the_fixture_shapes() -> None:
    """Every frame type the fixtures show comes out with the same keys, in the same order,
    and the same number formats (4-decimal dollars, 2-decimal fp, ms timestamps)."""
    fixtures: dict[str, list[dict[str, Any]]] = {}
    for line in FIXTURES.read_text().splitlines():
        f = json.loads(line)
        fixtures.setdefault(frame_key(f), []).append(f)
    async with KalshiSim(config(markets=12, lifecycle_interval_s=0.02)) as sim, client(sim) as c:
        a, b, d = tickers(sim, 3)
        await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": [a, b]})
        await c.send(
            "subscribe",
            {
                "channels": ["ticker", "trade"],
                "market_tickers": [a, b],
                "send_initial_snapshot": True,
            },
        )
        await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        await c.send(
            "update_subscription", {"sid": 1, "action": "add_markets", "market_tickers": [d]}
        )
        await c.send("subscribe", {"channels": ["ticker_v2"]})
        await c.send(
            "subscribe",
            {"channels": ["orderbook_delta"], "market_ticker": "KXBTCD-25DEC31-T999999"},
        )
        await c.send(
            "update_subscription",
            {"sids": [1, 2], "action": "delete_markets", "market_tickers": [b]},
        )
        await c.sync()
        await sim.step(3000)
        await c.send(
            "update_subscription", {"sid": 1, "action": "get_snapshot", "market_tickers": [a]}
        )
        await c.send("unsubscribe", {"sids": [1]})
        await c.sync()
        await read_all_sent(sim, c)
        frames = [json.loads(r) for r in c.raw]
    seen: set[str] = set()
    for f in frames:
        key = frame_key(f)
        seen.add(key)
        check_formats(f)
        if key in NOT_IN_FIXTURES:
            continue
        assert key in fixtures, f"frame type the fixtures do not show: {key}"
        assert any(same_shape(f, ref) for ref in fixtures[key]), f"{key}: {f} vs {fixtures[key][0]}"
    assert set(fixtures) <= seen, set(fixtures) - seen


NOT_IN_FIXTURES = {"market_lifecycle_v2/close_date_updated"}  # documented, not in the session


def frame_key(f: dict[str, Any]) -> str:
    if f["type"] == "market_lifecycle_v2":
        return f"market_lifecycle_v2/{f['msg']['event_type']}{'+' if 'is_deactivated' in f['msg'] else ''}"
    if f["type"] == "ok":
        return "ok/list" if isinstance(f["msg"], list) else "ok/update"
    return f["type"]


# Keys the fixtures show that are optional: absent when the simulator has no value for them.
OPTIONAL = {
    "client_order_id",
    "yes_dollars_fp",
    "no_dollars_fp",
    "floor_strike",
    "cap_strike",
    "custom_strike",
    "strike_date",
}


def same_shape(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        ka = [k for k in a if k not in OPTIONAL or k in b]
        kb = [k for k in b if k not in OPTIONAL or k in a]
        if ka != kb:
            return False
        return all(same_shape(a[k], b[k]) for k in ka)
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or same_shape(a[0], b[0])
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return type(a) is type(b)


def check_formats(x: Any, key: str = "") -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            check_formats(v, k)
    elif isinstance(x, list):
        if key.endswith("_dollars_fp"):
            for p, q in x:
                assert DOLLARS.match(p) and FP.match(q), (key, p, q)
        else:
            for v in x:
                check_formats(v, key)
    elif key.endswith("_dollars") or key in ("settlement_value", "start", "end", "step"):
        assert isinstance(x, str) and DOLLARS.match(x), (key, x)
    elif key.endswith("_fp"):
        assert isinstance(x, str) and FP.match(x), (key, x)
    elif key.endswith("ts_ms"):
        assert isinstance(x, int) and x > 1_700_000_000_000, (key, x)


async def test_lifecycle_frames_and_new_markets() -> None:
    async with KalshiSim(config(markets=10, lifecycle_interval_s=0.02)) as sim, client(sim) as c:
        i = await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
        await c.response(i)
        await sim.step(3000)
        frames = await read_all_sent(sim, c)
        kinds = {f["msg"].get("event_type", f["type"]) for f in frames}
        assert {
            "event_lifecycle",
            "created",
            "activated",
            "deactivated",
            "determined",
            "settled",
            "close_date_updated",
        } <= kinds
        assert all("seq" not in f for f in frames)
        created = [
            f["msg"]["market_ticker"] for f in frames if f["msg"].get("event_type") == "created"
        ]
        new = created[-1]
        assert new in {m.ticker for m in sim.markets}
        i = await c.send("subscribe", {"channels": ["orderbook_delta"], "market_ticker": new})
        await c.response(i)
        snap = await c.recv()
        assert snap["type"] == "orderbook_snapshot" and snap["msg"]["market_ticker"] == new
        determined = [
            f["msg"]["market_ticker"] for f in frames if f["msg"].get("event_type") == "determined"
        ]
        statuses = {m.ticker: m.status for m in sim.markets}
        assert statuses[determined[0]] == "finalized"


async def test_paced_stream_flows_without_stepping() -> None:
    async with (
        KalshiSim(config(paused=False, rate=2000, lifecycle_interval_s=0.1)) as sim,
        client(sim) as c,
    ):
        await c.send("subscribe", {"channels": ["ticker", "trade", "market_lifecycle_v2"]})
        types = set()
        async with asyncio.timeout(10):
            while not {"ticker", "trade", "market_lifecycle_v2"} <= types:
                types.add((await c.recv())["type"])
        assert sim.stats()["messages"] > 0 and not sim.paused


async def test_determinism_same_seed_same_bytes() -> None:
    async def session(seed: int) -> list[str]:
        async with (
            KalshiSim(config(seed=seed, markets=15, lifecycle_interval_s=0.1)) as sim,
            client(sim) as c,
        ):
            ts = tickers(sim, 3)
            await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ts[:2]})
            await c.send(
                "subscribe",
                {
                    "channels": ["ticker", "trade"],
                    "market_tickers": ts,
                    "send_initial_snapshot": True,
                },
            )
            await c.send("subscribe", {"channels": ["market_lifecycle_v2"]})
            await c.sync()
            await read_all_sent(sim, c)
            await sim.step(500)
            i = await c.send(
                "update_subscription",
                {"sid": 1, "action": "add_markets", "market_tickers": [ts[2]]},
            )
            await c.until(
                lambda f: f["type"] == "orderbook_snapshot" and f["msg"]["market_ticker"] == ts[2]
            )
            await sim.step(500)
            i = await c.send(
                "update_subscription",
                {"sid": 1, "action": "get_snapshot", "market_tickers": [ts[0]]},
            )
            await c.until(
                lambda f: f["type"] == "orderbook_snapshot" and f["msg"]["market_ticker"] == ts[0]
            )
            await sim.step(500)
            i = await c.send("unsubscribe", {"sids": [2]})
            await c.response(i)
            await sim.step(300)
            await read_all_sent(sim, c)
            assert len(c.raw) > 200
            return c.raw

    first = await session(7)
    assert await session(7) == first
    assert await session(8) != first


# -- heartbeat --------------------------------------------------------------------------


async def test_heartbeat_ping_payload_and_pong_timeout() -> None:
    async with (
        KalshiSim(config(ping_interval_s=0.05, pong_timeout_s=0.2)) as sim,
        aiohttp.ClientSession() as s,
        s.ws_connect(sim.ws_url, headers=headers(), autoping=False) as ws,
    ):
        for _ in range(2):
            msg = await ws.receive(timeout=5)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.PING, b"heartbeat")
            await ws.pong(msg.data)
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.PING
        # No pong this time: the simulator closes the connection.
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1011


async def test_lifecycle_ignores_market_filters() -> None:
    async with KalshiSim(config(lifecycle_interval_s=0.02)) as sim, client(sim) as c:
        t = tickers(sim, 1)[0]
        i = await c.send("subscribe", {"channels": ["market_lifecycle_v2"], "market_ticker": t})
        assert (await c.recv())["msg"] == {"channel": "market_lifecycle_v2", "sid": 1}
        i = await c.send(
            "subscribe", {"channels": ["market_lifecycle_v2"], "market_tickers": ["NOPE-1"]}
        )
        assert (await c.response(i))["type"] == "subscribed"
        await sim.step(2000)
        frames = await read_all_sent(sim, c)
        assert len({f["msg"].get("market_ticker") for f in frames if f["sid"] == 1}) > 3
