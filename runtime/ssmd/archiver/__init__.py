"""The archiver: JetStream → rotated ``.jsonl.zst`` files + day manifests, local or S3."""

from ssmd.archiver.service import Archiver, ArchiverOptions, run_archiver

__all__ = ["Archiver", "ArchiverOptions", "run_archiver"]
