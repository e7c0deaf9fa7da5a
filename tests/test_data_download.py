"""download: mirror directory, HTTP resume/retry/checksum against a loopback server, clear failures."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

import pipeline.data.download as download_mod
from conftest import read_params
from pipeline.config import Config, config_from_dict
from pipeline.data.download import download, raw_path
from pipeline.errors import TextbenchError

PAYLOAD = bytes(range(256)) * 4000  # 1 MB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def make_config(project: Path, mirror: str, **ds) -> Config:
    raw = read_params(project)
    raw["mirror"] = mirror
    raw["datasets"]["thucnews"].update({"filename": "corpus.zip", "sha256": SHA, **ds})
    return config_from_dict(raw)


class Server:
    """A loopback HTTP server honouring Range; `fail_next` drops that many requests mid-body."""

    def __init__(self, payload: bytes):
        self.payload, self.fail_next, self.unavailable_next, self.requests = payload, 0, 0, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.headers.get("Range"))
                if self.path != "/corpus.zip":
                    self.send_error(404)
                    return
                if outer.unavailable_next:
                    outer.unavailable_next -= 1
                    self.send_error(503)
                    return
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                body = outer.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.end_headers()
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.wfile.write(body[: len(body) // 3])  # then hang up: a broken transfer
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        # a short poll: shutdown() at teardown waits one poll interval (0.5 s by default)
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(download_mod, "BACKOFF_S", 0.01)
    s = Server(PAYLOAD)
    yield s
    s.httpd.shutdown()


def test_mirror_directory_copy_and_second_run_is_no_work(project, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "corpus.zip").write_bytes(PAYLOAD)
    cfg = make_config(project, str(mirror), url="")
    dest = download(cfg, "thucnews")
    assert dest == project / "data/raw/thucnews/corpus.zip" and dest.read_bytes() == PAYLOAD
    (mirror / "corpus.zip").unlink()  # present and verified: the source is not touched again
    assert download(cfg, "thucnews") == dest


def test_env_mirror_wins_and_relative_mirror_is_project_relative(project, monkeypatch):
    (project / "m").mkdir()
    (project / "m/corpus.zip").write_bytes(PAYLOAD)
    monkeypatch.setenv("TEXTBENCH_MIRROR", "m")
    assert download(make_config(project, "/nonexistent", url=""), "thucnews").read_bytes() == PAYLOAD


def test_http_resumes_a_partial_file_with_range(project, server):
    cfg = make_config(project, "", url=f"{server.url}/corpus.zip")
    part = raw_path("thucnews", cfg.dataset("thucnews")).with_suffix(".zip.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    assert download(cfg, "thucnews").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=1000-"] and not part.exists()


def test_http_retries_a_broken_transfer_and_resumes(project, server):
    server.fail_next = 2
    cfg = make_config(project, f"{server.url}/missing-dir", url=f"{server.url}/corpus.zip")
    assert download(cfg, "thucnews").read_bytes() == PAYLOAD
    # mirror URL 404s once, then the canonical URL: full, resumed, resumed
    assert server.requests[0] is None and server.requests[1] is None
    assert all(r and r.startswith("bytes=") for r in server.requests[2:4])


def test_http_retries_after_503(project, server):
    server.unavailable_next = 2
    assert download(make_config(project, "", url=f"{server.url}/corpus.zip"), "thucnews").read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_bad_mirror_copy_falls_through_to_url_and_bad_final_file_is_replaced(project, server, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "corpus.zip").write_bytes(b"not the archive")
    cfg = make_config(project, str(mirror), url=f"{server.url}/corpus.zip")
    dest = download(cfg, "thucnews")
    assert dest.read_bytes() == PAYLOAD and dest.with_suffix(".zip.rejected").read_bytes() == b"not the archive"
    dest.write_bytes(b"damaged")  # a final file that no longer matches is set aside and fetched again
    assert download(make_config(project, "", url=f"{server.url}/corpus.zip"), "thucnews").read_bytes() == PAYLOAD


def test_checksum_mismatch_keeps_no_final_file(project, server):
    server.payload = PAYLOAD[:-1] + b"x"
    cfg = make_config(project, "", url=f"{server.url}/corpus.zip")
    with pytest.raises(TextbenchError, match=rf"sha256 mismatch for corpus.zip: expected {SHA}, got [0-9a-f]{{64}}"):
        download(cfg, "thucnews")
    dest = raw_path("thucnews", cfg.dataset("thucnews"))
    assert not dest.exists() and dest.with_suffix(".zip.rejected").read_bytes() == server.payload


def test_offline_without_mirror_names_file_url_and_destination(project, monkeypatch):
    monkeypatch.setattr(download_mod, "RETRIES", 0)
    cfg = make_config(project, "", url="http://127.0.0.1:9/corpus.zip")
    with pytest.raises(TextbenchError) as e:
        download(cfg, "thucnews")
    msg = str(e.value)
    assert "corpus.zip" in msg and "http://127.0.0.1:9/corpus.zip" in msg and "data/raw/thucnews/corpus.zip" in msg
    assert "\n" not in msg


def test_local_dataset_only_validates_the_path(project):
    raw = read_params(project)
    raw["datasets"]["mine"] = {"kind": "local", "path": "corpus.csv"}
    cfg = config_from_dict(raw)
    with pytest.raises(TextbenchError, match="corpus.csv does not exist"):
        download(cfg, "mine")
    (project / "corpus.csv").write_text("text,label\na,b\n")
    assert download(cfg, "mine").name == "source.json"


def test_cli_prints_one_error_line_and_exits_2(project):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pipeline", "download", "-d", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: unknown dataset")
