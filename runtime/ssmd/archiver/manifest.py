"""The archive contract, owned here and only here: paths, the line format, the codecs and
the per-day manifest. The archiver writes through it; ``ssmd data`` and anything else that
reads an archive imports it.

Layout (local directory or S3 keys under a prefix)::

    {root}/{feed}/{YYYY-MM-DD}/{HHMM}.jsonl.zst      one file per rotation window (UTC)
    {root}/{feed}/{YYYY-MM-DD}/{HHMM}.jsonl.zst.partial   being written (never read as final)
    {root}/{feed}/{YYYY-MM-DD}/manifest.json

Line: ``{"seq":N,"recv_ns":N,"subject":"...","frame":<raw frame>}`` + ``\\n``. The frame is
spliced in byte for byte. A frame that cannot be spliced (not a JSON object/array on one line)
is stored as ``"frame_b64":"..."`` instead, so it is still kept exactly and the line stays JSON.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson
import zstandard

from ssmd import subjects

Format = Literal["zstd", "gzip"]
EXTENSIONS: dict[str, str] = {"zstd": ".jsonl.zst", "gzip": ".jsonl.gz"}
PARTIAL = ".partial"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The fixed prefix of every line; the frame follows and the line ends with "}\n".
_LINE_RE = re.compile(
    rb'\{"seq":(\d+),"recv_ns":(\d+),"subject":("(?:[^"\\]|\\.)*"),"(frame|frame_b64)":'
)


class ArchiveFormatError(ValueError):
    """A line or file that does not follow the archive contract."""


# --------------------------------------------------------------------------- paths


def is_date(value: str) -> bool:
    return bool(_DATE_RE.match(value))


def date_of_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d")


def window_start_ns(ns: int, interval_ns: int) -> int:
    """Start of the UTC rotation window holding ``ns`` (windows are aligned to midnight)."""
    day = ns - ns % 86_400_000_000_000
    return day + (ns - day) // interval_ns * interval_ns


def file_stem(window_ns: int) -> str:
    return datetime.fromtimestamp(window_ns / 1e9, UTC).strftime("%H%M")


def file_name(stem: str, fmt: Format) -> str:
    return stem + EXTENSIONS[fmt]


def format_of(name: str) -> Format:
    base = name.removesuffix(PARTIAL)
    for fmt, ext in EXTENSIONS.items():
        if base.endswith(ext):
            return fmt  # type: ignore[return-value]
    raise ArchiveFormatError(f"{name} is not an archive file ({', '.join(EXTENSIONS.values())})")


def is_archive_file(name: str) -> bool:
    return any(name.endswith(ext) for ext in EXTENSIONS.values())


def is_partial(name: str) -> bool:
    return name.endswith(PARTIAL) and is_archive_file(name.removesuffix(PARTIAL))


def day_dir(root: Path, feed: str, date: str) -> Path:
    return root / feed / date


def object_key(prefix: str, feed: str, date: str, name: str) -> str:
    """The S3 key of an archive object: the same layout as on disk, under ``prefix``."""
    p = prefix.strip("/")
    return f"{p}/{feed}/{date}/{name}" if p else f"{feed}/{date}/{name}"


def iso_ns(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


# --------------------------------------------------------------------------- lines


def frame_is_spliceable(frame: bytes) -> bool:
    # Cheap structural check (a full JSON parse would cost more than the rest of the line):
    # an object or array on one line keeps the archive line valid JSON.
    return (
        len(frame) >= 2
        and ((frame[0] == 123 and frame[-1] == 125) or (frame[0] == 91 and frame[-1] == 93))
        and b"\n" not in frame
        and b"\r" not in frame
    )


class LineEncoder:
    """Builds archive lines by byte concatenation; caches the encoded subject part."""

    def __init__(self) -> None:
        self._subject_part: dict[str, bytes] = {}

    def encode(self, seq: int, recv_ns: int, subject: str, frame: bytes) -> tuple[bytes, bool]:
        """The line, and whether the frame was spliced in raw (False: stored base64)."""
        part = self._subject_part.get(subject)
        if part is None:
            if len(self._subject_part) > 200_000:  # bounded: tickers come and go all day
                self._subject_part.clear()
            part = b',"subject":' + orjson.dumps(subject)
            self._subject_part[subject] = part
        if frame_is_spliceable(frame):
            return b'{"seq":%d,"recv_ns":%d%s,"frame":%s}\n' % (seq, recv_ns, part, frame), True
        line = b'{"seq":%d,"recv_ns":%d%s,"frame_b64":"%s"}\n' % (
            seq,
            recv_ns,
            part,
            base64.b64encode(frame),
        )
        return line, False


def encode_line(seq: int, recv_ns: int, subject: str, frame: bytes) -> bytes:
    return LineEncoder().encode(seq, recv_ns, subject, frame)[0]


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    recv_ns: int
    subject: str
    frame: bytes
    raw_frame: bool = True  # False when the frame was stored base64 (not spliceable)


def decode_line(line: bytes) -> Record:
    """Parse one archive line (with or without the trailing newline); the frame comes back
    byte-identical to what was received."""
    m = _LINE_RE.match(line)
    body = line[:-1] if line.endswith(b"\n") else line
    if m is None or not body.endswith(b"}"):
        raise ArchiveFormatError(f"not an archive line: {line[:80]!r}")
    subject = orjson.loads(m.group(3))
    frame = body[m.end() : -1]
    if m.group(4) == b"frame_b64":
        return Record(
            int(m.group(1)), int(m.group(2)), subject, base64.b64decode(frame[1:-1]), False
        )
    return Record(int(m.group(1)), int(m.group(2)), subject, frame)


def line_seq(line: bytes) -> int:
    """The stream sequence of a line, without parsing the rest."""
    end = line.index(b",", 7)
    return int(line[7:end])


# --------------------------------------------------------------------------- codecs


class Codec:
    """Compression of one file as a sequence of independent frames (zstd frames or gzip
    members). Each durable flush ends a frame, so a crash can only tear the last one."""

    def __init__(self, fmt: Format, level: int) -> None:
        self.fmt = fmt
        self.level = level
        self._zc = zstandard.ZstdCompressor(level=level, write_checksum=True)

    def compress_frame(self, data: bytes) -> bytes:
        if self.fmt == "zstd":
            return self._zc.compress(data)
        c = zlib.compressobj(min(self.level, 9), zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()


def _new_decompressor(fmt: Format) -> Any:
    if fmt == "zstd":
        return zstandard.ZstdDecompressor().decompressobj()
    return zlib.decompressobj(31)


class FrameDecoder:
    """Incremental frame-by-frame decompression: :meth:`feed` compressed bytes as they come,
    get back the content of every frame completed so far. ``good_offset`` is the compressed
    offset where the last complete frame ends; ``corrupt`` is set on undecodable data."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self._d = _new_decompressor(fmt)
        self._out: list[bytes] = []
        self._fed = 0  # compressed bytes of the current frame fed so far
        self.good_offset = 0
        self.corrupt = False

    def feed(self, data: bytes) -> list[bytes]:
        done: list[bytes] = []
        while data and not self.corrupt:
            try:
                o = self._d.decompress(data)
            except (zstandard.ZstdError, zlib.error):
                self.corrupt = True
                break
            if o:
                self._out.append(o)
            if self._d.eof:
                rest = self._d.unused_data
                self._fed += len(data) - len(rest)
                self.good_offset += self._fed
                self._fed = 0
                done.append(b"".join(self._out))
                self._out = []
                self._d = _new_decompressor(self.fmt)
                data = rest
            else:
                self._fed += len(data)
                data = b""
        return done

    @property
    def torn(self) -> bool:
        """True when data of an unfinished frame was fed (a torn tail, if the input ended)."""
        return self._fed > 0 or self.corrupt


