"""Atomic writes, hashing and fingerprints shared by every stage.

Every stage writes to a temporary sibling and renames at the end, so an interrupted run never
leaves a half-written output that a later stage (or DVC) could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import TextbenchError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp file path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _naming(path):
            yield tmp
            tmp.chmod(0o644)  # mkstemp makes 0600; outputs are ordinary shared files
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """An OSError naming no file (a full disk under pyarrow's or a file object's write), only the temp
    file beside `path`, or a file inside that temp dir gets `path` itself, the output being written: the
    CLI's line for environment faults names what the user asked for."""
    try:
        yield
    except OSError as e:
        if e.filename is None or any(part.startswith(f".{path.name}.") for part in Path(e.filename).parts):
            e.filename = str(path)
        raise


@contextlib.contextmanager
def locked(path: Path, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` for the block; the kernel drops it when the process dies,
    however it dies. The file records the holder's pid. With `busy`, a lock held elsewhere is a
    TextbenchError (`busy` and the holder's pid) instead of a wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy is not None else 0))
        except BlockingIOError:
            fh.seek(0)
            raise TextbenchError(f"{busy} (pid {fh.read().strip() or '?'} holds {path})") from None
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a fresh temp directory beside `path`; on success it replaces `path` as a whole, except the
    entries named in `keep`, which move from the old `path` into the new one (e.g. extra seeds' `seeds/`).

    The swap is two renames (`path` → `.<name>.old`, temp → `path`). A run killed between them is
    repaired by the next `atomic_dir` of the same path, which first restores `.<name>.old` and sweeps
    the temp dirs killed runs left (one writer per path at a time: DVC's stage lock, the trainer's job lock);
    a run killed after the swap but before `keep` moved over has it moved then.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.with_name(f".{path.name}.old")
    _recover(path, old, keep)
    with _naming(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _naming(path):
            yield tmp
            tmp.chmod(0o755)  # mkdtemp makes 0700; outputs are ordinary shared directories
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
        _carry(old, path, keep)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _recover(path: Path, old: Path, keep: tuple[str, ...]) -> None:
    """Undo what a killed `atomic_dir(path)` left: restore `.<name>.old` if `path` is missing, else
    carry its `keep` entries over and drop it; delete `.<name>.XXXXXXXX.tmp` dirs (mkdtemp's 8
    random characters)."""
    if old.is_dir() and not path.exists():
        os.replace(old, path)
    _carry(old, path, keep)
    shutil.rmtree(old, ignore_errors=True)
    leftover = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    for stale in path.parent.iterdir():
        if leftover.fullmatch(stale.name) and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _carry(old: Path, new: Path, keep: tuple[str, ...]) -> None:
    """Move each `keep` entry of `old` into `new`, unless `new` has its own."""
    for name in keep:
        if (old / name).exists() and new.is_dir() and not (new / name).exists():
            os.replace(old / name, new / name)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as sorted, indented JSON atomically (stable bytes for DVC and diffs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(canonical_json(obj, indent=2) + "\n", encoding="utf-8")


def canonical_json(obj: Any, indent: int | None = None) -> str:
    """JSON with sorted keys and no NaN, so equal objects always give equal text."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=indent, allow_nan=False, default=str)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    """Short stable hash of JSON-able parts (params, input hashes, code version)."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:16]


# Table files by suffix: what both a local corpus (training input) and `predict` (its input) read.
TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def json_objects(path: str | os.PathLike, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON object of each non-blank line (JSONL), or an error naming the file and line (a `\\udXXX`
    escape of a lone surrogate included: see `check_text`)."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TextbenchError(f"{path}: line {n}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise TextbenchError(f"{path}: line {n}: not a JSON object ({json.dumps(row)[:40]})")
        if "\\u" in line:  # only an escape can smuggle a surrogate into a line decoded strictly
            for key, value in row.items():
                if isinstance(value, str):
                    check_text(value, f"{path}: line {n}: '{key}'")
        yield row


# --- bytes in, text out: the one policy for user text (files, stdin, request bodies) -------------------
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_utf8(data: bytes, where: str, line: int | None = None) -> str:
    """`data` as UTF-8, strictly (no surrogate escapes: nothing undecodable reaches Arrow, JSON or a
    tokenizer), or one TextbenchError naming `where`, the byte, its offset and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        lines = data.count(b"\n", 0, e.start) + 1
        at = f"at offset {e.start}, line {lines}" if line is None else f"at position {e.start} of line {line}"
        raise TextbenchError(
            f"{where}: not UTF-8 (byte 0x{data[e.start]:02x} {at}); convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8`"
        ) from None


def check_text(text: str, where: str) -> str:
    """`text` unless it holds a lone surrogate (a JSON `\\ud800` escape, or bytes smuggled in by Python's
    surrogateescape): that is no text any writer or tokenizer accepts, so it is one TextbenchError."""
    if not text.isascii() and (m := _SURROGATE.search(text)):
        raise TextbenchError(f"{where}: not text (a lone surrogate U+{ord(m.group()):04X} at character {m.start()})")
    return text
