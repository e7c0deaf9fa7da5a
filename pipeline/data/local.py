"""Local corpora, from exactly one of (config checks which):

- `path`: one file — a table (CSV/TSV/JSONL/Parquet: `text_column` (one column, or several joined in
  order), `label_column`, an optional `id` column, an optional `split_column` holding train/dev/test;
  a headerless CSV/TSV names its columns with `columns: [...]`) or fastText lines
  (`__label__<name> text`, .ft/.txt) — or a document tree, a folder or an archive read in place
  (.tar.gz/.tgz/.zip): `<label>/*.txt` or `<split>/<label>/*.txt` (aclImdb as it ships),
  one document per file, under the root folder holding the most documents (other files are counted
  as ignored); `classes:` chooses the class folders; a folder of unlabelled documents (`unsup`, as in
  aclImdb) is an error asking for `classes:`;
- `files: {train, dev, test}`: one such file per split (dev optional: carved from train downstream);
- `class_files: {label: file}`: one document per line, one file per class (MR, SST, Subj style).

Text files are decoded with `encoding`; one that is not valid `encoding` is an error naming the file,
unless `encoding_fallback` is set: then the whole file is decoded with it and card.json lists it.
Ids: the `id` column, else `<split or file stem>-<row or line>`; `[<split>/]<label>/<stem>` (tree);
`<label>/<line>` (class files).
Without a split, stratified `ratios` apply downstream.

Missing values (`is_missing`: None, float NaN, and empty/NaN/nan/NA/N/A/null/None cells, any case)
are never classes: a missing label is an error or, with `missing_labels: drop`, a dropped document
(counted in card.json's reader stats, one line printed); a missing text cell is empty text.
`classes:` keeps only those classes (an error names one that the corpus lacks).

`label_mode: multi`: a table's label column holds a list of labels (JSONL/Parquet) or, with
`label_delimiter`, a string of them (e.g. `earn|acq` in CSV/TSV); a fastText line may carry several
`__label__` tokens; folder trees and class files give one label per document.
"""

from __future__ import annotations

import codecs
import io
import math
import re
import sys
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import paths
from pipeline.config import DatasetConfig
from pipeline.data.corpus import Corpus, Doc
from pipeline.data.members import Layout, checked, read_capped
from pipeline.errors import TextbenchError
from pipeline.io import TABLE_FORMATS, json_objects

FORMATS = {**TABLE_FORMATS, ".ft": "fasttext", ".txt": "fasttext"}
SPLIT_NAMES = ("train", "dev", "test")
LABEL_PREFIX = "__label__"
ARCHIVES = (".tar.gz", ".tgz", ".zip")
MISSING = {"", "nan", "na", "n/a", "null", "none"}  # compared stripped and lower-cased
UNLABELLED = {"unsup", "unlabeled", "unlabelled"}  # folders of unlabelled documents (aclImdb's unsup/)
_NAMES_ONLY = Layout(document=re.compile(r"(?!)"), valid=re.compile(r"(?P<root>)"), expected="")  # names checked only


