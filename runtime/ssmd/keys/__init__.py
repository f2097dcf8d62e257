"""Keys: sealing for the sealed-secrets controller, key state/expiry, runtime resolution.

Values are only ever handled as :class:`~ssmd.keys.resolve.SecretValue` (never shown) or
sealed; nothing in this package logs, prints or stores a plain value."""

from ssmd.keys.resolve import KeyResolveError, KeyResolver, SecretValue, kalshi_credentials
from ssmd.keys.seal import SealError, seal_value, seal_values
from ssmd.keys.status import evaluate_key, keys_ready_condition, resource_name

__all__ = [
    "KeyResolveError",
    "KeyResolver",
    "SealError",
    "SecretValue",
    "evaluate_key",
    "kalshi_credentials",
    "keys_ready_condition",
    "resource_name",
    "seal_value",
    "seal_values",
]
