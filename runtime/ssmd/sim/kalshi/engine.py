"""The exchange: one global, deterministic stream of market events on a virtual clock.

``Engine.run`` generates events and returns them as messages ``(channel, market index,
frame kind, tail)``: ``tail`` is the frame's bytes after the per-subscription prefix
(``{"type":...,"sid":N[,"seq":``), rendered once and shared by every subscriber.

Nothing here depends on connections, subscriptions or wall time: for one seed and one
start time the stream is always the same. Virtual time advances by ``1/rate`` per
message (jittered), so timestamps look like a real feed at that rate whatever the pace
at which the server releases them.
"""

from __future__ import annotations

import heapq
import random
from typing import NamedTuple

import orjson

from ssmd.sim.kalshi.book import MarketBook
from ssmd.sim.kalshi.protocol import (
    CH_BOOK,
    CH_LIFECYCLE,
    CH_TICKER,
    CH_TRADE,
    K_DELTA,
    K_EVENT_LC,
    K_MARKET_LC,
    K_TICKER,
    K_TRADE,
)
from ssmd.sim.kalshi.universe import TEMPLATES, Event, Market, MarketStatus, Universe
from ssmd.sim.kalshi.wire import PIPS, PRICES, MsClock, uuid4_str

Msg = tuple[int, int, int, bytes]  # (channel, market index or -1, kind, tail)

ADD_QTY = (1, 5, 10, 10, 25, 25, 50, 50, 75, 100, 100, 150, 200, 250, 500, 1000)
TRADE_QTY = (1, 1, 2, 5, 5, 10, 10, 20, 25, 50, 100)
MAX_LEVELS = 12  # per side; beyond this the engine only cancels on that side

_DELTA = b',"msg":{%b,"price_dollars":"%b","delta_fp":"%d.00","side":"%b","ts":"%b","ts_ms":%d}}'
_TICKER = (
    b'{%b,"price_dollars":"%b","yes_bid_dollars":"%b","yes_ask_dollars":"%b",'
    b'"volume_fp":"%d.00","open_interest_fp":"%d.00","dollar_volume":%d,"dollar_open_interest":%d,'
    b'"yes_bid_size_fp":"%d.00","yes_ask_size_fp":"%d.00","last_trade_size_fp":"%d.00",'
    b'"ts":%d,"ts_ms":%d,"time":"%b"},"sending_ts_ms":%d}'
)
_TRADE = (
    b'{"trade_id":"%b","market_ticker":%b,"yes_price_dollars":"%b","no_price_dollars":"%b",'
    b'"count_fp":"%d.00","taker_side":"%b","taker_outcome_side":"%b","taker_book_side":"%b",'
    b'"is_block_trade":false,"ts":%d,"ts_ms":%d}}'
)
NEVER = 1 << 62  # a virtual time later than any other
SENDING_LAG_MS = 2  # ticker sending_ts_ms = ts_ms + this (virtual network queueing)


class TradeRecord(NamedTuple):
    seq: int  # position in the exchange's trade history (for REST cursors)
    trade_id: str
    market: int
    qty: int
    yes_price: int  # pips
    taker_yes: bool  # taker bought YES (or sold NO)
    ts_ms: int


