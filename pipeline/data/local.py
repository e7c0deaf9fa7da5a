"""Local corpora, from exactly one of (config checks which):

- `path`: one file — a table (CSV/TSV/JSONL/Parquet: `text_column`, `label_column`, an optional `id`
  column, an optional `split_column` holding train/dev/test) or fastText lines (`__label__<name> text`,
  .ft/.txt) — or a folder-per-class tree `<path>/<label>/*.txt`, one document per file;
- `files: {train, dev, test}`: one such file per split (dev optional: carved from train downstream);
- `class_files: {label: file}`: one document per line, one file per class (MR, SST, Subj style).

Text files are decoded with `encoding`; one that is not valid `encoding` is an error naming the file,
unless `encoding_fallback` is set: then the whole file is decoded with it and card.json lists it.
Ids: the `id` column, else `<split or file stem>-<row or line>`; `<label>/<stem>` (tree);
`<label>/<line>` (class files). Without a split, stratified `ratios` apply downstream.

`label_mode: multi`: a table's label column holds a list of labels (JSONL/Parquet) or, with
`label_delimiter`, a string of them (e.g. `earn|acq` in CSV/TSV); a fastText line may carry several
`__label__` tokens; folder trees and class files give one label per document.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import paths
from pipeline.config import DatasetConfig
from pipeline.data.corpus import Corpus, Doc
from pipeline.errors import TextbenchError
from pipeline.io import TABLE_FORMATS, json_objects

FORMATS = {**TABLE_FORMATS, ".ft": "fasttext", ".txt": "fasttext"}
SPLIT_NAMES = ("train", "dev", "test")
LABEL_PREFIX = "__label__"


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
        folder = path.is_dir() and ds.format in ("auto", "folder")
        docs = _read_folder(src, path) if folder else _read_file(src, path, None)
    return Corpus(docs=docs, stats=src.stats()), src.files


class _Files:
    """Every corpus file is read through here: it must exist, is decoded once, and is recorded."""

    def __init__(self, ds: DatasetConfig, key: str):
        self.ds, self.key = ds, key
        self.files: list[Path] = []
        self.fallback: list[str] = []
        self.codec = "utf-8-sig" if codecs.lookup(ds.encoding).name == "utf-8" else ds.encoding  # drops a BOM

    def data(self, path: Path) -> bytes:
        if not path.is_file():
            raise TextbenchError(
                f"local corpus file {path} does not exist or is not a file; fix {self.key}.path/files/class_files"
            )
        self.files.append(path)
        return path.read_bytes()

    def text(self, path: Path, data: bytes, name: str) -> str:
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
        }


def _read_folder(src: _Files, root: Path) -> list[Doc]:
    files = sorted(p for p in root.glob("*/*.txt") if p.is_file())
    if not files:
        raise TextbenchError(f"{root}: no <label>/*.txt files found (folder-per-class layout expected)")
    return [
        Doc(f"{p.parent.name}/{p.stem}", src.text(p, src.data(p), f"{p.parent.name}/{p.name}"), p.parent.name)
        for p in files
    ]


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
    text = None if fmt == "parquet" else src.text(path, data, path.name)
    try:
        if fmt == "parquet":
            table = pq.read_table(pa.BufferReader(data))
        elif fmt == "jsonl":
            table = _jsonl(path, text)
        else:
            frame = pd.read_csv(io.StringIO(text), sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
            if not isinstance(frame.index, pd.RangeIndex):  # pandas took the extra leading fields as an index
                raise TextbenchError(
                    f"{path}: rows have more fields than the header; quote fields that hold the separator"
                )
            table = pa.Table.from_pandas(frame, preserve_index=False)
        return _table_docs(src, path, table, split)
    except (pa.ArrowException, ValueError) as e:  # pandas ParserError and UnicodeDecodeError are ValueErrors
        raise TextbenchError(f"{path}: cannot be read as {fmt} ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _jsonl(path: Path, text: str) -> pa.Table:
    """One JSON object a line, parsed here: pyarrow's JSON reader crashes the process on a `null` line."""
    rows = list(json_objects(path, text.split("\n")))
    columns = {}
    for k in dict.fromkeys(k for row in rows for k in row):
        try:
            columns[k] = pa.array([row.get(k) for row in rows])
        except (pa.ArrowException, OverflowError) as e:
            raise TextbenchError(f"{path}: key '{k}' holds values of mixed JSON types ({_first_line(e)})") from None
    return pa.table(columns)


def _table_docs(src: _Files, path: Path, table: pa.Table, split: str | None) -> list[Doc]:
    ds = src.ds
    cols = [ds.text_column, ds.label_column] + ([ds.split_column] if ds.split_column and split is None else [])
    if missing := [c for c in cols if c not in table.column_names]:
        raise TextbenchError(
            f"{path}: column(s) {missing} not found (columns: {table.column_names}); "
            f"set {src.key}.text_column/label_column/split_column"
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
            None if v is None else v if c == ds.label_column and list_labels else str(v)
            for v in table.column(c).to_pylist()
        ]
        for c in cols
    }
    ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else None
    docs = []
    for i in range(table.num_rows):
        row_split = split or (get[ds.split_column][i] if ds.split_column else None)
        if row_split is not None and row_split not in SPLIT_NAMES:
            raise TextbenchError(f"{path}: row {i + 1}: split '{row_split}' is not one of train/dev/test")
        labels = _labels(ds, get[ds.label_column][i])
        if not labels:
            raise TextbenchError(f"{path}: row {i + 1}: empty label in column '{ds.label_column}'")
        doc_id = ids[i] if ids else f"{split or path.stem}-{i}"
        docs.append(Doc.multi(doc_id, get[ds.text_column][i] or "", labels, row_split))
    return docs


def _labels(ds: DatasetConfig, value: str | list | None) -> list[str]:
    """The stripped, non-empty labels of one cell: itself (single), its items, or its delimited parts."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(ds.label_delimiter) if ds.label_mode == "multi" and ds.label_delimiter else [value]
    return [str(lb).strip() for lb in value if lb is not None and str(lb).strip()]


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
        labels = [t.removeprefix(LABEL_PREFIX) for t in tokens if t.startswith(LABEL_PREFIX)]
        multi = src.ds.label_mode == "multi"
        if not labels or not all(labels) or (len(labels) > 1 and not multi):
            what = (
                f"no {LABEL_PREFIX}<name> token"
                if not labels
                else f"an empty {LABEL_PREFIX}"
                if not all(labels)
                else f"{len(labels)} labels ({', '.join(labels)}); keep one per line or set label_mode: multi"
            )
            raise TextbenchError(f"{path}: line {n}: {what} (fastText format: `{LABEL_PREFIX}<name> text`)")
        text = " ".join(t for t in tokens if not t.startswith(LABEL_PREFIX))
        docs.append(Doc.multi(f"{split or path.stem}-{n}", text, labels, split))
    return docs
