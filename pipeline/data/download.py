"""`textbench download`: fetch a dataset archive into data/raw/<ds>/<filename>.

Sources are tried in order: the mirror (`TEXTBENCH_MIRROR` or the `mirror` param; a directory or a
base URL, `<mirror>/<filename>`), then the canonical `url`. HTTP downloads stream into
`<filename>.part`, resume it with a Range request, retry with exponential backoff, are checked
against `sha256` when the params give one, and are renamed onto the final name only when complete
(exactly the size the server declared; a 416 to a resume is no proof, the part starts over) and
verified. A file that fails the check is kept as `<filename>.rejected` (never under the final
name) so a user who trusts it can adopt it without fetching it again.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import requests
from tqdm import tqdm

from pipeline import paths
from pipeline.config import Config, DatasetConfig
from pipeline.errors import TextbenchError
from pipeline.io import sha256_file, write_json

CHUNK = 1 << 16
RETRIES = 4
BACKOFF_S = 1.0
TIMEOUT_S = 30.0


def raw_path(name: str, ds: DatasetConfig) -> Path:
    """Where the archive of dataset `name` lives: data/raw/<name>/<filename>."""
    return paths.raw_file(name, ds.filename)


def download(cfg: Config, name: str) -> Path:
    """Make data/raw/<name>/ hold the dataset's verified archive (or a receipt for local corpora)."""
    ds = cfg.dataset(name)
    if ds.kind == "local":
        return _record_local(name, ds)
    if not ds.filename:
        raise TextbenchError(f"{cfg.source}: datasets.{name}.filename is empty; set the archive's file name")
    dest = raw_path(name, ds)
    if dest.is_file():
        got = sha256_file(dest) if ds.sha256 else ""
        if got == ds.sha256:
            return dest
        _reject(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for source in _sources(cfg, ds):
        try:
            _fetch(source, part, checksum=bool(ds.sha256))
        except _SourceFailed as e:
            failures.append(f"{source}: {e}")
            continue
        got = sha256_file(part) if ds.sha256 else ""
        if got != ds.sha256:
            rejected = _reject(part)
            failures.append(
                f"{source}: sha256 mismatch for {ds.filename}: expected {ds.sha256}, got {got} (kept as "
                f"{rejected}; if you trust it, set datasets.{name}.sha256 to {got} and rename it to {dest.name})"
            )
            continue
        part.replace(dest)
        return dest
    raise TextbenchError(
        f"could not fetch {ds.filename} for dataset '{name}': "
        + "; ".join(failures)
        + f". Download it by hand from {ds.url or 'its source'} and put it at {dest}, "
        "or set `mirror` / TEXTBENCH_MIRROR to a directory or URL that holds it"
    )


def _record_local(name: str, ds: DatasetConfig) -> Path:
    """Local corpora are not copied: check the path and write a small receipt DVC can track."""
    for p in map(paths.project_path, ds.local_sources()):
        if not p.exists():
            raise TextbenchError(
                f"datasets.{name}: local corpus {p} does not exist; fix datasets.{name}.path/files/class_files"
            )
    receipt = paths.raw_file(name, paths.RECEIPT)
    write_json(
        receipt,
        {
            "dataset": name,
            "path": ds.path,
            "files": ds.files,  # as given: portable
            "class_files": ds.class_files,
        },
    )
    return receipt


class _SourceFailed(Exception):
    """This source cannot deliver the file; the next one is tried."""


def _sources(cfg: Config, ds: DatasetConfig) -> list[str]:
    mirror = cfg.effective_mirror
    out = []
    if mirror:
        if "://" in mirror:
            out.append(f"{mirror.rstrip('/')}/{ds.filename}")
        else:
            out.append(str(paths.project_path(mirror) / ds.filename))
    if ds.url:
        out.append(ds.url)
    return out


def _fetch(source: str, part: Path, checksum: bool) -> None:
    """Copy or download `source` completely into `part` (resuming what is already there). With no
    `checksum` to verify afterwards, a download must prove its size (see _http_once)."""
    if "://" not in source:
        if not Path(source).is_file():
            raise _SourceFailed("not in the mirror directory")
        with open(source, "rb") as fin, open(part, "wb") as fout, _bar(Path(source).stat().st_size, 0, source) as bar:
            while block := fin.read(CHUNK):
                fout.write(block)
                bar.update(len(block))
        return
    last = ""
    for attempt in range(RETRIES + 1):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        try:
            _http_once(source, part, checksum)
            return
        except (requests.RequestException, OSError) as e:
            last = f"{e.__class__.__name__}: {str(e)[:160]}"
    raise _SourceFailed(f"gave up after {RETRIES + 1} attempts ({last})")


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _http_once(url: str, part: Path, checksum: bool) -> None:
    """One GET, resuming `part`; returns only when `part` is whole, raises when worth retrying.
    Whole means: exactly the size the server declared (Content-Length of a 200, the total of a 206's
    Content-Range). A 416 proves nothing (a server may answer it to any resume), so the part is
    discarded and the next attempt starts over; so is a 206 that resumes elsewhere than asked."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={have}-"} if have else {})}  # sizes are the file's
    with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as r:
        if r.status_code == 416 and have:
            part.unlink()
            raise requests.ConnectionError(f"HTTP 416 to a resume from byte {have}; starting over")
        if 400 <= r.status_code < 500:
            raise _SourceFailed(f"HTTP {r.status_code}")
        r.raise_for_status()
        start, size = _extent(r, have, part)
        if size is None and not checksum and "chunked" not in r.headers.get("Transfer-Encoding", ""):
            raise _SourceFailed(
                "the server declares no size (no Content-Length), so a cut transfer cannot be told from a "
                "whole one; set the dataset's sha256 to accept it"
            )
        with open(part, "ab" if start else "wb") as f, _bar(size, start, url) as bar:
            for block in r.iter_content(CHUNK):
                f.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if size is not None and got != size:
        if got > size:
            part.unlink()
        raise requests.ConnectionError(f"got {got} of the {size} bytes the server declared")


def _extent(r: requests.Response, have: int, part: Path) -> tuple[int, int | None]:
    """(offset the body starts at, the whole file's declared size or None) of a GET's response."""
    length = r.headers.get("Content-Length")
    if r.status_code != 206:  # the server ignored the Range (or none was sent): start over
        return 0, int(length) if length is not None else None
    m = _CONTENT_RANGE.fullmatch(r.headers.get("Content-Range", "").strip())
    if not m or int(m[1]) != have:
        part.unlink()
        raise requests.ConnectionError(
            f"a 206 answer with Content-Range {r.headers.get('Content-Range')!r} to a resume from byte {have}"
        )
    return have, int(m[3]) if m[3] != "*" else None


def _bar(total: int | None, initial: int, source: str) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=Path(source).name, leave=False)


def _reject(path: Path) -> Path:
    """Move a file whose checksum does not match aside, so it can never pass as the archive."""
    rejected = path.with_name(path.name.removesuffix(".part") + ".rejected")
    shutil.move(path, rejected)
    return rejected