def decompress_frames(chunks: Iterable[bytes], fmt: Format) -> Iterator[tuple[bytes, int]]:
    """Decompress frame by frame: yields (content of one complete frame, compressed offset of
    its end). Stops quietly at a torn or corrupt last frame, so the last offset yielded is where
    the complete data ends. Memory is bounded by one frame."""
    dec = FrameDecoder(fmt)
    for chunk in chunks:
        for content in dec.feed(chunk):
            yield content, dec.good_offset
        if dec.corrupt:
            return


def file_chunks(f: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    return iter(lambda: f.read(chunk_size), b"")


def iter_lines(chunks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Decompressed chunks → lists of complete lines (each with its newline)."""
    tail = b""
    for chunk in chunks:
        buf = tail + chunk if tail else chunk
        cut = buf.rfind(b"\n") + 1
        tail = buf[cut:]
        if cut:
            yield buf[:cut].splitlines(keepends=True)
    if tail:
        raise ArchiveFormatError("file ends inside a line")


def read_file_chunks(path: Path) -> Iterator[bytes]:
    """Decompressed content of a complete local archive file, chunk by chunk."""
    fmt = format_of(path.name)
    with path.open("rb") as f:
        for data, _ in decompress_frames(file_chunks(f), fmt):
            yield data


# --------------------------------------------------------------------------- stats


@dataclass
class FileStats:
    """What the manifest says about one file, accumulated while writing or scanning it."""

    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    start_ns: int = 0
    end_ns: int = 0
    tickers: set[str] = field(default_factory=set)
    types: dict[str, int] = field(default_factory=dict)
    exchange_gaps: list[dict[str, Any]] = field(default_factory=list)
    invalid_frames: int = 0

    def add(self, seq: int, recv_ns: int, info: SubjectInfo) -> None:
        if self.records == 0:
            self.first_seq = seq
            self.start_ns = self.end_ns = recv_ns
        else:
            if recv_ns < self.start_ns:
                self.start_ns = recv_ns
            if recv_ns > self.end_ns:
                self.end_ns = recv_ns
        self.records += 1
        self.last_seq = seq
        self.types[info.mtype] = self.types.get(info.mtype, 0) + 1
        if info.ticker is not None:
            self.tickers.add(info.ticker)

    def merge(self, other: FileStats) -> None:
        if other.records == 0:
            return
        if self.records == 0:
            self.first_seq, self.start_ns, self.end_ns = (
                other.first_seq,
                other.start_ns,
                other.end_ns,
            )
        else:
            self.start_ns = min(self.start_ns, other.start_ns)
            self.end_ns = max(self.end_ns, other.end_ns)
        self.records += other.records
        self.last_seq = other.last_seq
        self.tickers |= other.tickers
        for t, n in other.types.items():
            self.types[t] = self.types.get(t, 0) + n
        self.exchange_gaps.extend(other.exchange_gaps)
        self.invalid_frames += other.invalid_frames


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    """What the archive needs to know about a subject: archived at all, its type, ticker."""

    archived: bool
    mtype: str
    ticker: str | None
    is_gap: bool = False
    subject: str = ""


class SubjectClassifier:
    """Cached :func:`classify_subject`, keyed by the subject as str or raw bytes."""

    def __init__(self) -> None:
        self._cache: dict[str | bytes, SubjectInfo] = {}

    def __call__(self, subject: str | bytes) -> SubjectInfo:
        info = self._cache.get(subject)
        if info is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            info = classify_subject(subject.decode() if isinstance(subject, bytes) else subject)
            self._cache[subject] = info
        return info


def classify_subject(subject: str) -> SubjectInfo:
    try:
        s = subjects.parse_subject(subject)
    except subjects.SubjectError:
        return SubjectInfo(False, "other", None, subject=subject)
    if s.kind == "json":
        return SubjectInfo(True, s.ftype or "control", s.ticker, subject=subject)
    if s.kind == "gap":
        return SubjectInfo(True, "gap", None, is_gap=True, subject=subject)
    return SubjectInfo(False, s.kind, None, subject=subject)


def exchange_gap_entry(seq: int, recv_ns: int, frame: bytes) -> dict[str, Any]:
    """A connector gap record as it goes into the manifest (unknown fields kept)."""
    try:
        rec = orjson.loads(frame)
    except orjson.JSONDecodeError:
        rec = {"cause": "unparseable_gap_record"}
    if not isinstance(rec, dict):
        rec = {"cause": "unparseable_gap_record"}
    return {"seq": seq, "recv_ns": recv_ns, **rec}


def scan_lines(lines: Iterable[bytes], stats: FileStats, classify: SubjectClassifier) -> None:
    for line in lines:
        rec = decode_line(line)
        info = classify(rec.subject)
        stats.add(rec.seq, rec.recv_ns, info)
        if not rec.raw_frame:
            stats.invalid_frames += 1
        if info.is_gap:
            stats.exchange_gaps.append(exchange_gap_entry(rec.seq, rec.recv_ns, rec.frame))


# --------------------------------------------------------------------------- manifest


@dataclass
class FileEntry:
    name: str
    start: str
    end: str
    start_ns: int
    end_ns: int
    records: int
    bytes: int
    sha256: str
    nats_start_seq: int
    nats_end_seq: int
    tickers: int = 0
    message_types: dict[str, int] = field(default_factory=dict)
    exchange_gaps: int = 0
    invalid_frames: int = 0


@dataclass
class DayManifest:
    feed: str
    date: str
    env: str = ""
    format: str = "jsonl.zst"
    compression: str = "zstd"
    rotation_interval: str = "15m"
    source: str = "exchange"
    files: list[FileEntry] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)
    message_types: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"stream": [], "exchange": []}
    )
    has_gaps: bool = False
    records: int = 0
    bytes: int = 0
    duplicates_skipped: int = 0
    invalid_frames: int = 0
    updated_at: str = ""
    version: int = MANIFEST_VERSION

    # -- building

    def file_names(self) -> set[str]:
        return {f.name for f in self.files}

    def add_file(self, entry: FileEntry, stats: FileStats) -> None:
        if entry.name in self.file_names():
            raise ArchiveFormatError(f"{self.date}/{entry.name} is already in the manifest")
        self.files.append(entry)
        self.files.sort(key=lambda f: f.nats_start_seq)
        self.tickers = sorted(set(self.tickers) | stats.tickers)
        for t, n in stats.types.items():
            self.message_types[t] = self.message_types.get(t, 0) + n
        known = {g.get("seq") for g in self.gaps["exchange"]}
        self.gaps["exchange"].extend(g for g in stats.exchange_gaps if g["seq"] not in known)
        self.gaps["exchange"].sort(key=lambda g: g["seq"])
        self.invalid_frames += stats.invalid_frames
        self._totals()

    def add_stream_gap(self, gap: dict[str, Any]) -> bool:
        """Record a range of missing stream sequences; False if already recorded."""
        for g in self.gaps["stream"]:
            if g["from_seq"] == gap["from_seq"] and g["to_seq"] == gap["to_seq"]:
                return False
        self.gaps["stream"].append(gap)
        self.gaps["stream"].sort(key=lambda g: g["from_seq"])
        self._totals()
        return True

    def _totals(self) -> None:
        self.records = sum(f.records for f in self.files)
        self.bytes = sum(f.bytes for f in self.files)
        self.has_gaps = bool(self.gaps["stream"] or self.gaps["exchange"])

    @property
    def max_seq(self) -> int:
        return max((f.nats_end_seq for f in self.files), default=0)

    # -- (de)serialisation

    def to_json(self) -> builtins.bytes:
        self.updated_at = iso_ns(int(datetime.now(UTC).timestamp() * 1e9))
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: builtins.bytes) -> DayManifest:
        try:
            doc = orjson.loads(data)
            files = [FileEntry(**f) for f in doc.pop("files", [])]
            known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
            m = cls(**known)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise ArchiveFormatError(f"manifest is not valid: {exc}") from None
        m.files = files
        m.gaps.setdefault("stream", [])
        m.gaps.setdefault("exchange", [])
        return m


def read_manifest(path: Path) -> DayManifest | None:
    try:
        return DayManifest.from_json(path.read_bytes())
    except FileNotFoundError:
        return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename, so readers see the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_manifest(path: Path, manifest: DayManifest) -> None:
    write_atomic(path, manifest.to_json())


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
