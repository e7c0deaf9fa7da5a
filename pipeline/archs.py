"""The arch schema of every registered model without importing torch: what params load validates.

`models.<name>.arch` and `families.<family>.arch` are checked when params load, by every command
(pipeline/config.py), and loading params must not import torch. The schema is read, not restated:
the registry's entries (pipeline/models/registry.py: family, head, arch identity), each family's
embedder and the typed keyword-only arguments of the embedder and head classes
(pipeline/models/{classic,bert,linear,heads}.py, annotated with pipeline/models/bounds.py) are taken
from the sources by `ast`. `resolve_arch` here is `registry.resolve_arch` (same values, same errors;
tests/test_params_load.py checks both agree for every model).
"""

from __future__ import annotations

import ast
import functools
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from pipeline.errors import TextbenchError
from pipeline.models import bounds

MODELS = Path(__file__).resolve().parent / "models"
_NAMES = {**vars(bounds), **vars(typing), "tuple": tuple, "bool": bool, "int": int, "float": float, "str": str}


def _parse(name: str) -> ast.Module:
    return ast.parse((MODELS / name).read_text(encoding="utf-8"))


def _class_kwargs(cls: ast.ClassDef) -> dict[str, tuple[Any, Any]]:
    """name → (annotation, default) of the keyword-only arguments of `cls.__init__`."""
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    args = init.args
    return {
        a.arg: (eval(ast.unparse(a.annotation), _NAMES), ast.literal_eval(d))  # our own sources
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    }


@functools.cache
def _registry() -> tuple[dict[str, tuple[str, str, dict[str, Any]]], dict[str, str]]:
    """({model: (family, head class, arch)}, {family: embedder class}) as registry.py writes them."""
    tree = _parse("registry.py")
    entries, embedders = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "REGISTRY":
            assert isinstance(node.value, ast.Dict)
            for key, call in zip(node.value.keys, node.value.values):
                assert isinstance(key, ast.Constant) and isinstance(call, ast.Call)
                family, head, *arch = call.args
                assert isinstance(head, ast.Name)
                entries[key.value] = (ast.literal_eval(family), head.id, ast.literal_eval(arch[0]) if arch else {})
        if isinstance(node, ast.FunctionDef) and node.name == "embedder":
            table = next(n for n in ast.walk(node) if isinstance(n, ast.Dict))
            embedders = {ast.literal_eval(k): v.id for k, v in zip(table.keys, table.values)}  # type: ignore[union-attr]
    return entries, embedders


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


@functools.cache
def _schema(name: str) -> tuple[type[BaseModel], dict[str, Any], list[str]]:
    """(the pydantic model of `name`'s arch kwargs, its registry arch, the valid keys)."""
    entries, embedders = _registry()
    if name not in entries:
        raise TextbenchError(f"unknown model '{name}': known models are {', '.join(sorted(entries))}")
    family, head, arch = entries[name]
    fields = {**_classes()[embedders[family]], **_classes()[head]}
    return create_model(f"{name}_arch", __config__=ConfigDict(extra="forbid"), **fields), arch, sorted(fields)


def resolve_arch(name: str, arch: dict[str, Any]) -> dict[str, Any]:
    """Validated arch kwargs: class defaults < the registry's arch < `arch` (params, Config.arch_for)."""
    schema, identity, keys = _schema(name)
    try:
        return schema(**{**identity, **arch}).model_dump(mode="json")
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise TextbenchError(f"models.{name}.arch.{key}: {msg} (valid keys: {', '.join(keys)})") from None
