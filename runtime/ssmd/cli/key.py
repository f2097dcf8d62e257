"""``ssmd key``: the keys an environment needs, sealed by the CLI (no kubectl, no kubeseal).

ENV is an Environment file, or a name: ``environments/NAME.yaml`` if it exists, else the
Environment of that name in the cluster. With ``--out DIR`` (init/set/rotate/delete) or
``--from-dir DIR`` (list/show/verify/export) everything works offline on Key manifests in DIR;
otherwise the Key resources in the cluster are used and each change is recorded as an Event.
Values are never printed, logged or written unsealed."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from ssmd.cli.errors import UserError

T = TypeVar("T")
SCOPES = ("strict", "namespace-wide", "cluster-wide")
_NOW: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731  (tests replace it)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from ssmd.keys.cluster import ClusterError
    from ssmd.keys.manage import KeyOpError
    from ssmd.keys.resolve import KeyResolveError
    from ssmd.keys.seal import SealError
    from ssmd.spec.loader import SpecError

    try:
        return asyncio.run(coro)
    except (ClusterError, KeyOpError, SealError, SpecError, KeyResolveError) as exc:
        raise UserError(str(exc)) from None


class Session:
    """The environment, where Keys live (directory or cluster) and who is acting."""

    def __init__(self, env_arg: str, directory: Path | None, namespace: str | None) -> None:
        self.env_arg = env_arg
        self.directory = directory
        self.namespace_opt = namespace
        self.stack = AsyncExitStack()
        self._cluster: Any = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def cluster(self) -> Any:
        from ssmd.keys.cluster import Cluster

        if self._cluster is None:
            self._cluster = await self.stack.enter_async_context(await Cluster.connect())
        return self._cluster

    @property
    def namespace(self) -> str:
        if self.namespace_opt:
            return self.namespace_opt
        from ssmd.keys.cluster import ClusterError, current_context

        try:
            return current_context().namespace
        except ClusterError:
            return "default"

    @property
    def actor(self) -> str:
        from ssmd.keys.cluster import ClusterError, current_context
        from ssmd.keys.manage import local_actor

        try:
            return current_context().actor
        except ClusterError:
            return local_actor()

    async def environment(self) -> Any:
        from ssmd.spec import Environment
        from ssmd.spec.loader import load_environment, validate_document

        local = _env_file(self.env_arg)
        if local is not None:
            return load_environment(local)
        if self.directory is not None:
            raise UserError(
                f"no Environment file for {self.env_arg!r}: pass the file (e.g. environments/{self.env_arg}.yaml)"
            )
        c = await self.cluster()
        doc = await c.get("ssmdenvironments", self.namespace, self.env_arg)
        if doc is None:
            raise UserError(
                f"no Environment {self.env_arg!r} in namespace {self.namespace} and no file "
                f"environments/{self.env_arg}.yaml"
            )
        doc = {k: doc[k] for k in ("apiVersion", "kind", "spec") if k in doc} | {
            "metadata": {"name": doc["metadata"]["name"]}
        }
        env = validate_document(doc, f"Environment {self.env_arg}")
        assert isinstance(env, Environment)
        return env

    async def store(self) -> Any:
        from ssmd.keys.manage import ClusterStore, DirStore

        if self.directory is not None:
            return DirStore(self.directory)
        return ClusterStore(await self.cluster())

    async def public_key(self, cert: Path | None, controller_ns: str, controller: str) -> Any:
        from ssmd.keys.seal import controller_cert_path, load_certificate_file, public_key_from_pem

        if cert is not None:
            return load_certificate_file(cert)
        from ssmd.keys.cluster import ClusterError

        try:
            c = await self.cluster()
            pem = await c.raw("GET", controller_cert_path(controller_ns, controller), accept="*/*")
        except ClusterError as exc:
            raise UserError(
                f"cannot get the sealed-secrets controller's certificate ({exc}); "
                "pass --cert FILE (e.g. from `kubeseal --fetch-cert`)"
            ) from None
        return public_key_from_pem(pem)


def _env_file(arg: str) -> Path | None:
    p = Path(arg)
    if p.suffix in (".yaml", ".yml", ".json") or p.is_file():
        return p
    local = Path("environments") / f"{arg}.yaml"
    return local if local.is_file() else None


def _read_answer(what: str, path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UserError(f"{what}: cannot read {path}: {exc.strerror}") from None


def _parse_pairs(items: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, sep, rest = item.partition("=")
        if not sep or not name:
            # Never echo the item: it may be a value typed without its NAME=.
            raise UserError(f"{option} expects NAME=..., e.g. {option} api_key_id=...")
        out.append((name, rest))
    return out


def _collect_values(
    req: Any, fields: tuple[str, ...], from_file: tuple[str, ...], from_env: tuple[str, ...]
) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    for name, value in _parse_pairs(fields, "--field"):
        values[name] = value.encode()
    for name, path in _parse_pairs(from_file, "--from-file"):
        try:
            values[name] = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise UserError(f"--from-file {name}: cannot read {path}: {exc.strerror}") from None
    for group in from_env:
        for item in filter(None, (s.strip() for s in group.split(","))):
            field, sep, var = item.partition("=")
            if not sep:
                var = item
                by_env = {v: f for f, v in req.env.items()}
                by_file = {v: f for f, v in req.file_env.items()}
                field = by_env.get(var) or by_file.get(var) or var.lower()
                is_file = var in by_file and var not in by_env
            else:
                is_file = req.file_env.get(field) == var
            raw = os.environ.get(var)
            if raw is None:
                raise UserError(f"--from-env: ${var} is not set")
            if is_file:
                try:
                    values[field] = Path(raw).expanduser().read_bytes()
                except OSError as exc:
                    raise UserError(
                        f"--from-env: ${var} names {raw}, which cannot be read: {exc.strerror}"
                    ) from None
            else:
                values[field] = raw.encode()
    return values


def _store_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option(
                "--namespace", "-n", help="Namespace of the Key (default: kubeconfig context)."
            ),
            click.option(
                "--scope",
                type=click.Choice(SCOPES),
                default="strict",
                show_default=True,
                help="Who may unseal: this name in this namespace, any name in it, or any namespace.",
            ),
            click.option(
                "--cert",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Controller certificate PEM (default: fetched from the controller).",
            ),
            click.option(
                "--out",
                "out",
                type=click.Path(path_type=Path, file_okay=False),
                help="Write DIR/{env}-{key}.yaml instead of applying to the cluster.",
            ),
            click.option("--controller-namespace", default="kube-system", show_default=True),
            click.option(
                "--controller-name", default="sealed-secrets-controller", show_default=True
            ),
        ]
    ):
        f = opt(f)
    return f


@click.group()
def key() -> None:
    """Manage the keys an environment needs: sealed by the CLI, never stored plain."""


async def _seal_and_put(
    s: Session,
    env: Any,
    key_name: str,
    values: dict[str, bytes],
    *,
    scope: str,
    pub: Any,
    reason: str,
    require_all: bool = False,
) -> str:
    from ssmd.keys.manage import seal_key

    store = await s.store()
    existing = await store.get(env.name, key_name, s.namespace)
    if require_all and existing is None:
        raise UserError(f"key {key_name!r} of {env.name!r} does not exist yet: use `ssmd key set`")
    now = _NOW()
    manifest = seal_key(
        env, key_name, values, public_key=pub, namespace=s.namespace, scope=scope,  # type: ignore[arg-type]
        existing=existing, now=now, actor=s.actor, require_all=require_all,
    )  # fmt: skip
    fields = ", ".join(sorted(values))
    where: str = await store.put(
        manifest,
        reason=reason,
        message=f"{'rotated' if reason == 'KeyRotated' else 'set'} field(s) {fields} of key {key_name!r} (sealed, {scope})",
        actor=s.actor,
        now=now,
    )
    return where


@key.command("set")
@click.argument("env_arg", metavar="ENV")
@click.argument("key_name", metavar="KEY")
@click.option(
    "--field", "fields", multiple=True, metavar="NAME=VALUE", help="A field's value (repeatable)."
)
@click.option(
    "--from-file", multiple=True, metavar="NAME=PATH", help="A field's value from a file."
)
@click.option(
    "--from-env",
    multiple=True,
    metavar="VAR,...",
    help="Values from environment variables ([FIELD=]VAR).",
)
@_store_options
def set_(env_arg: str, key_name: str, fields: tuple[str, ...], from_file: tuple[str, ...], from_env: tuple[str, ...], namespace: str | None, scope: str, cert: Path | None, out: Path | None, controller_namespace: str, controller_name: str) -> None:  # fmt: skip
    """Seal values for KEY of ENV and store them (cluster, or DIR with --out)."""
    _set_or_rotate(env_arg, key_name, fields, from_file, from_env, namespace, scope, cert, out, controller_namespace, controller_name, rotate=False)  # fmt: skip


@key.command()
@click.argument("env_arg", metavar="ENV")
@click.argument("key_name", metavar="KEY")
@click.option("--field", "fields", multiple=True, metavar="NAME=VALUE")
@click.option("--from-file", multiple=True, metavar="NAME=PATH")
@click.option("--from-env", multiple=True, metavar="VAR,...")
@_store_options
def rotate(env_arg: str, key_name: str, fields: tuple[str, ...], from_file: tuple[str, ...], from_env: tuple[str, ...], namespace: str | None, scope: str, cert: Path | None, out: Path | None, controller_namespace: str, controller_name: str) -> None:  # fmt: skip
    """Replace every field of an existing KEY with new values; restarts nothing (components
    read the new Secret on their next reconnect)."""
    _set_or_rotate(env_arg, key_name, fields, from_file, from_env, namespace, scope, cert, out, controller_namespace, controller_name, rotate=True)  # fmt: skip


def _set_or_rotate(env_arg: str, key_name: str, fields: tuple[str, ...], from_file: tuple[str, ...], from_env: tuple[str, ...], namespace: str | None, scope: str, cert: Path | None, out: Path | None, controller_namespace: str, controller_name: str, *, rotate: bool) -> None:  # fmt: skip
    from ssmd.keys.manage import requirement

    async def go() -> tuple[str, list[str]]:
        async with Session(env_arg, out, namespace) as s:
            env = await s.environment()
            req = requirement(env, key_name)
            values = _collect_values(req, fields, from_file, from_env)
            pub = await s.public_key(cert, controller_namespace, controller_name)
            where = await _seal_and_put(
                s, env, key_name, values, scope=scope, pub=pub,
                reason="KeyRotated" if rotate else "KeySet", require_all=rotate,
            )  # fmt: skip
            return where, sorted(values)

    where, names = _run(go())
    click.echo(f"✓ {'rotated' if rotate else 'sealed'} {key_name}: {', '.join(names)} → {where}")


@key.command()
@click.argument("env_arg", metavar="ENV")
@_store_options
def init(env_arg: str, namespace: str | None, scope: str, cert: Path | None, out: Path | None, controller_namespace: str, controller_name: str) -> None:  # fmt: skip
    """Prompt (without echo) for every field of every key ENV needs, then seal them.

    Answer @PATH to read a value from a file (e.g. a PEM private key); leave an optional
    key's fields empty to skip it."""

    async def go() -> list[str]:
        async with Session(env_arg, out, namespace) as s:
            env = await s.environment()
            if not env.spec.keys:
                return []
            pub = await s.public_key(cert, controller_namespace, controller_name)
            done = []
            for name, req in sorted(env.spec.keys.items()):
                click.echo(f"{name} ({req.type}{', required' if req.required else ', optional'})"
                           f"{': ' + req.description if req.description else ''}")  # fmt: skip
                values: dict[str, bytes] = {}
                for f in req.fields:
                    answer = click.prompt(f"  {f}", hide_input=True, default="", show_default=False)
                    if answer.startswith("@"):
                        values[f] = _read_answer(f"{name}.{f}", answer[1:])
                    elif answer:
                        values[f] = answer.encode()
                if not values:
                    if req.required:
                        raise UserError(f"key {name!r} is required: give its fields")
                    click.echo(f"  ○ skipped {name}")
                    continue
                where = await _seal_and_put(
                    s, env, name, values, scope=scope, pub=pub, reason="KeySet"
                )
                click.echo(f"  ✓ sealed {name}: {', '.join(sorted(values))} → {where}")
                done.append(name)
            return done

    done = _run(go())
    if not done:
        click.echo("no keys to set")


