"""The resource models: one source of truth for the CRDs, the operator and the runtime."""

from ssmd.spec.common import API_VERSION, GROUP, VERSION, Condition, ObjectMeta
from ssmd.spec.environment import SIM_ENDPOINT, Environment, EnvironmentSpec, EnvironmentStatus
from ssmd.spec.feed import Feed, FeedSpec, FeedStatus, FeedVersion
from ssmd.spec.key import Key, KeySpec, KeyStatus
from ssmd.spec.loader import (
    SpecError,
    load_documents,
    load_environment,
    load_file,
    validate_document,
)
from ssmd.spec.types import duration_seconds, parse_duration, parse_key_ref, parse_size

__all__ = [
    "API_VERSION",
    "GROUP",
    "SIM_ENDPOINT",
    "VERSION",
    "Condition",
    "Environment",
    "EnvironmentSpec",
    "EnvironmentStatus",
    "Feed",
    "FeedSpec",
    "FeedStatus",
    "FeedVersion",
    "Key",
    "KeySpec",
    "KeyStatus",
    "ObjectMeta",
    "SpecError",
    "duration_seconds",
    "load_documents",
    "load_environment",
    "load_file",
    "parse_duration",
    "parse_key_ref",
    "parse_size",
    "validate_document",
]
