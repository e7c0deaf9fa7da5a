"""`textbench download`: fetch a dataset archive into data/raw/<ds>/<filename>.

Sources are tried in order: the mirror (`TEXTBENCH_MIRROR` or the `mirror` param; a directory or a
base URL, `<mirror>/<filename>`), then the canonical `url`. HTTP downloads stream into
`<filename>.part`, resume it with a Range request, retry with exponential backoff, are checked
against `sha256` when the params give one, and are renamed onto the final name only when complete
and verified. A file that fails the check is kept as `<filename>.rejected` (never under the final
name) so a user who trusts it can adopt it without fetching it again.
"""

from __future__ import annotations

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
            _fetch(source, part)
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
    receipt = paths.raw_file(name, "source.json")
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


def _fetch(source: str, part: Path) -> None:
    """Copy or download `source` completely into `part` (resuming what is already there)."""
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
            if _http_once(source, part):
                return
        except (requests.RequestException, OSError) as e:
            last = f"{e.__class__.__name__}: {str(e)[:160]}"
    raise _SourceFailed(f"gave up after {RETRIES + 1} attempts ({last})")


def _http_once(url: str, part: Path) -> bool:
    """One GET, resuming `part`; True when the file is complete, an exception when worth retrying."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as r:
        if r.status_code == 416 and have:  # nothing left to send: the part is already whole
            return True
        if 400 <= r.status_code < 500:
            raise _SourceFailed(f"HTTP {r.status_code}")
        r.raise_for_status()
        if r.status_code != 206:
            have = 0  # server ignored the Range: start over
        size = int(r.headers.get("Content-Length", 0)) + have or None
        with open(part, "ab" if have else "wb") as f, _bar(size, have, url) as bar:
            for block in r.iter_content(CHUNK):
                f.write(block)
                bar.update(len(block))
    if size is not None and part.stat().st_size < size:
        raise requests.ConnectionError(f"connection closed at {part.stat().st_size} of {size} bytes")
    return True


def _bar(total: int | None, initial: int, source: str) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=Path(source).name, leave=False)


def _reject(path: Path) -> Path:
    """Move a file whose checksum does not match aside, so it can never pass as the archive."""
    rejected = path.with_name(path.name.removesuffix(".part") + ".rejected")
    shutil.move(path, rejected)
    return rejected
