"""Byte-level formatting shared by the engine and the server.

Frames are assembled from precomputed byte fragments instead of ``orjson.dumps`` of dicts:
the hot path builds tens of thousands of frames per second, and the exact key order and
number formats must match the exchange's (4-decimal dollar strings, 2-decimal ``_fp``).
"""

from __future__ import annotations

import struct
import time

import orjson

PIPS = 10_000  # price unit: 1/10000 dollar, the finest grid Kalshi prices use

# PRICES[p] is the dollar string for p pips: PRICES[4500] == b"0.4500".
PRICES: tuple[bytes, ...] = tuple(b"%d.%04d" % divmod(p, PIPS) for p in range(PIPS + 1))


def price_str(pips: int) -> str:
    return PRICES[pips].decode()


def fp_str(count: int) -> str:
    """Fixed-point contract count with 2 decimals; the simulator trades whole contracts."""
    return f"{count}.00"


def rfc3339_ms(ms: int) -> str:
    """``2025-12-31T20:00:01.200Z``; whole seconds print without a fraction, like Kalshi."""
    sec, frac = divmod(ms, 1000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{base}Z" if frac == 0 else f"{base}.{frac:03d}Z"


def rfc3339_s(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


def uuid4_str(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (drawn from a seeded RNG)."""
    v = (bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def jstr(s: str) -> bytes:
    """A JSON string literal (quoted and escaped)."""
    return orjson.dumps(s)


class MsClock:
    """Caches the RFC 3339 rendering of the current virtual millisecond (many frames share one)."""

    __slots__ = ("_ms", "_rfc", "_sec", "_sec_str")

    def __init__(self) -> None:
        self._ms = -1
        self._rfc = b""
        self._sec = -1
        self._sec_str = b""

    def rfc(self, ms: int) -> bytes:
        if ms != self._ms:
            sec, frac = divmod(ms, 1000)
            if sec != self._sec:
                self._sec = sec
                self._sec_str = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()
            self._ms = ms
            self._rfc = self._sec_str + (b"Z" if frac == 0 else b".%03dZ" % frac)
        return self._rfc


_H1 = struct.Struct("!BB").pack
_H2 = struct.Struct("!BBH").pack
_H3 = struct.Struct("!BBQ").pack


def ws_text_frames(payloads: list[bytes]) -> bytes:
    """RFC 6455 unmasked, unfragmented text frames (server to client), concatenated.

    Writing a whole batch with one ``transport.write`` costs one syscall instead of one per
    frame; that is most of the simulator's throughput.
    """
    parts: list[bytes] = []
    append = parts.append
    for p in payloads:
        n = len(p)
        if n < 126:
            append(_H1(0x81, n))
        elif n < 65536:
            append(_H2(0x81, 126, n))
        else:
            append(_H3(0x81, 127, n))
        append(p)
    return b"".join(parts)
