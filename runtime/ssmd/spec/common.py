"""Base model settings and the pieces every resource shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "ssmd.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class Model(BaseModel):
    """camelCase on the wire (Kubernetes style), snake_case in Python; unknown fields are
    errors so a typo in an environment file is caught, never silently ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )


class StatusModel(BaseModel):
    """Status is written by components and the operator: tolerate fields from newer versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata ssmd reads; everything else is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None
