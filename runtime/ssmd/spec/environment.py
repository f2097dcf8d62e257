"""The Environment resource: everything one capture pipeline needs, in one document.

The same YAML runs under ``ssmd up`` and ``kubectl apply``."""

from __future__ import annotations

from datetime import time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from ssmd.spec.common import Condition, Model, ObjectMeta, StatusModel
from ssmd.spec.types import ByteSize, Duration, KeyRef, Name

KeyType = Literal["api_key", "database", "transport", "storage", "tls", "webhook"]
Channel = Literal["orderbook_delta", "ticker", "trade", "market_lifecycle_v2"]
MarketStatus = Literal["unopened", "open", "active", "paused", "closed", "determined", "settled"]
Venue = Literal["kalshi"]

# The built-in simulator is selected with this endpoint; its data is always marked simulated.
SIM_ENDPOINT = "sim"


class KeyRequirement(Model):
    """A credential this environment needs. Values never live here: only where they come from."""

    type: KeyType
    description: str = ""
    fields: list[str] = Field(min_length=1)
    required: bool = True
    rotation_days: int | None = Field(default=None, ge=1)
    # Local runs (`ssmd up`): field -> environment variable holding the value, and
    # field -> environment variable holding a *path* to a file with the value.
    env: dict[str, str] = Field(default_factory=dict)
    file_env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sources_name_fields(self) -> KeyRequirement:
        for source in ("env", "file_env"):
            unknown = set(getattr(self, source)) - set(self.fields)
            if unknown:
                raise ValueError(
                    f"{source} names field(s) {sorted(unknown)} that are not in fields {self.fields}"
                )
        return self


class SimSettings(Model):
    """Settings of the built-in simulator (used when ``feed.endpoint`` is ``sim``)."""

    seed: int = 1
    markets: int = Field(default=50, ge=1, le=100_000)
    rate: int = Field(default=200, ge=0, description="frames/s across all markets; 0 = max")
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")


class FeedRef(Model):
    name: Name = "kalshi"
    venue: Venue = "kalshi"
    endpoint: str = Field(
        default=SIM_ENDPOINT,
        description="WebSocket URL of the exchange, or 'sim' for the built-in simulator",
    )
    rest_endpoint: str | None = Field(
        default=None, description="REST base URL; derived from endpoint when absent"
    )
    credentials: KeyRef | None = None
    sim: SimSettings = Field(default_factory=SimSettings)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v != SIM_ENDPOINT and not v.startswith(("ws://", "wss://")):
            raise ValueError(f"{v!r} is not a WebSocket URL (ws:// or wss://) or 'sim'")
        return v

    @property
    def is_simulated(self) -> bool:
        return self.endpoint == SIM_ENDPOINT


class MarketSelector(Model):
    """Which markets to capture. Lists are OR-ed within a field and AND-ed across fields;
    with no tickers/series/events/categories, every market with a matching status."""

    tickers: list[str] = Field(default_factory=list)
    series: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    status: list[MarketStatus] = Field(default_factory=lambda: list[MarketStatus](["open"]))
    max_markets: int | None = Field(default=None, ge=1)


class Schedule(Model):
    """Daily run window. Absent means 24/7."""

    timezone: str = "UTC"
    startup: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    teardown: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone (e.g. UTC, America/New_York)") from None
        return v

    def startup_time(self) -> time:
        return time.fromisoformat(self.startup)

    def teardown_time(self) -> time:
        return time.fromisoformat(self.teardown)


class StreamSettings(Model):
    storage: Literal["file", "memory"] = "file"
    max_age: Duration = "24h"
    max_bytes: ByteSize = "10Gi"
    duplicate_window: Duration = "2m"
    max_msg_size: ByteSize = "1Mi"
    replicas: int = Field(default=1, ge=1, le=5)
    books_max_age: Duration = "24h"
    dlq_max_age: Duration = "7d"
    delete_policy: Literal["retain", "delete"] = Field(
        default="retain",
        description="what happens to the streams when the Environment is deleted",
    )


class Transport(Model):
    url: str | None = Field(
        default=None,
        description="NATS URL; absent means an embedded nats-server (local runs only)",
    )
    credentials: KeyRef | None = None
    stream: StreamSettings = Field(default_factory=StreamSettings)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(f"{v!r} is not a NATS URL (e.g. nats://nats:4222)")
        return v


class LocalStorage(Model):
    path: str = "./data/archive"
    size: ByteSize = Field(default="50Gi", description="PVC size on Kubernetes")


class S3Storage(Model):
    bucket: str = Field(min_length=3)
    endpoint: str | None = Field(default=None, description="S3-compatible endpoint URL")
    region: str = "us-east-1"
    prefix: str = ""
    credentials: KeyRef | None = None


class Storage(Model):
    local: LocalStorage | None = None
    s3: S3Storage | None = None

    @model_validator(mode="after")
    def _one(self) -> Storage:
        if self.local is not None and self.s3 is not None:
            raise ValueError("set exactly one of local or s3, not both")
        if self.local is None and self.s3 is None:
            self.local = LocalStorage()
        return self