def is_missing(value: Any) -> bool:
    """The one missing-value rule of every local format: None, float NaN, or a blank or
    NaN/nan/NA/N/A/null/None cell (any case)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING


def read(ds: DatasetConfig, name: str) -> tuple[Corpus, list[Path]]:
    """All documents of local dataset `name` and the files they came from (for card.json hashes)."""
    src = _Files(ds, f"datasets.{name}")
    if ds.class_files:
        docs = [d for label, f in ds.class_files.items() for d in _read_class_file(src, paths.project_path(f), label)]
    elif ds.files:
        docs = [d for s in SPLIT_NAMES if s in ds.files for d in _read_file(src, paths.project_path(ds.files[s]), s)]
    else:
        path = paths.project_path(ds.path)
        if not path.exists():
            raise TextbenchError(f"local corpus {path} does not exist; fix {src.key}.path")
        tree = (path.is_dir() or path.name.lower().endswith(ARCHIVES)) and ds.format in ("auto", "folder")
        docs = _read_tree(src, path) if tree else _read_file(src, path, None)
    if ds.classes:
        docs = _keep_classes(src, docs)
    if src.missing:
        print(
            f"{src.key}: dropped {src.missing} document(s) with a missing label (missing_labels: drop)", file=sys.stderr
        )
    return Corpus(docs=docs, stats=src.stats()), src.files


def _keep_classes(src: _Files, docs: list[Doc]) -> list[Doc]:
    """Only the documents of `classes` (a multi-label document keeps those of its labels)."""
    found = {lb for d in docs for lb in d.labels}
    if absent := [c for c in src.ds.classes if c not in found]:
        raise TextbenchError(
            f"{src.key}.classes: {absent} not found in {[str(paths.project_path(f)) for f in src.ds.local_sources()]} "
            f"(classes found: {sorted(found)})"
        )
    kept = [d for d in docs if d.keep_labels(set(src.ds.classes))]
    src.outside_classes = len(docs) - len(kept)
    return kept


class _Files:
    """Every corpus file is read through here: it must exist, is decoded once, and is recorded."""

    def __init__(self, ds: DatasetConfig, key: str):
        self.ds, self.key = ds, key
        self.files: list[Path] = []
        self.fallback: list[str] = []
        self.missing = 0  # documents dropped for a missing label (missing_labels: drop)
        self.outside_classes = 0
        self.ignored = 0  # files of a tree that are not documents
        self.codec = "utf-8-sig" if codecs.lookup(ds.encoding).name == "utf-8" else ds.encoding  # drops a BOM

    def data(self, path: Path) -> bytes:
        if not path.is_file():
            raise TextbenchError(
                f"local corpus file {path} does not exist or is not a file; fix {self.key}.path/files/class_files"
            )
        self.files.append(path)
        return path.read_bytes()

    def text(self, path: Path | str, data: bytes, name: str) -> str:
        """`data` decoded with `encoding`, else with `encoding_fallback` (recorded as `name`), else an error."""
        try:
            return data.decode(self.codec)
        except UnicodeDecodeError as e:
            where = f"byte 0x{data[e.start : e.start + 1].hex()} at offset {e.start}"
        fallback = self.ds.encoding_fallback
        if not fallback:
            raise TextbenchError(
                f"{path}: not valid {self.ds.encoding} ({where}); set {self.key}.encoding to the "
                f"corpus's encoding (e.g. latin-1) or {self.key}.encoding_fallback for odd files"
            )
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            raise TextbenchError(
                f"{path}: neither {self.ds.encoding} ({where}) nor {fallback}; set "
                f"{self.key}.encoding/encoding_fallback to the file's encoding"
            ) from None
        self.fallback.append(name)
        return text

    def stats(self) -> dict:
        return {
            "files_read": len(self.files),
            "read_with_fallback": len(self.fallback),
            "fallback_files": self.fallback,
            "missing_labels_dropped": self.missing,
            "docs_outside_classes": self.outside_classes,
            "tree_files_ignored": self.ignored,
        }

    def missing_label(self, where: str, value: Any, column: str = "") -> None:
        """A document without a label: counted when `missing_labels: drop`, else the error."""
        if self.ds.missing_labels == "drop":
            self.missing += 1
            return
        raise TextbenchError(
            f"{where}: missing label {value!r}{f' in column {column!r}' if column else ''} (empty, NaN, NA, "
            f"null, None... are never classes); fill it in, or set {self.key}.missing_labels: drop"
        )


def _read_tree(src: _Files, path: Path) -> list[Doc]:
    """A folder or archive of `[<split>/]<label>/<file>.txt` documents (see the module doc)."""
    entries = _tree_entries(src, path)
    splits = Counter(p[:-3] for p in entries if len(p) >= 3 and p[-3] in SPLIT_NAMES)
    roots = splits or Counter(p[:-2] for p in entries if len(p) >= 2)
    if not roots:
        raise TextbenchError(
            f"{path}: no <label>/*.txt files (nor <split>/<label>/*.txt) found; fix {src.key}.path "
            "(folder-per-class layout expected, optionally inside train/dev/test folders)"
        )
    root = min(roots, key=lambda r: (-roots[r], len(r), r))  # the root holding the most documents
    depth = len(root) + (3 if splits else 2)
    docs = [p for p in entries if len(p) == depth and p[: len(root)] == root and (not splits or p[-3] in SPLIT_NAMES)]
    src.ignored = len(entries) - len(docs)
    if not src.ds.classes and (
        unlabelled := sorted({"/".join(p[len(root) : -1]) for p in docs if p[-2].lower() in UNLABELLED})
    ):
        labels = sorted({p[-2] for p in docs} - {u.split("/")[-1] for u in unlabelled})
        raise TextbenchError(
            f"{path}: folder(s) {unlabelled} hold unlabelled documents, not a class; set {src.key}.classes "
            f"to the class folders to read (e.g. {labels})"
        )
    return [
        Doc(
            "/".join(p[len(root) : -1] + (p[-1].removesuffix(".txt"),)),
            src.text(f"{path}: {'/'.join(p)}" if path.is_file() else path.joinpath(*p), entries[p], "/".join(p)),
            p[-2],
            p[-3] if splits else None,
        )
        for p in sorted(docs)
    ]


def _tree_entries(src: _Files, path: Path) -> dict[tuple[str, ...], bytes]:
    """Every `.txt` file of a folder or archive: path parts -> bytes (archive member names checked)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        return {p.relative_to(path).parts: src.data(p) for p in files}
    data = src.data(path)
    try:
        return dict(_archive_members(path, data))
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        zlib.error,
        RuntimeError,
        NotImplementedError,
    ) as e:
        # RuntimeError: an encrypted zip member; NotImplementedError: a compression zipfile cannot read
        raise TextbenchError(f"{path}: cannot be read as an archive ({_first_line(e)}); fix {src.key}.path") from None


