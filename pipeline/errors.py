"""The one exception type the CLI turns into a single `error: ...` line and a non-zero exit."""


class TextbenchError(Exception):
    """A user-facing failure: the message names the file or key at fault and what to do about it."""
