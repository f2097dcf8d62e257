"""
A kopf-friendly Kubernetes API emulator (the project's own copy of the worked example in
the shared operator-testing reference; adapted where noted): a thin layer over ``kmock.KubernetesEmulator``.

Verified with kmock==0.8, kopf==1.45.2, kubectl 1.37, kubernetes-asyncio 36.1.
It uses a few private bits of kmock (``kmock._internal.*``, ``self._lock``,
``self._buses``), so pin kmock's version.

What plain ``kmock.KubernetesEmulator`` 0.8 lacks, and what this module adds:

1. ``GET /api/v1/namespaces`` crashes the path parser (HTTP 500 "not enough values to
   unpack"), ``/api/v1/namespaces/NAME`` is misparsed. -> patched parser.
2. No ``metadata.resourceVersion/uid/creationTimestamp/generation`` on objects. kopf adds
   finalizers with a JSON-patch that starts with ``{"op":"test","path":
   "/metadata/resourceVersion"}`` -> HTTP 500 ``JsonPatchTestFailed`` and the handlers never
   run; ``kopf.adopt()`` needs ``metadata.uid``. -> stamped on every create/patch/replace.
3. A failed JSON-patch ``test`` is a 500, kopf expects 422. -> 422.
4. ``metadata.generateName`` is ignored (kopf's k8s Events use it: 2nd event is a 409), and
   ``metadata.namespace`` is not filled in from the URL on create. -> both done.
5. Lists have no ``kind``/``apiVersion`` (``kubectl get`` fails: "Object 'Kind' is missing")
   and ``resourceVersion: "..."``. -> filled in.
6. ``labelSelector`` / ``fieldSelector`` are ignored on list & watch. -> basic support.
7. Watch: only ``?watch=true`` is recognised (kubernetes_asyncio sends ``watch=True`` and gets a
   LIST back); ``?resourceVersion=`` is ignored (every object is replayed as ADDED);
   ``timeoutSeconds`` is ignored; the stream is ``application/octet-stream`` (kubectl: "no stream
   serializers registered"); no ``sendInitialEvents`` bookmark (``kubectl delete/wait`` hang). -> fixed.
8. ``PUT`` (``kubectl replace``, ``replace_namespaced_*``) is "Endpoint Not Found". -> replace.
9. Creating a CRD object does not register the resource for discovery. -> registers it and marks
   it Established (kopf watches CRDs and starts serving it; ``kubectl apply -f crd.yaml`` works).
10. No garbage collector for ``ownerReferences``. -> optional cascade deletion (``gc=True``).
11. Discovery of the core API says ``groupVersion: "/v1"`` (kubectl then ignores every core
    resource: "the server doesn't have a resource type ns"), and subresource entries repeat the
    shortNames (kubectl warnings). -> fixed.

13. (added in ssmd) kmock picks a reaction by testing ``request in reaction-view``, which walks
    the whole request journal through every filter: each request costs O(requests x reactions),
    so the emulator slows down as a test goes on (create+get of a ConfigMap: 50 ms at first,
    270 ms after 400 requests). -> the chains of Filter/Priority views back to the emulator
    are checked against the one request (kmock's own check for anything else).
12. (added in ssmd) ``Accept: application/json;as=Table`` is ignored, so ``kubectl get`` shows
    only NAME and AGE. -> Tables with a CRD's ``additionalPrinterColumns`` (a JSONPath subset:
    dotted fields and ``[?(@.k=="v")]`` filters; ``date`` columns rendered as an age).

Still NOT emulated: admission/validation/defaulting/OpenAPI schemas, strategic-merge-patch
list merging (merge-patch semantics are used), server-side-apply field management,
status-subresource isolation (a PATCH to /status may change other fields too),
pods/controllers (a Deployment never gets pods or a status), periodic watch bookmarks,
"410 Gone" for expired resourceVersions, deletion of CRs when their CRD is deleted, RBAC/auth.
"""

import argparse
import asyncio
import datetime
import itertools
import json
import os
import random
import re
import string
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import apps, dsl, enums, parsing, rendering

CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")

# ---------------------------------------------------------------------------------------------
# Gap 1: kmock.parsing treats "namespaces" as the namespace prefix even for the Namespace
# resource itself: /api/v1/namespaces -> ValueError -> HTTP 500; /api/v1/namespaces/x -> wrong.
# ---------------------------------------------------------------------------------------------
_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        return parsing.ParsedPath(
            group="",
            version="v1",
            plural="namespaces",
            name=parts[3] if len(parts) > 3 else None,
            subresource=parts[4] if len(parts) > 4 else None,
        )
    return _original_parse_path(path)


parsing.parse_path = _parse_path  # used at request time by kmock._internal.rendering

# Gap 1b: only the exact "?watch=true" is a watch for kmock; kubernetes_asyncio sends "?watch=True"
# (the real apiserver accepts any Go ParseBool truthy value) -> it got a LIST instead of a stream:
# "Malformed JSON response, the 'object' and/or 'type' field is missing".
_original_guess_k8s = parsing.guess_k8s


def _guess_k8s(
    k8s: parsing.ParsedPath, method: enums.method, query: dict[str, str]
) -> enums.action | None:
    if str(query.get("watch", "")).lower() in ("true", "t", "1"):
        query = dict(query, watch="true")
    return _original_guess_k8s(k8s, method, query)


parsing.guess_k8s = _guess_k8s


# ---------------------------------------------------------------------------------------------
# Gap 13: reaction matching is O(journal); check the view chain against the one request.
# ---------------------------------------------------------------------------------------------
def _sees(view: Any, request: rendering.Request, root: Any) -> bool:
    while view is not root:
        if type(view) is dsl.Priority:
            view = view._source
        elif type(view) is dsl.Filter:
            if not view.criteria(request):
                return False
            view = view._source
        else:
            return request in view  # slices, groups, exclusions: kmock's own check
    return True


async def _fast_handle(self: Any, request: rendering.Request) -> aiohttp.web.StreamResponse:
    # Same as kmock.apps.RawHandler._handle (0.8), except for the containment check.
    priorities: list[tuple[float, ...]] = [payload.priorities for payload in self._payloads]
    max_length = max(len(priority) for priority in priorities) if priorities else 0
    priorities = [tuple(-p for p in priority) for priority in priorities]
    priorities = [priority + (0,) * (max_length - len(priority)) for priority in priorities]
    indexes = sorted(range(len(priorities)), key=lambda index: priorities[index])
    for payload in (self._payloads[index] for index in indexes):
        if _sees(payload._source, request, self) and not payload._disabled.is_set():
            try:
                return await payload(request)
            except rendering.ReactionMismatchError:
                payload._disabled.set()
            except NotImplementedError:
                pass
    raise NotImplementedError("Undefined server behaviour: no reaction matches the request.")


apps.RawHandler._handle = _fast_handle  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# Label & field selectors (the common subset: =, ==, !=, in, notin, exists, !exists).
# ---------------------------------------------------------------------------------------------
_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def _match_selector(selector: str | None, values: Mapping[str, str]) -> bool:
    for term in _split_selector(selector or ""):
        if m := _SET_RE.match(term):
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if (op == "in") != (key in values and values[key] in vals):
                return False
        elif "!=" in term:
            key, val = (s.strip() for s in term.split("!=", 1))
            if values.get(key) == val:
                return False
        elif "=" in term:
            key, val = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if values.get(key) != val:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in values:
                return False
        elif term not in values:
            return False
    return True


