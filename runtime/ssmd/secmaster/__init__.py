"""Secmaster: market metadata from Kalshi REST into NATS KV ``{env}-secmaster``."""

from ssmd.secmaster.store import MarketStore, kv_key, market_record
from ssmd.secmaster.sync import SyncResult, sync_once

__all__ = ["MarketStore", "SyncResult", "kv_key", "market_record", "sync_once"]
