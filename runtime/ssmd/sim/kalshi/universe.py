"""The market universe: series, events and markets, deterministic from the seed.

Tickers follow Kalshi's shapes: ``SERIES-DATECODE-STRIKE`` (``KXBTCD-26JAN01-T100000``),
hourly date codes (``KXBTCD-25DEC3115-T99999.99``, with a ``.`` that subject escaping must
survive), monthly ones (``FED-26JAN-T3.25``) and games (``KXNFLGAME-26JAN04BUFNYJ-BUF``).
"""

from __future__ import annotations

import calendar
import itertools
import random
import time
from dataclasses import dataclass, field
from enum import StrEnum

from ssmd.sim.kalshi.wire import uuid4_str

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAY_S = 86_400


class MarketStatus(StrEnum):
    """REST ``Market.status`` vocabulary (not the query filter's, see ``STATUS_FILTER``)."""

    INITIALIZED = "initialized"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CLOSED = "closed"
    DETERMINED = "determined"
    FINALIZED = "finalized"


# GET /markets?status=... uses another vocabulary than the Market object.
STATUS_FILTER: dict[str, frozenset[MarketStatus]] = {
    "unopened": frozenset({MarketStatus.INITIALIZED}),
    "open": frozenset({MarketStatus.ACTIVE}),
    "paused": frozenset({MarketStatus.INACTIVE}),
    "closed": frozenset({MarketStatus.CLOSED, MarketStatus.DETERMINED}),
    "settled": frozenset({MarketStatus.FINALIZED}),
}


@dataclass(frozen=True)
class Template:
    series: str
    series_title: str
    category: str
    frequency: str
    kind: str  # above | range | game | party
    name: str  # event title; {day} and {hour} are filled in
    base: float = 0.0
    step: float = 1.0
    decimals: int = 0
    n: tuple[int, int] = (3, 7)
    hourly: bool = False
    monthly: bool = False
    tick: int = 100  # pips: 100 = linear_cent, 10 = deci_cent
    unit: str = ""
    teams: tuple[str, ...] = ()
    source: tuple[str, str] = ("Kalshi", "https://kalshi.com")


TEMPLATES: tuple[Template, ...] = (
    Template(
        "KXBTCD",
        "Bitcoin price",
        "Crypto",
        "daily",
        "above",
        "Bitcoin price on {day}?",
        base=100000,
        step=2500,
        unit="$",
        source=("CF Benchmarks", "https://www.cfbenchmarks.com"),
    ),
    Template(
        "KXBTCD",
        "Bitcoin price",
        "Crypto",
        "daily",
        "above",
        "Bitcoin price on {day} at {hour}?",
        base=99999.99,
        step=500,
        decimals=2,
        hourly=True,
        tick=10,
        unit="$",
        source=("CF Benchmarks", "https://www.cfbenchmarks.com"),
    ),
    Template(
        "KXETHD",
        "Ethereum price",
        "Crypto",
        "daily",
        "above",
        "Ethereum price on {day}?",
        base=3500,
        step=50,
        unit="$",
        source=("CF Benchmarks", "https://www.cfbenchmarks.com"),
    ),
    Template(
        "INXD",
        "S&P 500 range",
        "Financials",
        "daily",
        "range",
        "S&P 500 on {day}?",
        base=5000,
        step=25,
        n=(4, 8),
        source=("S&P Dow Jones Indices", "https://www.spglobal.com"),
    ),
    Template(
        "KXHIGHNY",
        "Highest temperature in NYC",
        "Climate and Weather",
        "daily",
        "range",
        "Highest temperature in NYC on {day}?",
        base=43.5,
        step=2,
        decimals=1,
        source=("National Weather Service", "https://www.weather.gov"),
    ),
    Template(
        "FED",
        "Fed funds rate",
        "Economics",
        "monthly",
        "above",
        "Fed funds rate after {day}?",
        base=3.0,
        step=0.25,
        decimals=2,
        monthly=True,
        unit="",
        source=("Federal Reserve", "https://www.federalreserve.gov"),
    ),
    Template(
        "CPI",
        "CPI month over month",
        "Economics",
        "monthly",
        "above",
        "CPI in {day}?",
        base=0.1,
        step=0.1,
        decimals=1,
        monthly=True,
        n=(3, 5),
        source=("Bureau of Labor Statistics", "https://www.bls.gov"),
    ),
    Template(
        "KXNFLGAME",
        "NFL game",
        "Sports",
        "custom",
        "game",
        "{away} at {home} ({day})",
        teams=("BUF", "NYJ", "KC", "LV", "DAL", "PHI", "SF", "SEA", "GB", "CHI", "MIA", "NE"),
        source=("NFL", "https://www.nfl.com"),
    ),
    Template(
        "KXNBAGAME",
        "NBA game",
        "Sports",
        "custom",
        "game",
        "{away} at {home} ({day})",
        teams=("LAL", "BOS", "GSW", "NYK", "MIA", "DEN", "PHX", "MIL", "DAL", "CHI"),
        source=("NBA", "https://www.nba.com"),
    ),
    Template(
        "KXPRESPARTY",
        "Presidential election winner party",
        "Politics",
        "custom",
        "party",
        "Which party will win the {day} presidential election?",
        source=("Associated Press", "https://apnews.com"),
    ),
)