def _matches(request: rendering.Request, obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata", {}) or {}
    fields = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
    return _match_selector(
        request.params.get("labelSelector"), meta.get("labels") or {}
    ) and _match_selector(request.params.get("fieldSelector"), fields)


def _wants_table(request: rendering.Request) -> bool:
    return "as=Table" in (request.headers.get("Accept") or "")


_FILTER_RE = re.compile(r'^(\w+)\[\?\(@\.(\w+)==["\']([^"\']*)["\']\)\]$')


_PATH_PART_RE = re.compile(r"\.((?:\w+)(?:\[\?\(@\.\w+==[\"'][^\"']*[\"']\)\])?)")


def _jsonpath(obj: Any, path: str) -> Any:
    """The JSONPath subset printer columns use: ``.a.b``, ``.a[?(@.k=="v")].b``."""
    node = obj
    for part in _PATH_PART_RE.findall(path.strip()):
        if node is None:
            return None
        if m := _FILTER_RE.match(part):
            items = node.get(m.group(1)) if isinstance(node, Mapping) else None
            node = next((i for i in items or [] if str(i.get(m.group(2))) == m.group(3)), None)
        else:
            node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _age(timestamp: str) -> str:
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return timestamp
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    gc: bool = True  # cascade-delete the dependents via metadata.ownerReferences[].uid
    _rv_counter: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _rv_last: int = attrs.field(default=0, init=False)
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # kmock streams watches as application/octet-stream; kubectl's watcher then fails with
        # "no stream serializers registered for application/octet-stream". Re-register the
        # watch fallback with a JSON content type at a higher sub-priority within the fallbacks.
        (
            (self.fallback**1)[enums.action.WATCH]
            << {"Content-Type": "application/json"}
            << self._serve_watch
        )

    def _next_rv(self) -> str:
        self._rv_last = next(self._rv_counter)
        return str(self._rv_last)

    def _current(self, resource: Any, namespace: str | None, name: str | None) -> Any:
        key = (resource, namespace, name)
        if name is not None and key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    # ------------------------------------------------------------------ request interception
    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None or request.resource.plural is None:
            return await super()._handle(request)  # discovery, /version, non-k8s URLs
        writing = request.method == enums.method.PUT or request.action in (
            enums.action.CREATE,
            enums.action.UPDATE,
            enums.action.DELETE,
        )
        if not writing:
            return await super()._handle(request)  # get/list/watch: no serialisation needed
        async with self._write_lock:  # serialise writes: monotonic resourceVersions, atomic checks
            return await self._handle_write(request)

    async def _handle_write(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.method == enums.method.PUT and request.name is not None:
            return await self._serve_replace(request)

        key = (request.resource, request.namespace, request.name)
        existed = self._current(*key) is not None
        self._stamp(request)
        if request.action == enums.action.DELETE and existed:
            await self._mark_for_deletion(request)

        try:
            response = await super()._handle(request)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
            # e.g. kopf's {"op": "test", "path": "/metadata/resourceVersion"} on a conflict.
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(e)) from None

        if (
            request.action == enums.action.CREATE
            and request.resource == CRDS
            and isinstance(request.data, dict)
        ):
            self.register_crd(request.data)
        if existed and self._current(*key) is None:  # it has just been (finally) deleted
            await self._on_deleted(request.resource, self.objects[key].last.raw)
        return response

    def _stamp(self, request: rendering.Request) -> None:
        """Stamp the server-side metadata into the request payload (mutated in place)."""
        data = request.data
        if request.action == enums.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
                meta["name"] = meta["generateName"] + suffix
            if request.namespace and not meta.get("namespace"):
                meta["namespace"] = request.namespace
            meta.pop("deletionTimestamp", None)
            meta.update(
                uid=str(uuid.uuid4()),
                resourceVersion=self._next_rv(),
                creationTimestamp=_now(),
                generation=1,
            )
            if request.resource == CRDS:  # `kubectl wait --for=condition=Established crd/...`
                data["status"] = {
                    "acceptedNames": data.get("spec", {}).get("names", {}),
                    "conditions": [
                        {"type": t, "status": "True", "reason": t, "lastTransitionTime": _now()}
                        for t in ("NamesAccepted", "Established")
                    ],
                }

        elif request.action == enums.action.UPDATE and request.name is not None:
            current = self._current(request.resource, request.namespace, request.name)
            if current is None:
                return  # kmock will respond with 404
            cur_meta = current.get("metadata", {})
            generation = int(cur_meta.get("generation", 1) or 1)
            if isinstance(data, dict):
                if not isinstance(data.get("metadata"), dict):
                    data["metadata"] = {}
                meta = data["metadata"]
                expected = meta.get("resourceVersion")
                if expected is not None and str(expected) != str(cur_meta.get("resourceVersion")):
                    raise kmock.KubernetesError(
                        status=409, reason="Conflict", message="the object has been modified"
                    )
                meta["resourceVersion"] = self._next_rv()
                if request.subresource is None and "spec" in data:
                    meta["generation"] = generation + 1
            elif isinstance(data, list):  # JSON-patch: the "test" ops go first, then ours.
                data.append(
                    {"op": "add", "path": "/metadata/resourceVersion", "value": self._next_rv()}
                )
                if request.subresource is None and any(
                    str(op.get("path", "")).startswith("/spec") for op in data
                ):
                    data.append(
                        {"op": "add", "path": "/metadata/generation", "value": generation + 1}
                    )

    async def _mark_for_deletion(self, request: rendering.Request) -> None:
        # Same as kmock does for finalizers, but with a new resourceVersion.
        # kmock then sees the deletionTimestamp and does nothing more ("already marked").
        async with self._lock:
            obj = self._current(request.resource, request.namespace, request.name)
            meta = obj.get("metadata", {}) if obj is not None else {}
            if obj is not None and meta.get("finalizers") and not meta.get("deletionTimestamp"):
                obj.patch(
                    {"metadata": {"deletionTimestamp": _now(), "resourceVersion": self._next_rv()}}
                )
                await self._buses[request.resource].put({"type": "MODIFIED", "object": obj.raw})

    async def _serve_replace(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        async with self._lock:
            obj = self._current(request.resource, request.namespace, request.name)
            if obj is None:
                raise kmock.KubernetesObjectNotFoundError()
            old = obj.raw
            new = dict(request.data or {})
            if request.subresource == "status":
                new = dict(old, status=new.get("status"))
            meta = dict(new.get("metadata") or {})
            old_meta = old.get("metadata", {})
            if meta.get("resourceVersion") and str(meta["resourceVersion"]) != str(
                old_meta.get("resourceVersion")
            ):
                raise kmock.KubernetesError(
                    status=409, reason="Conflict", message="the object has been modified"
                )
            for field in (
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "namespace",
                "name",
            ):
                if field in old_meta:
                    meta[field] = old_meta[field]
            if new.get("spec") != old.get("spec"):
                meta["generation"] = int(old_meta.get("generation", 1)) + 1
            meta["resourceVersion"] = self._next_rv()
            new["metadata"] = meta
            obj.history.append(new)
            finally_deleted = bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
            if finally_deleted:
                obj.delete()
            await self._buses[request.resource].put(
                {"type": "DELETED" if finally_deleted else "MODIFIED", "object": new}
            )
        if finally_deleted:
            await self._on_deleted(request.resource, new)
        return aiohttp.web.json_response(new)

    # ------------------------------------------------------------------ CRDs & garbage collection
    def register_crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for version in spec.get("versions", []):
            if not version.get("served", True):
                continue
            subresources = set((version.get("subresources") or {}).keys())
            self.resources[f"{spec['group']}/{version['name']}/{names['plural']}"] = (
                kmock.ResourceInfo(
                    kind=names.get("kind"),
                    singular=names.get("singular") or names.get("kind", "").lower(),
                    shortnames=set(names.get("shortNames", [])),
                    categories=set(names.get("categories", [])),
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    subresources=subresources,
                    verbs={
                        "get",
                        "list",
                        "watch",
                        "create",
                        "update",
                        "patch",
                        "delete",
                        "deletecollection",
                    },
                )
            )

    async def _on_deleted(self, resource: Any, body: Mapping[str, Any]) -> None:
        if resource == CRDS:
            spec = body.get("spec", {})
            for version in spec.get("versions", []):
                self.resources.pop(
                    f"{spec['group']}/{version['name']}/{spec['names']['plural']}", None
                )
        uid = body.get("metadata", {}).get("uid")
        if not self.gc or not uid:
            return
        dependents = []
        async with self._lock:
            for (res, _ns, _name), obj in list(self.objects.items()):
                if obj.deleted:
                    continue
                meta = obj.get("metadata", {})
                if not any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
                    continue
                if meta.get("finalizers"):
                    if not meta.get("deletionTimestamp"):
                        obj.patch(
                            {
                                "metadata": {
                                    "deletionTimestamp": _now(),
                                    "resourceVersion": self._next_rv(),
                                }
                            }
                        )
                        await self._buses[res].put({"type": "MODIFIED", "object": obj.raw})
                else:
                    raw = obj.raw
                    obj.delete()
                    await self._buses[res].put({"type": "DELETED", "object": raw})
                    dependents.append((res, raw))
        for res, raw in dependents:
            await self._on_deleted(res, raw)

    # ------------------------------------------------------------------ reading
    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        result: dict[str, Any] = await super()._serve_list(request)
        info = self.resources.get(request.resource, None)
        kind = info.kind if info is not None and info.kind else request.resource.plural.capitalize()
        group, version = request.resource.group, request.resource.version
        if _wants_table(request):
            return self._table(request, [i for i in result["items"] if _matches(request, i)])
        return {
            "apiVersion": f"{group}/{version}" if group else version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._rv_last)},
            "items": [item for item in result["items"] if _matches(request, item)],
        }

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        result = await super()._serve_fetch(request)
        if _wants_table(request) and isinstance(result, Mapping):
            return self._table(request, [result])
        return result

    def _printer_columns(self, request: rendering.Request) -> list[dict[str, Any]]:
        res = request.resource
        for (r, _, _), obj in list(self.objects.items()):
            if r != CRDS or obj.deleted:
                continue
            spec = obj.get("spec", {})
            if spec.get("group") != res.group or spec.get("names", {}).get("plural") != res.plural:
                continue
            for version in spec.get("versions", []):
                if version.get("name") == res.version:
                    return list(version.get("additionalPrinterColumns") or [])
        return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]

    def _table(self, request: rendering.Request, items: list[Mapping[str, Any]]) -> dict[str, Any]:
        columns = self._printer_columns(request)
        defs = [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
        ]
        defs += [
            {"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
             "description": c.get("description", ""), "priority": c.get("priority", 0)}
            for c in columns
        ]  # fmt: skip
        rows = []
        for item in items:
            cells: list[Any] = [item.get("metadata", {}).get("name")]
            for c in columns:
                value = _jsonpath(item, c["jsonPath"])
                if c.get("type") == "date" and isinstance(value, str):
                    value = _age(value)
                cells.append(value)
            rows.append({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": item.get("metadata", {})}})  # fmt: skip
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(self._rv_last)},
            "columnDefinitions": defs,
            "rows": rows,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""  # send the headers now
        since = _int(request.params.get("resourceVersion")) or None  # "0"/absent: replay all
        bus = self._buses[request.resource]
        async with self._lock:  # all emulator writes happen under this lock: no events lost
            mark = await bus.mark()
            events = []
            for (res, ns, name), obj in self.objects.items():
                if res != request.resource or obj.deleted:
                    continue
                if request.namespace is not None and ns != request.namespace:
                    continue
                if request.name is not None and name != request.name:
                    continue
                rv = _int(obj.get("metadata", {}).get("resourceVersion"))
                if since is None or rv is None or rv > since:
                    events.append({"type": "ADDED", "object": obj.raw})
        timeout = _int(
            request.params.get("timeoutSeconds")
        )  # kmock ignores it; clients may rely on it
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        stream = bus.stream(since=mark)
        try:
            for event in events:
                if _matches(request, event["object"]):
                    yield event
            if request.params.get("sendInitialEvents") == "true":
                # "WatchList" clients (kubectl >= 1.3x: `kubectl delete` waiting, `kubectl wait`)
                # block until this bookmark marks the end of the initial events.
                info = self.resources.get(request.resource, None)
                group, version = request.resource.group, request.resource.version
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "apiVersion": f"{group}/{version}" if group else version,
                        "kind": info.kind
                        if info is not None and info.kind
                        else request.resource.plural.capitalize(),
                        "metadata": {
                            "resourceVersion": str(self._rv_last),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            while True:
                if deadline is None:
                    event = await anext(stream)
                else:
                    try:
                        event = await asyncio.wait_for(
                            anext(stream), max(0.0, deadline - loop.time())
                        )
                    except TimeoutError:
                        return  # the server-side timeout: end the stream, as the apiserver does
                meta = event.get("object", {}).get("metadata", {})
                if request.namespace is not None and meta.get("namespace") != request.namespace:
                    continue
                if request.name is not None and meta.get("name") != request.name:
                    continue
                if _matches(request, event.get("object", {})):
                    yield event
        finally:
            await stream.aclose()
            await bus.unmark(mark)

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        # kmock renders the core API as groupVersion "/v1" -> kubectl ignores all core resources
        # ("the server doesn't have a resource type ns/pods/configmaps").
        # kmock copies shortNames/categories to "plural/status" entries -> kubectl warns
        # 'short name "x" could also match lower priority resource x/status'.
        result: dict[str, Any] = await super()._serve_version(request)
        result["groupVersion"] = result["groupVersion"].lstrip(
            "/"
        )  # kmock says "/v1" for the core API
        for entry in result.get("resources", []):
            if "/" in entry["name"]:
                entry["shortNames"], entry["categories"] = [], []
        return result


# ---------------------------------------------------------------------------------------------
# Helpers for tests and for the standalone mode.
# ---------------------------------------------------------------------------------------------
def load_manifests(path: str) -> list[dict[str, Any]]:
    import yaml

    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def prepare(
    emulator: Emulator, crd_paths: list[str] = (), namespaces: list[str] = ("default",)
) -> None:
    """Builtin resources (bundled K3s discovery data), CRDs, and Namespace objects."""
    emulator.resources.load_bundled()
    for path in crd_paths:
        for doc in load_manifests(path):
            if doc.get("kind") == "CustomResourceDefinition":
                emulator.register_crd(doc)
                # NB: objects put via kmock.objects[...] bypass the API: no stamping, no watch events.
                emulator.objects[CRDS, None, doc["metadata"]["name"]] = dict(
                    doc,
                    metadata=dict(
                        doc["metadata"], uid=str(uuid.uuid4()), resourceVersion=emulator._next_rv()
                    ),
                )
    for ns in namespaces:
        emulator.objects["v1/namespaces", None, ns] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": str(uuid.uuid4()),
                "resourceVersion": emulator._next_rv(),
            },
            "status": {"phase": "Active"},
        }