class Engine:
    def __init__(
        self,
        universe: Universe,
        *,
        seed: int,
        start_ms: int,
        rate: float,
        nominal_rate: float = 1000.0,
        lifecycle_interval_s: float = 60.0,
        trade_history: int = 100_000,
    ) -> None:
        self.u = universe
        self.rng = random.Random(f"ssmd-sim-engine-{seed}")
        self.vnow_us = start_ms * 1000
        self.us_per_msg = 1e6 / (rate if rate > 0 else nominal_rate)
        self.clock = MsClock()
        self.books: list[MarketBook] = []
        self.active: list[int] = []  # tradeable markets; order is part of the determinism
        self._active_pos: dict[int, int] = {}
        # Oldest first; a list (trimmed in chunks) so REST paging can index it in O(1).
        self.trades: list[TradeRecord] = []
        self.trade_history = max(1, trade_history)
        self.trade_seq = 0
        self.messages = 0  # total generated
        self.out: list[Msg] = []
        self.lc_us = int(lifecycle_interval_s * 1e6)
        self.next_lc: int | None = self.vnow_us + self.lc_us if self.lc_us > 0 else None
        self.lc_count = 0
        self._pending: list[tuple[int, int, str, int]] = []  # (due_us, n, action, market)
        self._pending_n = 0
        self._due = self._next_due()  # cached: checked on every event
        for m in universe.markets:
            self._add_book(m, populate=m.status is not MarketStatus.INITIALIZED)
        # Markets created unopened at start, opened first by lifecycle actions.
        self._unopened = [m.index for m in universe.markets if m.status is MarketStatus.INITIALIZED]

    # -- setup ----------------------------------------------------------------------------

    def _add_book(self, m: Market, populate: bool) -> None:
        b = MarketBook(m.ticker, m.market_id, m.tick)
        self.books.append(b)
        rng = self.rng
        b.fair = rng.randrange(8, 93) * 100
        if populate:
            for side_yes in (True, False):
                for _ in range(rng.randrange(0 if rng.random() < 0.05 else 2, 8)):
                    self._add_order(b, side_yes, rng.choice(ADD_QTY))
            b.last = b.fair
            b.last_size = rng.choice(TRADE_QTY)
            b.volume = rng.randrange(100, 100_000)
            b.oi = b.volume // 2
            b.dv = b.volume * b.fair
        if m.status is MarketStatus.ACTIVE:
            self._activate(m.index)
        elif m.status is not MarketStatus.INITIALIZED:
            b.frozen = True

    def _activate(self, i: int) -> None:
        if i not in self._active_pos:
            self._active_pos[i] = len(self.active)
            self.active.append(i)

    def _deactivate(self, i: int) -> None:
        pos = self._active_pos.pop(i, None)
        if pos is None:
            return
        last = self.active.pop()
        if last != i:
            self.active[pos] = last
            self._active_pos[last] = pos

    # -- the event loop -------------------------------------------------------------------

    def run(self, max_msgs: int, until_us: int | None = None) -> list[Msg]:
        """Generate events until at least ``max_msgs`` messages, or virtual time passes
        ``until_us``. Returns the messages (the list is reused: consume it before the next call)."""
        out = self.out = []
        rand = self.rng.random
        upm = self.us_per_msg
        limit = NEVER if until_us is None else until_us
        trade_event = self._trade_event
        while len(out) < max_msgs:
            v = self.vnow_us
            if v > limit:
                break
            n0 = len(out)
            if v >= self._due:
                self._lifecycle(v)
                self._due = self._next_due()
            elif self.active:
                trade_event(v)
            elif self._due < NEVER:
                self.vnow_us = self._due  # nothing trades: jump to the next lifecycle action
                continue
            else:
                break  # nothing can ever happen
            k = len(out) - n0
            self.vnow_us = v + int((k or 1) * upm * (0.5 + rand()))
        self.messages += len(out)
        return out

    def _trade_event(self, v: int) -> None:
        rand = self.rng.random  # hot path: locals instead of attribute lookups
        active = self.active
        i = active[int(rand() * len(active))]
        b = self.books[i]
        if rand() < 0.1:  # the fair price wanders, so books move
            b.fair = min(9_500, max(500, b.fair + (100 if rand() < 0.5 else -100)))
        ny, nn = len(b.yes), len(b.no)
        r = rand()
        if r < 0.18 and (ny or nn):
            self._trade(i, b, v)
            return
        # The top of the book (hence the ticker) changes only when the order touches the
        # best level of its side: tracking that is cheaper than comparing whole tops.
        if (r < 0.6 or ny + nn < 6) and (ny < MAX_LEVELS or nn < MAX_LEVELS):
            if ny >= MAX_LEVELS:
                side_yes = False
            elif nn >= MAX_LEVELS:
                side_yes = True
            else:
                side_yes = rand() < (0.7 if ny < nn else 0.3 if ny > nn else 0.5)
            levels = b.yes if side_yes else b.no
            best = max(levels) if levels else 0
            q = ADD_QTY[int(rand() * len(ADD_QTY))]
            p = self._add_order(b, side_yes, q)
            if p is None:
                return
            d = q
            touched = p >= best
        else:
            if not (ny or nn):
                return
            side_yes = (rand() < 0.5 or not nn) if ny else False
            levels = b.yes if side_yes else b.no
            best = max(levels)
            keys = list(levels)
            p = keys[int(rand() * len(keys))]
            have = levels[p]
            q = have if have == 1 or rand() < 0.6 else 1 + int(rand() * (have - 1))
            if q == have:
                del levels[p]
            else:
                levels[p] = have - q
            d = -q
            touched = p == best
        ms = v // 1000
        self.out.append(
            (
                CH_BOOK,
                i,
                K_DELTA,
                _DELTA
                % (b.tid, PRICES[p], d, b"yes" if side_yes else b"no", self.clock.rfc(ms), ms),
            )
        )
        if touched:
            self._ticker(i, b, v)

    def _add_order(self, b: MarketBook, side_yes: bool, q: int) -> int | None:
        """Rest ``q`` contracts near the fair price on one side without crossing the book."""
        tick = b.tick
        off = (1 + int(self.rng.random() * b.span)) * tick
        if side_yes:
            p = b.fair - off
            cap = PIPS - (max(b.no) if b.no else 0) - tick
        else:
            p = PIPS - b.fair - off
            cap = PIPS - (max(b.yes) if b.yes else 0) - tick
        p = min(p, cap)
        if p < tick:
            return None
        levels = b.yes if side_yes else b.no
        levels[p] = levels.get(p, 0) + q
        return p

    def _trade(self, i: int, b: MarketBook, v: int) -> None:
        """A taker hits the best resting bid: trade frame, the delta it causes, then ticker."""
        rng = self.rng
        if b.no and (not b.yes or rng.random() < 0.5):
            level = max(b.no)  # taker buys YES from the best NO bid
            yes_price, taker_yes = PIPS - level, True
        else:
            level = max(b.yes)  # taker sells YES into the best YES bid
            yes_price, taker_yes = level, False
        q = min(
            (b.no if taker_yes else b.yes)[level], TRADE_QTY[int(rng.random() * len(TRADE_QTY))]
        )
        ms = v // 1000
        tid = uuid4_str(rng.getrandbits(128))
        side = b"yes" if taker_yes else b"no"
        self.out.append(
            (
                CH_TRADE,
                i,
                K_TRADE,
                _TRADE
                % (
                    tid.encode(),
                    b.tj,
                    PRICES[yes_price],
                    PRICES[PIPS - yes_price],
                    q,
                    side,
                    side,
                    b"bid" if taker_yes else b"ask",
                    ms // 1000,
                    ms,
                ),
            )
        )
        self.trade_seq += 1
        self.trades.append(TradeRecord(self.trade_seq, tid, i, q, yes_price, taker_yes, ms))
        if len(self.trades) > 2 * self.trade_history:
            del self.trades[: len(self.trades) - self.trade_history]
        b.apply(not taker_yes, level, -q)
        self._delta(i, b, not taker_yes, level, -q, v)
        b.last, b.last_size = yes_price, q
        b.volume += q
        b.dv += q * yes_price
        b.oi = b.oi + q if rng.random() < 0.6 or b.oi < q else b.oi - q
        self._ticker(i, b, v)

    def _delta(self, i: int, b: MarketBook, side_yes: bool, p: int, d: int, v: int) -> None:
        ms = v // 1000
        self.out.append(
            (
                CH_BOOK,
                i,
                K_DELTA,
                _DELTA
                % (b.tid, PRICES[p], d, b"yes" if side_yes else b"no", self.clock.rfc(ms), ms),
            )
        )

    def ticker_tail(self, b: MarketBook, ms: int) -> bytes:
        y, ys, n, ns = b.top()
        return _TICKER % (
            b.idt,
            PRICES[b.last],
            PRICES[y],
            PRICES[PIPS - n],
            b.volume,
            b.oi,
            b.dv // PIPS,
            b.oi * b.last // PIPS,
            ys,
            ns,
            b.last_size,
            ms // 1000,
            ms,
            self.clock.rfc(ms),
            ms + SENDING_LAG_MS,
        )

    def _ticker(self, i: int, b: MarketBook, v: int) -> None:
        self.out.append((CH_TICKER, i, K_TICKER, self.ticker_tail(b, v // 1000)))

    # -- lifecycle ------------------------------------------------------------------------

    def _schedule(self, due: int, action: str, i: int) -> None:
        self._pending_n += 1
        heapq.heappush(self._pending, (due, self._pending_n, action, i))

    def _next_due(self) -> int:
        """Virtual time of the next lifecycle action (scheduled or periodic), or NEVER."""
        due = self._pending[0][0] if self._pending else NEVER
        return min(due, self.next_lc) if self.next_lc is not None else due

    def _lifecycle(self, v: int) -> None:
        if self._pending and self._pending[0][0] <= v:
            _, _, action, i = heapq.heappop(self._pending)
            getattr(self, f"_lc_{action}")(i, v)
            return
        assert self.next_lc is not None
        self.next_lc = max(self.next_lc + self.lc_us, v + 1)
        phase = self.lc_count % 4
        self.lc_count += 1
        if phase == 1 and self.active:
            self._lc_determine(self.active[int(self.rng.random() * len(self.active))], v)
        elif phase == 2 and len(self.active) > 1:
            self._lc_pause(self.active[int(self.rng.random() * len(self.active))], v)
        elif phase == 3 and self.active:
            self._lc_close_date(self.active[int(self.rng.random() * len(self.active))], v)
        else:
            self._lc_open(v)

    def _emit_market_lc(self, m: Market, v: int, fields: dict[str, object]) -> None:
        m.updated_ms = v // 1000
        body = {"event_type": fields.pop("event_type"), "market_ticker": m.ticker, **fields}
        self.out.append((CH_LIFECYCLE, m.index, K_MARKET_LC, orjson.dumps(body) + b"}"))

    def _lc_open(self, v: int) -> None:
        """Open a market: an unopened one if any, else a new one (in a new event at times)."""
        u = self.u
        while self._unopened:
            i = self._unopened.pop(0)
            if u.markets[i].status is MarketStatus.INITIALIZED:
                self._lc_activate(i, v)
                return
        rng = self.rng
        ti = rng.randrange(len(TEMPLATES))
        ms = v // 1000
        target: Event | None = None
        if TEMPLATES[ti].kind in ("above", "range") and rng.random() < 0.5:
            # A new strike in a recent open event of this kind (a few tries: stay O(1)).
            candidates = u.by_template.get(ti, [])[-8:]
            for _ in range(3):
                if not candidates:
                    break
                e = u.events[candidates[int(rng.random() * len(candidates))]]
                if u.event_status(e) == "open":
                    target = e
                    break
        if target is not None:
            m = u.new_market(target, ms)
        else:
            before = len(u.markets)
            ev = u.new_event(ti, ms, limit=1)
            self._emit_event_lc(ev)
            m = u.markets[before]
        self._add_book(m, populate=False)
        ev = u.events[m.event_ticker]
        meta: dict[str, object] = {
            "name": ev.title,
            "title": m.title,
            "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title,
            "rules_primary": m.rules_primary,
            "rules_secondary": "",
            "can_close_early": m.can_close_early,
            "event_ticker": m.event_ticker,
            "expected_expiration_ts": m.expected_expiration_ts,
            "strike_type": m.strike_type,
        }
        if m.floor_strike is not None:
            meta["floor_strike"] = m.floor_strike
        if m.cap_strike is not None:
            meta["cap_strike"] = m.cap_strike
        if m.custom_strike is not None:
            meta["custom_strike"] = m.custom_strike
        self._emit_market_lc(
            m,
            v,
            {
                "event_type": "created",
                "open_ts": m.open_ts,
                "close_ts": m.close_ts,
                "price_level_structure": m.price_level_structure,
                "price_ranges": [
                    {"start": "0.0000", "end": "1.0000", "step": PRICES[m.tick].decode()}
                ],
                "additional_metadata": meta,
            },
        )
        self._schedule(v + self.lc_us // 2, "activate", m.index)

    def _emit_event_lc(self, ev: Event) -> None:
        body: dict[str, object] = {
            "event_ticker": ev.event_ticker,
            "title": ev.title,
            "subtitle": ev.sub_title,
            "collateral_return_type": ev.collateral_return_type,
            "series_ticker": ev.series_ticker,
        }
        if ev.strike_date is not None:
            body["strike_date"] = ev.strike_date
        self.out.append((CH_LIFECYCLE, -1, K_EVENT_LC, orjson.dumps(body) + b"}"))

    def _lc_activate(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        if m.status is not MarketStatus.INITIALIZED:
            return
        m.status = MarketStatus.ACTIVE
        m.open_ts = v // 1_000_000
        self._activate(i)
        self._emit_market_lc(m, v, {"event_type": "activated"})

    def _lc_determine(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        b = self.books[i]
        self._deactivate(i)
        b.frozen = True
        m.status = MarketStatus.DETERMINED
        m.result = "yes" if (b.last or b.fair) >= PIPS // 2 else "no"
        m.settlement_value = PIPS if m.result == "yes" else 0
        m.determination_ts = v // 1_000_000
        self._emit_market_lc(
            m,
            v,
            {
                "event_type": "determined",
                "result": m.result,
                "determination_ts": m.determination_ts,
                "settlement_value": PRICES[m.settlement_value].decode(),
            },
        )
        self._schedule(v + self.lc_us // 2, "settle", i)

    def _lc_settle(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        m.status = MarketStatus.FINALIZED
        m.settled_ts = v // 1_000_000
        self._emit_market_lc(m, v, {"event_type": "settled", "settled_ts": m.settled_ts})

    def _lc_pause(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        self._deactivate(i)
        m.status = MarketStatus.INACTIVE
        self._emit_market_lc(m, v, {"event_type": "deactivated", "is_deactivated": True})
        self._schedule(v + self.lc_us // 2, "unpause", i)

    def _lc_unpause(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        if m.status is not MarketStatus.INACTIVE:
            return
        m.status = MarketStatus.ACTIVE
        self._activate(i)
        self._emit_market_lc(m, v, {"event_type": "activated", "is_deactivated": False})

    def _lc_close_date(self, i: int, v: int) -> None:
        m = self.u.markets[i]
        m.close_ts += 3600
        m.expected_expiration_ts = m.close_ts + 300
        self._emit_market_lc(m, v, {"event_type": "close_date_updated", "close_ts": m.close_ts})
