"""The exceptions the CLI turns into one line on stderr and a non-zero exit: `error: ...` (exit 2),
or an interruption by a signal (exit 130/143); and `describe_invalid`, the one wording of a pydantic
ValidationError in them (params, artifacts, model archs)."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class TextbenchError(Exception):
    """A user-facing failure: the message names the file or key at fault and what to do about it."""


class Interrupted(SystemExit):
    """SIGINT or SIGTERM as an exception: cleanup (`finally`, Prefect's crash handling) runs as it
    unwinds, then the CLI says so in one line and exits 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signame = signal.Signals(signum).name


def describe_invalid(e: ValidationError, prefix: str = "", unknown: str = "unknown key") -> str:
    """`key: message` of the first error (+ how many more): the key is `prefix` then the error's
    location, dotted; a key the model forbids reads `unknown`."""
    errors = e.errors()
    err = errors[0]
    key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
    msg = unknown if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{key}: {msg}{more}" if key else f"{msg}{more}"
