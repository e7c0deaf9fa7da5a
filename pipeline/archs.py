"""The arch schema of every model without importing torch: `resolve_arch`, what params load and
`build_model` validate with.

`models.<name>.arch` and `families.<family>.arch` are checked when params load, by every command
(pipeline/config.py), and loading params must not import torch. The schema is read, not restated:
the model table (pipeline/families.py: family, head, arch identity, each family's embedder) and the
typed keyword-only arguments of the embedder and head classes (pipeline/models/{classic,bert,linear,
heads}.py, annotated with pipeline/models/bounds.py), taken from the sources by `ast`
(tests/test_params_load.py checks they are the classes' own signatures)."""

from __future__ import annotations

import ast
import functools
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from pipeline.errors import TextbenchError, describe_invalid
from pipeline.families import FAMILY_TABLE, spec
from pipeline.models import bounds

SOURCES = Path(__file__).resolve().parent / "models"
_NAMES = {**vars(bounds), **vars(typing), "tuple": tuple, "bool": bool, "int": int, "float": float, "str": str}


def _parse(name: str) -> ast.Module:
    return ast.parse((SOURCES / name).read_text(encoding="utf-8"))


def _class_kwargs(cls: ast.ClassDef) -> dict[str, tuple[Any, Any]]:
    """name → (annotation, default) of the keyword-only arguments of `cls.__init__`."""
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    args = init.args
    return {
        a.arg: (eval(ast.unparse(a.annotation), _NAMES), ast.literal_eval(d))  # our own sources
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    }


@functools.cache
def _classes() -> dict[str, dict[str, tuple[Any, Any]]]:
    out = {}
    for source in ("classic.py", "bert.py", "linear.py", "heads.py"):
        for node in _parse(source).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(f, ast.FunctionDef) and f.name == "__init__" for f in node.body
            ):
                out[node.name] = _class_kwargs(node)
    return out


def arch_fields(name: str) -> dict[str, tuple[Any, Any]]:
    """key → (annotation, default) of `name`'s arch: its family's embedder's keywords, then its head's."""
    model = spec(name)
    return {**_classes()[FAMILY_TABLE[model.family].embedder], **_classes()[model.head]}


@functools.cache
def _schema(name: str) -> tuple[type[BaseModel], dict[str, Any], list[str]]:
    """(the pydantic model of `name`'s arch kwargs, its table arch, the valid keys)."""
    fields = arch_fields(name)
    schema = create_model(f"{name}_arch", __config__=ConfigDict(extra="forbid"), **fields)
    return schema, spec(name).arch, sorted(fields)


def resolve_arch(name: str, arch: dict[str, Any]) -> dict[str, Any]:
    """Validated arch kwargs: class defaults < the table's arch < `arch` (params, Config.arch_for)."""
    schema, identity, keys = _schema(name)
    try:
        return schema(**{**identity, **arch}).model_dump(mode="json")
    except ValidationError as err:
        raise TextbenchError(
            f"{describe_invalid(err, f'models.{name}.arch')} (valid keys: {', '.join(keys)})"
        ) from None