@dataclass
class Series:
    ticker: str
    title: str
    category: str
    frequency: str
    settlement_source: tuple[str, str]
    tags: list[str] = field(default_factory=list)


@dataclass
class Event:
    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    category: str
    mutually_exclusive: bool
    collateral_return_type: str
    strike_date: int | None  # unix seconds
    template: int  # index into TEMPLATES
    next_strike: int = 0  # strike index for the next market created in this event
    teams: tuple[str, ...] = ()  # game events: (away, home)
    markets: list[int] = field(default_factory=list)


@dataclass
class Market:
    index: int
    ticker: str
    event_ticker: str
    series_ticker: str
    market_id: str
    title: str
    yes_sub_title: str
    no_sub_title: str
    rules_primary: str
    strike_type: str
    floor_strike: float | None
    cap_strike: float | None
    custom_strike: dict[str, str] | None
    tick: int
    created_ms: int
    updated_ms: int
    open_ts: int
    close_ts: int
    expected_expiration_ts: int
    status: MarketStatus
    can_close_early: bool = False
    result: str = ""
    settlement_value: int | None = None  # pips
    determination_ts: int | None = None
    settled_ts: int | None = None

    @property
    def price_level_structure(self) -> str:
        return "linear_cent" if self.tick == 100 else "deci_cent"

    @property
    def tradeable(self) -> bool:
        return self.status is MarketStatus.ACTIVE


def _yy(year: int) -> str:
    """Kalshi's two-digit year; four digits past 2099 so codes never wrap around."""
    return f"{year % 100:02d}" if year < 2100 else str(year)


