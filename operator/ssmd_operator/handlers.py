"""kopf registrations only: each handler is a thin call into a plain function."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

import ssmd_operator.keys  # noqa: F401  (registers the Key handlers: SealedSecrets, Secret watch)
from ssmd_operator import children, config, feeds, reconcile
from ssmd_operator.kube import Kube

GROUP, VERSION = "ssmd.io", "v1alpha1"
ENVIRONMENTS, FEEDS = "ssmdenvironments", "ssmdfeeds"

# Handlers and the timer of one object may overlap: one pass at a time per object. Keyed by
# the event loop too: an operator restarted in the same process (tests) gets fresh locks.
_locks: dict[tuple[int, str, str], asyncio.Lock] = {}


def _lock(namespace: str, name: str) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), namespace, name)
    return _locks.setdefault(key, asyncio.Lock())


def _emitter(body: kopf.Body) -> reconcile.Emit:
    def emit(reason: str, message: str, warning: bool) -> None:
        (kopf.warn if warning else kopf.info)(body, reason=reason, message=message)

    return emit


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = config.FINALIZER
    settings.posting.level = 20  # INFO and up become Kubernetes Events
    # A watch that silently stalls must not stop reconciliation for long.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # On deletion kopf stops the timer and re-checks it only every cancellation_polling
    # seconds (60 by default) before releasing the finalizer: check every second.
    settings.background.cancellation_polling = 1.0


async def _reconcile_env(body: kopf.Body, namespace: str | None, name: str, *, retry: bool) -> None:
    namespace = namespace or "default"
    async with _lock(namespace, name), await Kube.connect() as kube:
        out = await reconcile.reconcile(kube, namespace, name, emit=_emitter(body))
    if retry and out.retry_reason:
        # NATS is not reachable (yet): retry soon rather than fail the resource for good.
        raise kopf.TemporaryError(out.retry_reason, delay=config.RETRY_DELAY_S)


# Retries come soon (not kopf's default 60 s): a failed pass is usually a conflict or a blip.
@kopf.on.create(GROUP, VERSION, ENVIRONMENTS, backoff=config.RETRY_DELAY_S)
@kopf.on.update(GROUP, VERSION, ENVIRONMENTS, field="spec", backoff=config.RETRY_DELAY_S)
@kopf.on.resume(GROUP, VERSION, ENVIRONMENTS, backoff=config.RETRY_DELAY_S)
async def environment_changed(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    await _reconcile_env(body, namespace, name, retry=True)


@kopf.timer(
    GROUP, VERSION, ENVIRONMENTS, interval=config.RECONCILE_INTERVAL_S,
    initial_delay=config.RECONCILE_INTERVAL_S, backoff=config.RETRY_DELAY_S,
)  # fmt: skip
async def environment_timer(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    await _reconcile_env(body, namespace, name, retry=False)


@kopf.on.event("apps", "v1", "deployments", labels=children.MANAGED_BY)
async def deployment_event(
    type: str | None, body: kopf.Body, namespace: str | None, **_: Any
) -> None:
    """A child Deployment changed (rollout progress, deleted, scaled by hand): reconcile its
    Environment now rather than at the next timer pass. Event handlers keep no state on
    the Deployment (no annotations, no finalizer)."""
    owner = next(
        (r for r in body.get("metadata", {}).get("ownerReferences") or []
         if r.get("kind") == "Environment" and r.get("controller")),
        None,
    )  # fmt: skip
    if owner is None or type not in ("MODIFIED", "DELETED"):  # ours, and not our own create
        return
    ns = namespace or "default"
    if _lock(ns, owner["name"]).locked():
        return  # a pass is running; the timer picks up anything it missed
    env_body = {
        "apiVersion": owner["apiVersion"], "kind": "Environment",
        "metadata": {"name": owner["name"], "namespace": namespace, "uid": owner["uid"]},
    }  # fmt: skip
    await _reconcile_env(
        kopf.Body(cast(kopf.RawBody, env_body)), namespace, owner["name"], retry=False
    )


@kopf.on.delete(GROUP, VERSION, ENVIRONMENTS, backoff=config.RETRY_DELAY_S)
async def environment_deleted(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    namespace = namespace or "default"
    async with _lock(namespace, name), await Kube.connect() as kube:
        try:
            await reconcile.finalize(kube, dict(body), emit=_emitter(body))
        except ConnectionError as exc:
            raise kopf.TemporaryError(str(exc), delay=config.RETRY_DELAY_S) from None
    _locks.pop((id(asyncio.get_running_loop()), namespace, name), None)


@kopf.on.create(GROUP, VERSION, FEEDS, backoff=config.RETRY_DELAY_S)
@kopf.on.update(GROUP, VERSION, FEEDS, field="spec", backoff=config.RETRY_DELAY_S)
@kopf.on.resume(GROUP, VERSION, FEEDS, backoff=config.RETRY_DELAY_S)
@kopf.timer(
    GROUP, VERSION, FEEDS, interval=config.FEED_INTERVAL_S, initial_delay=config.FEED_INTERVAL_S,
    backoff=config.RETRY_DELAY_S,
)  # fmt: skip
async def feed_changed(namespace: str | None, name: str, **_: Any) -> None:
    async with await Kube.connect() as kube:
        await feeds.reconcile(kube, namespace or "default", name)