def kubeconfig_text(url: str, namespace: str = "default") -> str:
    return json.dumps(
        {  # JSON is valid YAML; kopf, kubectl & kubernetes_asyncio all accept it.
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": str(url).rstrip("/")}}],
            "users": [{"name": "kmock", "user": {"token": "not-checked"}}],
            "contexts": [
                {
                    "name": "kmock",
                    "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace},
                }
            ],
        },
        indent=2,
    )


async def _main() -> None:
    parser = argparse.ArgumentParser(description="Standalone kopf-friendly K8s API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (see --kubeconfig)")
    parser.add_argument(
        "--crd", action="append", default=[], help="CRD manifest(s) to pre-register"
    )
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server to this path")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args()

    class LoggingEmulator(Emulator):
        async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
            if args.verbose:
                print(f"{request.method.value} {request.url.path_qs}", file=sys.stderr, flush=True)
            return await super()._handle(request)

    async with (
        LoggingEmulator() as emulator,
        kmock.Server(emulator, host=args.host, port=args.port or None) as server,
    ):
        prepare(emulator, crd_paths=args.crd)
        if args.kubeconfig:  # written atomically: its appearance means "ready"
            Path(args.kubeconfig + ".tmp").write_text(kubeconfig_text(server.url), encoding="utf-8")  # noqa: ASYNC240 (tiny, once)
            os.replace(args.kubeconfig + ".tmp", args.kubeconfig)
        print(f"Kubernetes emulator listening on {server.url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