def _archive_members(path: Path, data: bytes) -> Iterator[tuple[tuple[str, ...], bytes]]:
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = ((i.filename, i) for i in zf.infolist())
            for name, info in checked(infos, str(path), _NAMES_ONLY):
                if not info.is_dir() and name.endswith(".txt"):
                    with zf.open(info) as stream:
                        yield tuple(name.split("/")), read_capped(stream, str(path), name)
        return
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for name, member in checked(((m.name, m) for m in tar), str(path), _NAMES_ONLY):
            if member.isfile() and name.endswith(".txt"):
                yield tuple(name.split("/")), read_capped(tar.extractfile(member), str(path), name)


def _lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) of each non-blank line; only \\n ends a line."""
    return [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def _read_class_file(src: _Files, path: Path, label: str) -> list[Doc]:
    return [Doc(f"{label}/{n}", line, label) for n, line in _lines(src.text(path, src.data(path), path.name))]


def _read_file(src: _Files, path: Path, split: str | None) -> list[Doc]:
    data = src.data(path)
    fmt = FORMATS.get(path.suffix.lower(), "") if src.ds.format == "auto" else src.ds.format
    if fmt == "fasttext":
        return _read_fasttext(src, path, data, split)
    if fmt not in ("csv", "tsv", "jsonl", "parquet"):
        raise TextbenchError(f"{path}: unknown format; set {src.key}.format to csv, tsv, jsonl, parquet or fasttext")
    if src.ds.columns and fmt not in ("csv", "tsv"):
        raise TextbenchError(f"{src.key}.columns: names the fields of a headerless CSV/TSV, but {path} is {fmt}")
    text = None if fmt == "parquet" else src.text(path, data, path.name)
    try:
        if fmt == "parquet":
            table = pq.read_table(pa.BufferReader(data))
        elif fmt == "jsonl":
            table = _jsonl(path, text)
        else:
            frame = _csv(src, path, text, "\t" if fmt == "tsv" else ",")
            table = pa.Table.from_pandas(frame, preserve_index=False)
        return _table_docs(src, path, table, split)
    except (pa.ArrowException, ValueError) as e:  # pandas ParserError and UnicodeDecodeError are ValueErrors
        raise TextbenchError(f"{path}: cannot be read as {fmt} ({_first_line(e)})") from None


def _csv(src: _Files, path: Path, text: str, sep: str) -> pd.DataFrame:
    """All cells as strings; the header row, or none with `columns` (each row then has exactly those fields)."""
    names = src.ds.columns or None
    frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, header=None if names else 0)
    if names:
        if frame.shape[1] != len(names):
            raise TextbenchError(
                f"{path}: rows have {frame.shape[1]} fields but {src.key}.columns names {len(names)} "
                f"({names}); name every field of the file, in order"
            )
        frame.columns = names
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra leading fields as an index
        raise TextbenchError(
            f"{path}: rows have more fields than the {'columns' if names else 'header'}; quote fields that hold "
            "the separator"
        )
    return frame


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _jsonl(path: Path, text: str) -> pa.Table:
    """One JSON object a line, parsed here: pyarrow's JSON reader crashes the process on a `null` line.
    A NaN (Python's json reads one) is a null, so a column of strings and NaNs stays a string column."""
    rows = list(json_objects(path, text.split("\n")))
    columns = {}
    for k in dict.fromkeys(k for row in rows for k in row):
        try:
            columns[k] = pa.array(
                [None if isinstance(v, float) and math.isnan(v) else v for v in (r.get(k) for r in rows)]
            )
        except (pa.ArrowException, OverflowError) as e:
            raise TextbenchError(f"{path}: key '{k}' holds values of mixed JSON types ({_first_line(e)})") from None
    return pa.table(columns)


def _table_docs(src: _Files, path: Path, table: pa.Table, split: str | None) -> list[Doc]:
    ds = src.ds
    texts = ds.text_columns()
    cols = [*texts, ds.label_column] + ([ds.split_column] if ds.split_column and split is None else [])
    if missing := [c for c in cols if c not in table.column_names]:
        raise TextbenchError(
            f"{path}: column(s) {missing} not found (columns: {table.column_names}); "
            f"set {src.key}.text_column/label_column/split_column{'/columns' if ds.columns else ''}"
        )
    list_labels = ds.label_mode == "multi" and not ds.label_delimiter
    for c in cols:
        t = table.schema.field(c).type
        if c == ds.label_column and list_labels:
            if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or pa.types.is_nested(t.value_type):
                raise TextbenchError(
                    f"{path}: column '{c}' holds {t}, not a list of labels; label_mode multi "
                    f"needs a list column, or set {src.key}.label_delimiter (e.g. '|') for text"
                )
        elif pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            raise TextbenchError(f"{path}: column '{c}' holds {t}, not text; set {src.key}.text_column/label_column")
    get = {
        c: [
            None if is_missing(v) else v if c == ds.label_column and list_labels else str(v)
            for v in table.column(c).to_pylist()
        ]
        for c in cols
    }
    for c in texts:
        _check_text(src, path, c, table.schema.field(c).type, get[c])
    ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else None
    docs = []
    for i in range(table.num_rows):
        row_split = split or (get[ds.split_column][i] if ds.split_column else None)
        if row_split is not None and row_split not in SPLIT_NAMES:
            raise TextbenchError(f"{path}: row {i + 1}: split '{row_split}' is not one of train/dev/test")
        labels = _labels(ds, get[ds.label_column][i])
        if not labels:
            src.missing_label(f"{path}: row {i + 1}", table.column(ds.label_column)[i].as_py(), ds.label_column)
            continue
        doc_id = ids[i] if ids else f"{split or path.stem}-{i}"
        text = " ".join(get[c][i] for c in texts if get[c][i] is not None)
        docs.append(Doc.multi(doc_id, text, labels, row_split))
    return docs


def _check_text(src: _Files, path: Path, column: str, kind: pa.DataType, values: list[str | None]) -> None:
    """A text column holds text: strings (or nulls), not only numbers or booleans."""
    present = [v for v in values if v is not None]
    typed = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
    if typed and not (present and all(_is_number(v) for v in present)):
        return
    what = kind if not typed else "only numbers"
    raise TextbenchError(
        f"{path}: text column '{column}' holds {what}, not text; set {src.key}.text_column to the column of documents"
    )


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _labels(ds: DatasetConfig, value: str | list | None) -> list[str]:
    """The stripped, non-missing labels of one cell: itself (single), its items, or its delimited parts."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(ds.label_delimiter) if ds.label_mode == "multi" and ds.label_delimiter else [value]
    return [str(lb).strip() for lb in value if not is_missing(lb)]


def _read_fasttext(src: _Files, path: Path, data: bytes, split: str | None) -> list[Doc]:
    """`__label__<name> text` lines; as in fastText, every token with the prefix is a label."""
    if src.ds.split_column:
        raise TextbenchError(
            f"{src.key}.split_column: fastText lines have no columns; give the splits as "
            f"`files: {{train, dev, test}}` or leave split_column empty"
        )
    docs = []
    for n, line in _lines(src.text(path, data, path.name)):
        tokens = line.split()
        given = [t.removeprefix(LABEL_PREFIX) for t in tokens if t.startswith(LABEL_PREFIX)]
        labels = [lb for lb in given if not is_missing(lb)]
        multi = src.ds.label_mode == "multi"
        if given and not labels:
            src.missing_label(f"{path}: line {n}", given[0])
            continue
        if not given or (len(labels) > 1 and not multi):
            what = (
                f"no {LABEL_PREFIX}<name> token"
                if not given
                else f"{len(labels)} labels ({', '.join(labels)}); keep one per line or set label_mode: multi"
            )
            raise TextbenchError(f"{path}: line {n}: {what} (fastText format: `{LABEL_PREFIX}<name> text`)")
        text = " ".join(t for t in tokens if not t.startswith(LABEL_PREFIX))
        docs.append(Doc.multi(f"{split or path.stem}-{n}", text, labels, split))
    return docs
