"""Prometheus metrics of the archiver (names from the seed design), created once per process
so several archivers (tests, ``ssmd up`` with several feeds) share them by label."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge


@dataclass(frozen=True)
class ArchiverMetrics:
    bytes_written: Counter
    files_written: Counter
    records_written: Counter
    duplicates_skipped: Counter
    stream_gaps: Counter
    consumer_lag: Gauge
    upload_failures: Counter
    uploads: Counter
    upload_backlog: Gauge


@cache
def archiver_metrics() -> ArchiverMetrics:
    labels = ("env", "feed")
    return ArchiverMetrics(
        bytes_written=Counter(
            "ssmd_archiver_bytes_written", "Compressed bytes written to archive files", labels
        ),
        files_written=Counter("ssmd_archiver_files_written", "Archive files closed", labels),
        records_written=Counter(
            "ssmd_archiver_records_written", "Messages written to archive files", labels
        ),
        duplicates_skipped=Counter(
            "ssmd_archiver_duplicates_skipped",
            "Redelivered stream sequences skipped because already written",
            labels,
        ),
        stream_gaps=Counter(
            "ssmd_archiver_stream_gap_messages",
            "Stream sequences missing when read (e.g. expired before the archiver got them)",
            labels,
        ),
        consumer_lag=Gauge(
            "ssmd_archiver_consumer_lag", "Messages in the stream not yet delivered", labels
        ),
        upload_failures=Counter(
            "ssmd_archiver_upload_failures", "Failed upload attempts (retried)", labels
        ),
        uploads=Counter("ssmd_archiver_uploads", "Files uploaded and verified", labels),
        upload_backlog=Gauge(
            "ssmd_archiver_upload_backlog", "Closed files waiting for upload", labels
        ),
    )