class Resources(Model):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class ConnectorSettings(Model):
    max_markets_per_connection: int = Field(default=200, ge=1, le=500_000)
    dead_after: Duration = "30s"
    max_in_flight: int = Field(default=4096, ge=1)
    queue_size: int = Field(default=100_000, ge=1)
    spill_max_bytes: ByteSize = "1Gi"
    rest_rate_per_s: float = Field(default=10.0, gt=0, description="REST token bucket rate")
    book_checkpoint_interval: Duration = "1s"
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    resources: Resources = Field(default_factory=Resources)


class ArchiverSettings(Model):
    enabled: bool = True
    rotation_interval: Duration = "15m"
    format: Literal["zstd", "gzip"] = "zstd"
    compression_level: int = Field(default=3, ge=1, le=22)
    fsync_interval: Duration = "1s"
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    resources: Resources = Field(default_factory=Resources)


class ClientBuffer(Model):
    max_messages: int = Field(default=10_000, ge=1)
    max_bytes: ByteSize = "16Mi"
    policy: Literal["drop_oldest", "drop_newest", "disconnect"] = "drop_oldest"


class GatewaySettings(Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    auth: KeyRef | None = Field(default=None, description="API keys clients must present")
    buffer: ClientBuffer = Field(default_factory=ClientBuffer)
    slow_consumer_after: Duration = "10s"
    max_clients: int = Field(default=1000, ge=1)
    replicas: int = Field(default=1, ge=0)
    resources: Resources = Field(default_factory=Resources)


class SecmasterSettings(Model):
    enabled: bool = True
    sync_interval: Duration = "5m"
    resources: Resources = Field(default_factory=Resources)


class Image(Model):
    repository: str = "ghcr.io/ssmd/ssmd"
    tag: str | None = Field(default=None, description="defaults to the ssmd version")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class EnvironmentSpec(Model):
    keys: dict[str, KeyRequirement] = Field(default_factory=dict)
    feed: FeedRef = Field(default_factory=FeedRef)
    markets: MarketSelector = Field(default_factory=MarketSelector)
    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](
            ["orderbook_delta", "ticker", "trade", "market_lifecycle_v2"]
        ),
        min_length=1,
    )
    schedule: Schedule | None = None
    transport: Transport = Field(default_factory=Transport)
    storage: Storage = Field(default_factory=Storage)
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    archiver: ArchiverSettings = Field(default_factory=ArchiverSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    secmaster: SecmasterSettings = Field(default_factory=SecmasterSettings)
    image: Image = Field(default_factory=Image)
    suspend: bool = False

    @model_validator(mode="after")
    def _references_resolve(self) -> EnvironmentSpec:
        from ssmd.spec.types import parse_key_ref

        for path, ref in self.key_references().items():
            name, fld = parse_key_ref(ref)
            if name not in self.keys:
                raise ValueError(
                    f"{path} references key {name!r}, which spec.keys does not declare "
                    f"(declared: {sorted(self.keys) or 'none'})"
                )
            if fld is not None and fld not in self.keys[name].fields:
                raise ValueError(
                    f"{path} references field {fld!r} of key {name!r}, "
                    f"which has fields {self.keys[name].fields}"
                )
        return self

    def key_references(self) -> dict[str, str]:
        """Every ``$key:`` reference in the spec, by field path."""
        refs = {
            "spec.feed.credentials": self.feed.credentials,
            "spec.transport.credentials": self.transport.credentials,
            "spec.storage.s3.credentials": self.storage.s3.credentials if self.storage.s3 else None,
            "spec.gateway.auth": self.gateway.auth,
        }
        return {k: v for k, v in refs.items() if v is not None}


class StreamStatus(StatusModel):
    name: str = ""
    messages: int = 0
    bytes: int = 0
    first_seq: int = 0
    last_seq: int = 0


class InventoryDay(StatusModel):
    date: str
    records: int = 0
    bytes: int = 0
    files: int = 0
    gaps: int = 0


class VersionRecord(StatusModel):
    version: int
    config_hash: str
    time: str
    config_map: str = ""


class EnvironmentStatus(StatusModel):
    phase: str = "Pending"
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    source: Literal["exchange", "simulator"] | None = None
    feed: str | None = None
    markets: int | None = None
    msgs_per_sec: float | None = None
    lag: str | None = None
    last_archive_date: str | None = None
    stream: StreamStatus | None = None
    components: dict[str, dict[str, Any]] = Field(default_factory=dict)
    inventory: list[InventoryDay] = Field(default_factory=list)
    versions: list[VersionRecord] = Field(default_factory=list)
    current_version: int | None = None


class Environment(Model):
    api_version: Literal["ssmd.io/v1alpha1"] = "ssmd.io/v1alpha1"
    kind: Literal["Environment"] = "Environment"
    metadata: ObjectMeta
    spec: EnvironmentSpec = Field(default_factory=EnvironmentSpec)
    status: EnvironmentStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name
