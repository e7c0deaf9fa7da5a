"""Downloads are whole or absent: against a loopback server that lies about what it sends, `download`
either ends with exactly the declared bytes under the final name, or exits 2 with one line and leaves
nothing under the final name — with or without a sha256 to check."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator

import pytest

import pipeline.data.download as download_mod
from conftest import base_params, write_params
from test_artifacts import run_cli

N = 300_000
PAYLOAD = bytes(range(256)) * (N // 256) + bytes(N % 256)
SHA = hashlib.sha256(PAYLOAD).hexdigest()

# A behaviour maps (request number, the Range start asked for or None) to (status, headers, body).
Reply = tuple[int, dict[str, str], bytes]
Behaviour = Callable[[int, int | None], Reply]


def whole(_n: int, start: int | None) -> Reply:
    if start:
        rng = {"Content-Range": f"bytes {start}-{N - 1}/{N}"}
        return 206, {"Content-Length": str(N - start), **rng}, PAYLOAD[start:]
    return 200, {"Content-Length": str(N)}, PAYLOAD


def short(_n: int, _start: int | None) -> Reply:
    """Declares the whole file, sends a third of it and hangs up, every time (the Range ignored)."""
    return 200, {"Content-Length": str(N)}, PAYLOAD[: N // 3]


def short_then_416(n: int, start: int | None) -> Reply:
    """The issue's server: a cut first transfer, then 416 to every resume, as if the part were whole."""
    if start:
        return 416, {"Content-Range": f"bytes */{N}"}, b""
    return short(n, start)


def short_then_short_restart(n: int, start: int | None) -> Reply:
    """Answers a resume with a 200 from byte 0, cut again."""
    return 200, {"Content-Length": str(N)}, PAYLOAD[: N // 2] if start else PAYLOAD[: N // 3]


def resumes_elsewhere(n: int, start: int | None) -> Reply:
    """Answers a resume from byte k with a 206 from byte 0: appended, it would duplicate the head."""
    if start:
        return 206, {"Content-Length": str(N), "Content-Range": f"bytes 0-{N - 1}/{N}"}, PAYLOAD
    return short(n, start)


def no_length(_n: int, _start: int | None) -> Reply:
    """No Content-Length at all (the body ends when the connection closes): a cut cannot be seen."""
    return 200, {}, PAYLOAD[: N // 3]


def wrong_length(_n: int, _start: int | None) -> Reply:
    """A consistent lie: declares and sends a shorter file. Only a checksum can catch it."""
    return 200, {"Content-Length": str(N - 1000)}, PAYLOAD[: N - 1000]


LIARS = [short, short_then_416, short_then_short_restart, resumes_elsewhere, no_length]


def short_then_416_then_whole(n: int, start: int | None) -> Reply:
    return short(n, start) if n == 0 else short_then_416(n, start) if start else whole(n, start)


def short_then_resumable(n: int, start: int | None) -> Reply:
    return short(n, start) if n == 0 else whole(n, start)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Behaviour], str]]:
    """serve(behaviour) → the URL of corpus.zip on a loopback server acting so."""
    monkeypatch.setattr(download_mod, "BACKOFF_S", 0.0)
    servers = []

    def start(behaviour: Behaviour) -> str:
        count = [0]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                status, headers, body = behaviour(count[0], int(rng[6:].rstrip("-")) if rng else None)
                count[0] += 1
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll: shutdown() at teardown waits one poll interval (0.5 s by default)
        threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_port}/corpus.zip"

    yield start
    for httpd in servers:
        httpd.shutdown()


def textbench_download(project, capsys, monkeypatch, url: str, sha256: str) -> tuple[int, str]:
    params = base_params()
    params["datasets"]["thucnews"].update(url=url, filename="corpus.zip", sha256=sha256)
    write_params(project, params)
    return run_cli(["download", "-d", "thucnews"], capsys, monkeypatch)


# wrong_length only with a sha256: a short file declared as such is indistinguishable without one
CASES = [(b, sha) for b in LIARS for sha in ("", SHA)] + [(wrong_length, SHA)]


@pytest.mark.parametrize(
    ("behaviour", "sha256"), CASES, ids=[f"{b.__name__}-{'sha256' if s else 'no-sha256'}" for b, s in CASES]
)
def test_a_lying_server_leaves_nothing_under_the_final_name(project, capsys, monkeypatch, serve, behaviour, sha256):
    code, err = textbench_download(project, capsys, monkeypatch, serve(behaviour), sha256)
    line = err.split("\r")[-1]  # after the progress bar's last redraw
    assert code == 2 and line.startswith("error: could not fetch corpus.zip") and err.count("\n") == 1, err
    assert not (project / "data/raw/thucnews/corpus.zip").exists()
    # and a second run does not take what the first one left for complete
    assert textbench_download(project, capsys, monkeypatch, serve(behaviour), sha256)[0] == 2
    assert not (project / "data/raw/thucnews/corpus.zip").exists()


@pytest.mark.parametrize("sha256", ["", SHA], ids=["no-sha256", "sha256"])
@pytest.mark.parametrize("behaviour", [short_then_resumable, short_then_416_then_whole], ids=lambda b: b.__name__)
def test_a_cut_transfer_that_the_server_can_finish_ends_whole(project, capsys, monkeypatch, serve, behaviour, sha256):
    code, err = textbench_download(project, capsys, monkeypatch, serve(behaviour), sha256)
    assert code == 0, err
    assert (project / "data/raw/thucnews/corpus.zip").read_bytes() == PAYLOAD
