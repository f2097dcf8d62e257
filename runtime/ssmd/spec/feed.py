"""The Feed resource: a venue's connection details, versioned by effective date."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from ssmd.spec.common import Condition, Model, ObjectMeta, StatusModel
from ssmd.spec.environment import Channel, Venue


class FeedVersion(Model):
    version: str = Field(min_length=1)
    effective_from: date
    effective_to: date | None = None
    endpoint: str
    rest_endpoint: str | None = None
    channels: list[Channel] = Field(default_factory=list)
    notes: str = ""

    @model_validator(mode="after")
    def _order(self) -> FeedVersion:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(
                f"effectiveTo {self.effective_to} is before effectiveFrom {self.effective_from}"
            )
        return self

    def active_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


class FeedSpec(Model):
    venue: Venue = "kalshi"
    display_name: str = ""
    versions: list[FeedVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FeedSpec:
        seen = [v.version for v in self.versions]
        dup = {v for v in seen if seen.count(v) > 1}
        if dup:
            raise ValueError(f"duplicate version(s) {sorted(dup)}")
        return self

    def active_version(self, day: date) -> FeedVersion | None:
        """The version in effect on ``day``; the latest-starting one wins an overlap."""
        active = [v for v in self.versions if v.active_on(day)]
        return max(active, key=lambda v: v.effective_from) if active else None


class FeedStatus(StatusModel):
    phase: str = "Pending"
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    active_version: str | None = None
    environments: list[str] = Field(default_factory=list)
    markets: int | None = None


class Feed(Model):
    api_version: Literal["ssmd.io/v1alpha1"] = "ssmd.io/v1alpha1"
    kind: Literal["Feed"] = "Feed"
    metadata: ObjectMeta
    spec: FeedSpec
    status: FeedStatus | None = None
