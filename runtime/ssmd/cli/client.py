"""``ssmd client list|show|disconnect|set-mode``: clients of a running gateway (admin API)."""

from __future__ import annotations

import os
from typing import Any

import click
import orjson

from ssmd.cli.errors import UserError

API_KEY_VAR = "SSMD_API_KEY"

gateway_option = click.option(
    "--gateway",
    "base",
    default=lambda: os.environ.get("SSMD_GATEWAY_URL", "http://127.0.0.1:8080"),
    show_default="$SSMD_GATEWAY_URL or http://127.0.0.1:8080",
    help="Gateway base URL (http:// or ws://).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _call(base: str, method: str, path: str, body: Any = None) -> Any:
    import asyncio

    import aiohttp

    base = base.rstrip("/").replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    headers = {}
    key = os.environ.get(API_KEY_VAR)
    if key:
        headers["Authorization"] = f"Bearer {key}"

    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s,
            s.request(method, base + path, json=body, headers=headers) as r,
        ):
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, {"message": raw[:200].decode(errors="replace")}

    try:
        status, data = asyncio.run(go())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the gateway at {base}: {exc.__class__.__name__}") from None
    if status == 401:
        raise UserError(f"the gateway wants an API key: export {API_KEY_VAR}=...")
    if status >= 400:
        raise UserError(f"gateway answered {status}: {data.get('message', data)}")
    return data


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.group()
def client() -> None:
    """List and manage clients of a running gateway."""


@client.command("list")
@gateway_option
@json_option
def list_(base: str, as_json: bool) -> None:
    """Connected clients with their state, mode, lag and drops."""
    rows = _call(base, "GET", "/v1/admin/clients")["clients"]
    if as_json:
        _echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("ID", "REMOTE", "STATE", "MODE", "SYMBOLS", "QUEUED", "SENT", "DROPPED", box=None)
    for c in rows:
        mode = c["mode"] + (f"/{c['interval_ms']}ms" if c.get("interval_ms") else "")
        t.add_row(
            c["id"],
            c["remote"],
            c["state"],
            mode,
            str(len(c["symbols"])),
            str(c["queued_messages"]),
            str(c["sent"]),
            str(c["dropped"]),
        )
    Console(width=160).print(t)


@client.command()
@click.argument("client_id")
@gateway_option
@json_option
def show(client_id: str, base: str, as_json: bool) -> None:
    """One client in detail."""
    c = _call(base, "GET", f"/v1/admin/clients/{client_id}")
    if as_json:
        _echo_json(c)
        return
    for k, v in c.items():
        click.echo(f"{k:<16} {v}")


@client.command()
@click.argument("client_id")
@gateway_option
def disconnect(client_id: str, base: str) -> None:
    """Disconnect a client."""
    c = _call(base, "POST", f"/v1/admin/clients/{client_id}/disconnect")
    click.echo(f"{c['id']}: {c['state']}")


@client.command("set-mode")
@click.argument("client_id")
@click.argument("mode", type=click.Choice(["realtime", "conflated", "latest"]))
@click.option("--interval-ms", type=int, default=None, help="Conflation interval.")
@click.option(
    "--policy", type=click.Choice(["drop_oldest", "drop_newest", "disconnect"]), default=None
)
@gateway_option
def set_mode(
    client_id: str, mode: str, interval_ms: int | None, policy: str | None, base: str
) -> None:
    """Change a client's delivery mode (and drop policy)."""
    body: dict[str, Any] = {"mode": mode}
    if interval_ms is not None:
        body["interval_ms"] = interval_ms
    if policy is not None:
        body["policy"] = policy
    c = _call(base, "POST", f"/v1/admin/clients/{client_id}/mode", body)
    click.echo(f"{c['id']}: mode {c['mode']}, policy {c['policy']}")
