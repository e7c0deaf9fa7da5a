"""The exceptions the CLI turns into one line on stderr and a non-zero exit: `error: ...` (exit 2),
or an interruption by a signal (exit 130/143)."""

import signal


class TextbenchError(Exception):
    """A user-facing failure: the message names the file or key at fault and what to do about it."""


class Interrupted(SystemExit):
    """SIGINT or SIGTERM as an exception: cleanup (`finally`, Prefect's crash handling) runs as it
    unwinds, then the CLI says so in one line and exits 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signame = signal.Signals(signum).name