async def _views(s: Session, env: Any) -> list[Any]:
    from ssmd.keys.manage import key_view

    store = await s.store()
    now = _NOW()
    return [
        key_view(env, name, await store.get(env.name, name, s.namespace), now)
        for name in sorted(env.spec.keys)
    ]


_from_dir = click.option(
    "--from-dir", "from_dir", type=click.Path(path_type=Path, file_okay=False),
    help="Read Key manifests from DIR (offline) instead of the cluster.",
)  # fmt: skip
_namespace = click.option("--namespace", "-n", help="Namespace (default: kubeconfig context).")


@key.command("list")
@click.argument("env_arg", metavar="ENV")
@_from_dir
@_namespace
@click.option("--json", "as_json", is_flag=True)
def list_(env_arg: str, from_dir: Path | None, namespace: str | None, as_json: bool) -> None:
    """NAME TYPE REQUIRED STATUS LAST_ROTATED EXPIRES for each key of ENV."""

    async def go() -> list[Any]:
        async with Session(env_arg, from_dir, namespace) as s:
            return await _views(s, await s.environment())

    views = _run(go())
    rows = [
        {
            "name": v.name,
            "type": v.requirement.type,
            "required": v.requirement.required,
            "status": v.state,
            "lastRotated": v.last_rotated,
            "expires": v.expires_at,
        }
        for v in views
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [["NAME", "TYPE", "REQUIRED", "STATUS", "LAST_ROTATED", "EXPIRES"]] + [
        [r["name"], r["type"], "yes" if r["required"] else "no", r["status"], r["lastRotated"] or "-", r["expires"] or "-"]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(row[i])) for row in table) for i in range(6)]
    for row in table:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@key.command()
