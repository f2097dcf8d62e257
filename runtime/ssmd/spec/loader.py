"""Load resource YAML into models, with errors a person can act on.

Every error is one line: ``FILE: FIELD.PATH: what is wrong (what is allowed)``.
Values of credential fields are never echoed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from pydantic import BaseModel, ValidationError

from ssmd.spec.common import API_VERSION
from ssmd.spec.environment import Environment
from ssmd.spec.feed import Feed
from ssmd.spec.key import Key

Resource: TypeAlias = Environment | Feed | Key
KINDS: dict[str, type[Environment] | type[Feed] | type[Key]] = {
    "Environment": Environment,
    "Feed": Feed,
    "Key": Key,
}
_SECRET_ERROR_TYPES = {"value_error"}
_MAX_ERRORS = 5


class SpecError(ValueError):
    """A resource document is invalid. ``str()`` is the one-line message(s) to show."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _field_aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (for 'allowed fields' hints)."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = next(
            (f for n, f in model.model_fields.items() if (f.alias or n) == part or n == part),
            None,
        )
        if field is None:
            # a dict key (e.g. spec.keys.<name>): stay on the dict's value type
            continue
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Find the BaseModel inside Optional[...], list[...], dict[str, ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _format_error(root: type[BaseModel], err: Any) -> str:
    loc: tuple[int | str, ...] = tuple(err.get("loc", ()))
    # pydantic adds the tagged-union / function names into loc for some validators
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    etype = err.get("type", "")
    msg: str = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if etype == "extra_forbidden":
        owner = _model_at(root, loc)
        allowed = ", ".join(_field_aliases(owner)) if owner else ""
        msg = f"unknown field{f' (allowed: {allowed})' if allowed else ''}"
    elif etype == "missing":
        msg = "required field is missing"
    elif etype == "literal_error":
        msg = f"{err.get('input')!r} is not allowed: {msg.replace('Input should be ', 'use ')}"
    elif etype not in _SECRET_ERROR_TYPES and "input" in err:
        shown = repr(err["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{shown}: {msg[0].lower()}{msg[1:]}" if msg else shown
    # model-level validators already name the field path in their message
    return f"{path}: {msg}" if path and not msg.startswith("spec.") else msg


def validate_document(doc: Any, source: str = "<input>") -> Resource:
    """Validate one parsed YAML/JSON document of any ssmd kind."""
    if not isinstance(doc, dict):
        raise SpecError(source, ["the document is not a mapping (expected apiVersion, kind, ...)"])
    kind = doc.get("kind")
    if kind not in KINDS:
        raise SpecError(source, [f"kind: {kind!r} is not an ssmd kind (use {', '.join(KINDS)})"])
    if doc.get("apiVersion") != API_VERSION:
        raise SpecError(source, [f"apiVersion: {doc.get('apiVersion')!r} is not {API_VERSION}"])
    model = KINDS[kind]
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        problems = [_format_error(model, e) for e in errs[:_MAX_ERRORS]]
        if len(errs) > _MAX_ERRORS:
            problems.append(f"... and {len(errs) - _MAX_ERRORS} more problems")
        raise SpecError(source, problems) from None


def load_documents(text: str, source: str = "<input>") -> list[Resource]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, [f"{where}not valid YAML: {problem}"]) from None
    if not docs:
        raise SpecError(source, ["the file is empty"])
    return [
        validate_document(d, f"{source} (document {i + 1})" if len(docs) > 1 else source)
        for i, d in enumerate(docs)
    ]


def load_file(path: str | Path) -> list[Resource]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(p), ["no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(p), [f"cannot read: {exc}"]) from None
    return load_documents(text, str(p))


def load_environment(path: str | Path) -> Environment:
    """Load a file that must hold exactly one Environment."""
    envs = [r for r in load_file(path) if isinstance(r, Environment)]
    if len(envs) != 1:
        raise SpecError(str(path), [f"expected one Environment, found {len(envs)}"])
    return envs[0]


def iter_environments(resources: Iterable[Resource]) -> list[Environment]:
    return [r for r in resources if isinstance(r, Environment)]
