"""The NATS naming contract: subjects, stream names, KV buckets, consumer names.

Every component builds and parses subjects through this module and nowhere else.

Subjects (all lower case except tickers, which keep their case):

* ``{env}.{feed}.json.{type}.{ticker}``  one exchange frame, bytes unchanged
* ``{env}.{feed}.book.{ticker}``         normalized full-book checkpoint
* ``{env}.{feed}.gap``                   a gap record
* ``{env}.{feed}.meta.market.{ticker}``  secmaster change event
* ``{env}.ssmd.dlq.{component}``         dead letter
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

FrameType = Literal["trade", "ticker", "orderbook", "lifecycle", "control"]
FRAME_TYPES: tuple[FrameType, ...] = ("trade", "ticker", "orderbook", "lifecycle", "control")

# Exchange `type` field -> subject type. Snapshots and deltas share "orderbook" so their
# relative order is kept within one subject.
KALSHI_TYPE_MAP: dict[str, FrameType] = {
    "orderbook_snapshot": "orderbook",
    "orderbook_delta": "orderbook",
    "trade": "trade",
    "ticker": "ticker",
    "ticker_v2": "ticker",
    "market_lifecycle_v2": "lifecycle",
    "event_lifecycle": "lifecycle",
    "multivariate_lookup": "lifecycle",
}

# A frame with no market (subscribed/ok/error/...) is published under this ticker token.
NO_TICKER = "_"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# Escaping: only characters that NATS treats specially, '%' itself (so it is reversible)
# and characters that cannot appear in a token. Order matters for '%': it is escaped first.
_ESCAPES = {"%": "%25", ".": "%2E", "*": "%2A", ">": "%3E", " ": "%20"}
_ESCAPE_RE = re.compile(r"[%.*> \x00-\x1f\x7f]")
_UNESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


class SubjectError(ValueError):
    """A subject or name that does not follow the contract."""


def check_name(kind: str, value: str) -> str:
    """Environment and feed names: lower-case letters, digits and '-' (they become tokens)."""
    if not _NAME_RE.match(value):
        raise SubjectError(
            f"{kind} name {value!r} is invalid: use lower-case letters, digits and '-', "
            "starting with a letter or digit"
        )
    return value


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ESCAPES.get(c) or f"%{ord(c):02X}"


def escape_ticker(ticker: str) -> str:
    """Make a ticker a valid, reversible subject token (``.`` → ``%2E`` etc.)."""
    if ticker == "":
        return "%"  # an empty token is illegal; '%' alone can never come from escaping
    if ticker == NO_TICKER:
        return "%5F"  # keep the "no market" token unambiguous
    return _ESCAPE_RE.sub(_escape_char, ticker)


def unescape_ticker(token: str) -> str:
    if token == "%":
        return ""
    return _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), token)


def frame_type_for(exchange_type: str | None) -> FrameType:
    if exchange_type is None:
        return "control"
    return KALSHI_TYPE_MAP.get(exchange_type, "control")


def json_subject(env: str, feed: str, ftype: FrameType, ticker: str | None) -> str:
    return f"{env}.{feed}.json.{ftype}.{escape_ticker(ticker) if ticker else NO_TICKER}"


def json_type_prefix(env: str, feed: str, ftype: FrameType) -> str:
    """``{env}.{feed}.json.{type}.``: every subject of one frame type starts with it."""
    return f"{env}.{feed}.json.{ftype}."


def json_wildcard(env: str, feed: str) -> str:
    return f"{env}.{feed}.json.>"


def book_subject(env: str, feed: str, ticker: str) -> str:
    return f"{env}.{feed}.book.{escape_ticker(ticker)}"


def book_wildcard(env: str, feed: str) -> str:
    return f"{env}.{feed}.book.>"


def gap_subject(env: str, feed: str) -> str:
    return f"{env}.{feed}.gap"


def meta_market_subject(env: str, feed: str, ticker: str) -> str:
    return f"{env}.{feed}.meta.market.{escape_ticker(ticker)}"


def meta_wildcard(env: str, feed: str) -> str:
    return f"{env}.{feed}.meta.>"


def dlq_subject(env: str, component: str) -> str:
    return f"{env}.ssmd.dlq.{component}"


def dlq_wildcard(env: str) -> str:
    return f"{env}.ssmd.dlq.>"


def feed_wildcard(env: str, feed: str) -> str:
    return f"{env}.{feed}.>"


def stream_name(env: str, feed: str) -> str:
    """``{ENV}_{FEED}``: upper case, '-' kept."""
    return f"{env.upper()}_{feed.upper()}"


def books_stream_name(env: str, feed: str) -> str:
    return f"{stream_name(env, feed)}_BOOKS"


def dlq_stream_name(env: str) -> str:
    return f"{env.upper()}_DLQ"


def status_bucket(env: str) -> str:
    return f"{env}-status"


def secmaster_bucket(env: str) -> str:
    return f"{env}-secmaster"


def archiver_consumer(env: str, feed: str) -> str:
    return f"ssmd-archiver-{env}-{feed}"


SubjectKind = Literal["json", "book", "gap", "meta", "dlq"]


@dataclass(frozen=True)
class Subject:
    """A parsed subject. ``ticker`` is unescaped; ``None`` where the subject has none."""

    kind: SubjectKind
    env: str
    feed: str | None
    ftype: FrameType | None = None
    ticker: str | None = None
    component: str | None = None

    def __str__(self) -> str:
        if self.kind == "json":
            assert self.feed is not None and self.ftype is not None
            return json_subject(self.env, self.feed, self.ftype, self.ticker)
        if self.kind == "book":
            assert self.feed is not None and self.ticker is not None
            return book_subject(self.env, self.feed, self.ticker)
        if self.kind == "gap":
            assert self.feed is not None
            return gap_subject(self.env, self.feed)
        if self.kind == "meta":
            assert self.feed is not None and self.ticker is not None
            return meta_market_subject(self.env, self.feed, self.ticker)
        assert self.component is not None
        return dlq_subject(self.env, self.component)


def parse_subject(subject: str) -> Subject:
    """Parse any subject of the contract; raise :class:`SubjectError` otherwise."""
    parts = subject.split(".")
    if len(parts) >= 4 and parts[1] == "ssmd" and parts[2] == "dlq" and len(parts) == 4:
        return Subject(kind="dlq", env=parts[0], feed=None, component=parts[3])
    if len(parts) == 5 and parts[2] == "json":
        ftype = parts[3]
        if ftype not in FRAME_TYPES:
            raise SubjectError(f"unknown frame type {ftype!r} in subject {subject!r}")
        ticker = None if parts[4] == NO_TICKER else unescape_ticker(parts[4])
        return Subject(kind="json", env=parts[0], feed=parts[1], ftype=ftype, ticker=ticker)
    if len(parts) == 4 and parts[2] == "book":
        return Subject(kind="book", env=parts[0], feed=parts[1], ticker=unescape_ticker(parts[3]))
    if len(parts) == 3 and parts[2] == "gap":
        return Subject(kind="gap", env=parts[0], feed=parts[1])
    if len(parts) == 5 and parts[2] == "meta" and parts[3] == "market":
        return Subject(kind="meta", env=parts[0], feed=parts[1], ticker=unescape_ticker(parts[4]))
    raise SubjectError(f"{subject!r} is not an ssmd subject")