@click.argument("env_arg", metavar="ENV")
@click.argument("key_name", metavar="KEY")
@_from_dir
@_namespace
@click.option("--json", "as_json", is_flag=True)
def show(
    env_arg: str, key_name: str, from_dir: Path | None, namespace: str | None, as_json: bool
) -> None:
    """Metadata of one key (never its values)."""
    from ssmd.keys.manage import key_view, requirement

    async def go() -> Any:
        async with Session(env_arg, from_dir, namespace) as s:
            env = await s.environment()
            requirement(env, key_name)
            store = await s.store()
            return key_view(env, key_name, await store.get(env.name, key_name, s.namespace), _NOW())

    v = _run(go())
    info = {
        "name": v.name,
        "resource": v.resource,
        "type": v.requirement.type,
        "description": v.requirement.description,
        "required": v.requirement.required,
        "fields": v.requirement.fields,
        "fieldsPresent": v.fields_present,
        "status": v.state,
        "statusFrom": "operator" if v.from_status else ("sealed manifest" if v.exists else "-"),
        "scope": v.scope,
        "rotationDays": v.requirement.rotation_days,
        "lastRotated": v.last_rotated,
        "expires": v.expires_at,
        "secret": v.secret_name,
        "changedBy": v.changed_by,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for k, val in info.items():
        if isinstance(val, bool):
            shown = "yes" if val else "no"
        elif isinstance(val, list):
            shown = ", ".join(val) or "-"
        else:
            shown = "-" if val in (None, "") else str(val)
        click.echo(f"{k + ':':<15} {shown}")


@key.command()
@click.argument("env_arg", metavar="ENV")
@_from_dir
@_namespace
def verify(env_arg: str, from_dir: Path | None, namespace: str | None) -> None:
    """✓ set, ○ optional and not set, ✗ required and missing/partial/expired; exit 1 on any ✗."""
    from ssmd.keys.status import set_command

    async def go() -> tuple[Any, list[Any], str]:
        async with Session(env_arg, from_dir, namespace) as s:
            env = await s.environment()
            return env, await _views(s, env), s.namespace

    env, views, ns = _run(go())
    bad = 0
    for v in views:
        req = v.requirement
        missing = [f for f in req.fields if f not in v.fields_present]
        if v.state == "set":
            exp = f", expires {v.expires_at}" if v.expires_at else ""
            click.echo(f"✓ {v.name}: set{exp}")
        elif not req.required and v.state == "not_set":
            click.echo(f"○ {v.name}: optional, not set")
        else:
            mark = "✗" if req.required else "○"
            bad += req.required
            verb = "rotate" if v.state == "expired" else "set"
            what = {
                "partial": f"missing {', '.join(missing)}",
                "expired": f"expired {v.expires_at}",
            }.get(v.state, "not set")
            todo = set_command(
                env.name,
                v.name,
                req.fields if verb == "rotate" else missing,
                namespace=ns,
                verb=verb,
            )
            click.echo(f"{mark} {v.name}: {what} — run `{todo}`")
    if bad:
        raise SystemExit(1)


@key.command()
@click.argument("env_arg", metavar="ENV")
@click.argument("key_name", metavar="KEY")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Delete DIR/{env}-{key}.yaml instead.",
)
@_namespace
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(env_arg: str, key_name: str, out: Path | None, namespace: str | None, yes: bool) -> None:
    """Delete a Key (its SealedSecret and Secret go with it)."""

    async def go() -> tuple[bool, str]:
        async with Session(env_arg, out, namespace) as s:
            env = await s.environment()
            store = await s.store()
            if not yes and not click.confirm(
                f"delete key {key_name!r} of {env.name!r} ({store.where})?"
            ):
                raise UserError("aborted")
            removed = await store.remove(env.name, key_name, s.namespace, actor=s.actor, now=_NOW())
            return removed, store.where

    removed, where = _run(go())
    if not removed:
        raise UserError(f"key {key_name!r} does not exist ({where})")
    click.echo(f"✓ deleted {key_name} ({where})")


@key.command()
@click.argument("env_arg", metavar="ENV")
@_namespace
def export(env_arg: str, namespace: str | None) -> None:
    """Key manifests with metadata and references only (no values), for GitOps."""
    from ssmd.keys.manage import export_documents

    async def go() -> list[dict[str, Any]]:
        async with Session(env_arg, None, namespace) as s:
            env = await s.environment()
            return export_documents(env, s.namespace)

    docs = _run(go())
    click.echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)
