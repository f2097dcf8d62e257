"""The Key resource: metadata about a credential plus its sealed values (never plain)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ssmd.spec.common import Condition, Model, ObjectMeta, StatusModel
from ssmd.spec.environment import KeyType

KeyState = Literal["set", "partial", "not_set", "expired"]
SealScope = Literal["strict", "namespace-wide", "cluster-wide"]


class KeySpec(Model):
    type: KeyType
    description: str = ""
    required: bool = True
    fields: list[str] = Field(min_length=1)
    rotation_days: int | None = Field(default=None, ge=1)
    scope: SealScope = "strict"
    # field -> base64 sealed value (sealed-secrets format). Safe to commit to Git.
    encrypted_data: dict[str, str] = Field(default_factory=dict)


class KeyStatus(StatusModel):
    state: KeyState = "not_set"
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    fields_present: list[str] = Field(default_factory=list)
    last_rotated: str | None = None
    expires_at: str | None = None
    secret_name: str | None = None


class Key(Model):
    api_version: Literal["ssmd.io/v1alpha1"] = "ssmd.io/v1alpha1"
    kind: Literal["Key"] = "Key"
    metadata: ObjectMeta
    spec: KeySpec
    status: KeyStatus | None = None
