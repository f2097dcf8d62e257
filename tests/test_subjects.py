"""The subject contract: building, parsing, reversible ticker escaping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd import subjects as S


@given(st.text())
def test_ticker_escaping_is_reversible_and_a_valid_token(ticker: str) -> None:
    token = S.escape_ticker(ticker)
    assert S.unescape_ticker(token) == ticker
    assert token  # never an empty token
    assert not any(c in token for c in ".*> \t\r\n")


@given(st.text(min_size=1))
def test_json_subject_round_trip(ticker: str) -> None:
    subj = S.json_subject("prod", "kalshi", "orderbook", ticker)
    parsed = S.parse_subject(subj)
    assert parsed == S.Subject("json", "prod", "kalshi", "orderbook", ticker)
    assert str(parsed) == subj


def test_examples() -> None:
    assert S.json_subject("prod", "kalshi", "trade", "KXBTCD-25DEC3115-T99999.99") == (
        "prod.kalshi.json.trade.KXBTCD-25DEC3115-T99999%2E99"
    )
    assert S.json_subject("prod", "kalshi", "control", None) == "prod.kalshi.json.control._"
    assert S.escape_ticker("_") != S.NO_TICKER
    assert S.book_subject("prod", "kalshi", "A.B") == "prod.kalshi.book.A%2EB"
    assert S.gap_subject("prod", "kalshi") == "prod.kalshi.gap"
    assert S.json_subject("prod", "kalshi", "orderbook", "T").startswith(
        S.json_type_prefix("prod", "kalshi", "orderbook")
    )
    assert S.meta_market_subject("prod", "kalshi", "X") == "prod.kalshi.meta.market.X"
    assert S.dlq_subject("prod", "connector") == "prod.ssmd.dlq.connector"
    assert S.stream_name("kalshi-demo", "kalshi") == "KALSHI-DEMO_KALSHI"
    assert S.books_stream_name("prod", "kalshi") == "PROD_KALSHI_BOOKS"
    assert S.dlq_stream_name("prod") == "PROD_DLQ"


@pytest.mark.parametrize(
    "subject",
    [
        "prod.kalshi.json.orderbook.T",
        "prod.kalshi.json.control._",
        "prod.kalshi.book.T%2E1",
        "prod.kalshi.gap",
        "prod.kalshi.meta.market.T",
        "prod.ssmd.dlq.archiver",
    ],
)
def test_parse_then_build_is_identity(subject: str) -> None:
    assert str(S.parse_subject(subject)) == subject


@pytest.mark.parametrize("bad", ["prod", "prod.kalshi.json.nope.T", "a.b.c.d.e.f.g"])
def test_parse_rejects_foreign_subjects(bad: str) -> None:
    with pytest.raises(S.SubjectError):
        S.parse_subject(bad)


def test_frame_types() -> None:
    assert S.frame_type_for("orderbook_snapshot") == S.frame_type_for("orderbook_delta")
    assert S.frame_type_for("market_lifecycle_v2") == "lifecycle"
    assert S.frame_type_for("subscribed") == "control"
    assert S.frame_type_for(None) == "control"


def test_names_checked() -> None:
    assert S.check_name("environment", "kalshi-demo") == "kalshi-demo"
    with pytest.raises(S.SubjectError, match="lower-case"):
        S.check_name("environment", "Prod.1")