def _strike_text(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _money(value: float, decimals: int, unit: str) -> str:
    return f"{unit}{value:,.{decimals}f}"


class Universe:
    """Every series, event and market, plus the generator that adds new ones while running."""

    def __init__(self, seed: int, n_markets: int, start_ms: int) -> None:
        self.rng = random.Random(f"ssmd-sim-universe-{seed}")
        self.start_ms = start_ms
        self.series: dict[str, Series] = {}
        self.events: dict[str, Event] = {}
        self.markets: list[Market] = []
        self.by_ticker: dict[str, int] = {}
        self.by_id: dict[str, int] = {}
        self.by_template: dict[int, list[str]] = {}  # event tickers per template, oldest first
        self._day = [0] * len(TEMPLATES)  # next date offset per template
        self._build(n_markets)

    # -- building -------------------------------------------------------------------------

    def _build(self, n: int) -> None:
        rng = self.rng
        order = [0, 1]  # a daily and an hourly (dotted tickers) event come first
        while len(self.markets) < n:
            ti = order.pop(0) if order else rng.randrange(len(TEMPLATES))
            self.new_event(
                ti,
                self.start_ms - rng.randrange(1, 72) * 3_600_000,
                limit=n - len(self.markets),
                initial=True,
            )

    def _date_code(self, t: Template, day: int) -> tuple[str, str, int]:
        """(date code, human date, strike unix seconds) for day offset ``day``."""
        start_day = self.start_ms // 1000 // DAY_S * DAY_S
        if t.monthly:
            tm = time.gmtime(start_day)
            y, m = tm.tm_year, tm.tm_mon + day  # next month onwards: always in the future
            y, m = y + m // 12, m % 12
            code = f"{_yy(y)}{MONTHS[m]}"
            ts = calendar.timegm((y, m + 1, 28, 18, 0, 0, 0, 0, 0))
            return code, f"{MONTH_NAMES[m]} {y}", ts
        hour = 0
        d = day
        if t.hourly:
            d, hour = divmod(day + 15, 24)  # hourly events: 15h, 16h, ... of successive days
        sec = start_day + d * DAY_S
        tm = time.gmtime(sec)
        code = f"{_yy(tm.tm_year)}{MONTHS[tm.tm_mon - 1]}{tm.tm_mday:02d}"
        human = f"{MONTH_NAMES[tm.tm_mon - 1]} {tm.tm_mday}, {tm.tm_year}"
        if t.hourly:
            code += f"{hour:02d}"
            return code, human, sec + hour * 3600
        return code, human, sec + 22 * 3600  # 5pm EST

    def new_event(
        self, ti: int, created_ms: int, limit: int | None = None, initial: bool = False
    ) -> Event:
        t = TEMPLATES[ti]
        rng = self.rng
        for attempt in itertools.count():
            day = self._day[ti]
            self._day[ti] += 1 if t.kind != "party" else 4
            code, human, strike_ts = self._date_code(t, day)
            hour_txt = ""
            teams: tuple[str, ...] = ()
            if t.kind == "game":
                away, home = rng.sample(t.teams, 2)
                code = f"{code}{away}{home}"
                teams = (away, home)
                title = t.name.format(away=away, home=home, day=human)
            elif t.kind == "party":
                tm = time.gmtime(self.start_ms // 1000)
                year = (tm.tm_year + 3) // 4 * 4 + 4 * (day // 4)
                code = _yy(year)
                human = str(year)
                title = t.name.format(day=year)
            else:
                if t.hourly:
                    hour_txt = time.strftime("%-I%p", time.gmtime(strike_ts)).lower() + " UTC"
                title = t.name.format(day=human, hour=hour_txt)
            ev_ticker = f"{t.series}-{code}"
            if attempt >= 100:  # never loop forever, whatever the calendar does
                ev_ticker += f"N{attempt}"
            if ev_ticker not in self.events:
                break
        series = self.series.get(t.series)
        if series is None:
            series = Series(
                t.series, t.series_title, t.category, t.frequency, t.source, [t.category]
            )
            self.series[t.series] = series
        ev = Event(
            event_ticker=ev_ticker,
            series_ticker=t.series,
            title=title,
            sub_title=f"{human} {hour_txt}".strip(),
            category=t.category,
            mutually_exclusive=t.kind in ("range", "game", "party"),
            collateral_return_type="MECNET" if t.kind in ("game", "party") else "",
            strike_date=strike_ts if t.kind != "party" else None,
            template=ti,
            teams=teams,
        )
        self.events[ev_ticker] = ev
        self.by_template.setdefault(ti, []).append(ev_ticker)
        count = 2 if t.kind in ("game", "party") else rng.randint(*t.n)
        if limit is not None:
            count = max(1, min(count, limit))
        for _ in range(count):
            self.new_market(ev, created_ms, initial=initial)
        return ev

    def new_market(self, ev: Event, created_ms: int, initial: bool = False) -> Market:
        t = TEMPLATES[ev.template]
        rng = self.rng
        k = ev.next_strike
        ev.next_strike += 1
        floor: float | None = None
        cap: float | None = None
        custom: dict[str, str] | None = None
        if t.kind == "game":
            team = ev.teams[k % 2]
            suffix = team if k < 2 else f"{team}{k}"
            yes_sub, no_sub = team, f"Not {team}"
            title = f"{ev.title}: {team} wins?"
            strike_type = "custom"
            custom = {"team": team}
            rules = f"If {team} wins the game, then the market resolves to Yes."
        elif t.kind == "party":
            party = ("D", "R", "I", "L", "G")[k % 5]
            suffix = party if k < 5 else f"{party}{k}"
            name = {
                "D": "Democratic",
                "R": "Republican",
                "I": "Independent",
                "L": "Libertarian",
                "G": "Green",
            }[party]
            yes_sub, no_sub = f"{name} party", f"Not {name} party"
            title = f"Will the {name} party win the presidency?"
            strike_type = "custom"
            custom = {"party": name}
            rules = f"If the {name} party's candidate wins, then the market resolves to Yes."
        else:
            # Strikes fan out around the base: 0, +1, -1, +2, -2, ... steps.
            off = (k + 1) // 2 * (1 if k % 2 else -1)
            value = round(t.base + off * t.step, t.decimals)
            if t.kind == "above":
                suffix = "T" + _strike_text(value, t.decimals)
                floor = value if t.decimals else value - 0.01
                yes_sub = f"{_money(value, t.decimals, t.unit)} or above"
                no_sub = f"Below {_money(value, t.decimals, t.unit)}"
                strike_type = "greater"
                rules = f"If the {t.series_title} is above {floor} for {ev.sub_title}, then the market resolves to Yes."
            else:
                suffix = "B" + _strike_text(value, t.decimals)
                half = t.step / 2
                floor, cap = round(value - half, 2), round(value + half - 0.01, 2)
                yes_sub = f"{floor:,} to {cap:,}"
                no_sub = f"Not {floor:,} to {cap:,}"
                strike_type = "between"
                rules = f"If the {t.series_title} is between {floor} and {cap} for {ev.sub_title}, then the market resolves to Yes."
            title = f"{ev.title} {yes_sub}"
        ticker = f"{ev.event_ticker}-{suffix}"
        while ticker in self.by_ticker:  # never collide, even after many rollovers
            ticker += "X"
        created_s = created_ms // 1000
        close_ts = ev.strike_date if ev.strike_date else created_s + 365 * DAY_S
        if close_ts <= created_s:
            close_ts = created_s + 3600
        status = MarketStatus.INITIALIZED
        if initial:
            r = rng.random()
            if r < 0.04 and self.markets:
                status = MarketStatus.INITIALIZED
            elif r < 0.08 and self.markets:
                status = MarketStatus.FINALIZED
            else:
                status = MarketStatus.ACTIVE
        m = Market(
            index=len(self.markets),
            ticker=ticker,
            event_ticker=ev.event_ticker,
            series_ticker=ev.series_ticker,
            market_id=uuid4_str(rng.getrandbits(128)),
            title=title,
            yes_sub_title=yes_sub,
            no_sub_title=no_sub,
            rules_primary=rules,
            strike_type=strike_type,
            floor_strike=floor,
            cap_strike=cap,
            custom_strike=custom,
            tick=t.tick,
            created_ms=created_ms,
            updated_ms=created_ms,
            open_ts=created_s,
            close_ts=close_ts,
            expected_expiration_ts=close_ts + 300,
            status=status,
            can_close_early=t.kind in ("game", "party"),
        )
        if status is MarketStatus.FINALIZED:
            m.result = rng.choice(("yes", "no"))
            m.settlement_value = 10_000 if m.result == "yes" else 0
            m.determination_ts = created_s + 60
            m.settled_ts = created_s + 120
        self.markets.append(m)
        self.by_ticker[ticker] = m.index
        self.by_id[m.market_id] = m.index
        ev.markets.append(m.index)
        return m

    # -- queries --------------------------------------------------------------------------

    def market(self, ticker: str) -> Market | None:
        i = self.by_ticker.get(ticker)
        return None if i is None else self.markets[i]

    def event_status(self, ev: Event) -> str:
        statuses = {self.markets[i].status for i in ev.markets}
        if statuses & {MarketStatus.INITIALIZED, MarketStatus.ACTIVE, MarketStatus.INACTIVE}:
            return "open"
        if statuses <= {MarketStatus.FINALIZED}:
            return "settled"
        return "closed"
