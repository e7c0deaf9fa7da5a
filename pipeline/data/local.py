"""Local corpora: a CSV/TSV/JSONL/Parquet file, one such file per split, or `<root>/<label>/*.txt`.

Tables need `text_column` and `label_column`; an `id` column is used when present, otherwise ids
are `<split or file stem>-<row number>`. The split comes from `split_column` (values train/dev/test),
from `files: {train: .., dev: .., test: ..}`, or from nowhere (stratified `ratios` downstream).
"""

from __future__ import annotations

from pathlib import Path
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipeline.config import DatasetConfig
from pipeline.data.corpus import Corpus, Doc
from pipeline.data.download import project_path
from pipeline.errors import TextbenchError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
SPLIT_NAMES = ("train", "dev", "test")


def read(ds: DatasetConfig, name: str) -> tuple[Corpus, list[Path]]:
    """All documents of local dataset `name` and the files they came from (for card.json hashes)."""
    key = f"datasets.{name}"
    if ds.files:
        if unknown := set(ds.files) - set(SPLIT_NAMES):
            raise TextbenchError(f"{key}.files: unknown split(s) {sorted(unknown)}; use train/dev/test")
        if "train" not in ds.files or "test" not in ds.files:
            raise TextbenchError(f"{key}.files needs at least `train` and `test` (dev is carved from train)")
        docs, files = [], []
        for split in SPLIT_NAMES:
            if split in ds.files:
                path = project_path(ds.files[split])
                docs += _read_table(path, ds, split, key)
                files.append(path)
        return Corpus(docs=docs), files
    path = project_path(ds.path)
    if not path.exists():
        raise TextbenchError(f"local corpus {path} does not exist; fix {key}.path")
    if path.is_dir() and ds.format in ("auto", "folder"):
        docs, files = _read_folder(path)
        return Corpus(docs=docs), files
    return Corpus(docs=_read_table(path, ds, None, key)), [path]


def _read_folder(root: Path) -> tuple[list[Doc], list[Path]]:
    files = sorted(p for p in root.glob("*/*.txt") if p.is_file())
    if not files:
        raise TextbenchError(f"{root}: no <label>/*.txt files found (folder-per-class layout expected)")
    docs = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise TextbenchError(f"{p}: not valid UTF-8 (byte {e.start}); re-save it as UTF-8") from None
        docs.append(Doc(f"{p.parent.name}/{p.stem}", text, p.parent.name))
    return docs, files


def _read_table(path: Path, ds: DatasetConfig, split: str | None, key: str) -> list[Doc]:
    table = _load(path, ds.format, key)
    cols = [ds.text_column, ds.label_column] + ([ds.split_column] if ds.split_column and split is None else [])
    if missing := [c for c in cols if c not in table.column_names]:
        raise TextbenchError(
            f"{path}: column(s) {missing} not found (columns: {table.column_names}); "
            f"set {key}.text_column/label_column/split_column"
        )
    get = {c: [None if v is None else str(v) for v in table.column(c).to_pylist()] for c in cols}
    ids = [str(v) for v in table.column("id").to_pylist()] if "id" in table.column_names else None
    docs = []
    for i in range(table.num_rows):
        row_split = split or (get[ds.split_column][i] if ds.split_column else None)
        if row_split is not None and row_split not in SPLIT_NAMES:
            raise TextbenchError(f"{path}: row {i + 1}: split '{row_split}' is not one of train/dev/test")
        label = get[ds.label_column][i]
        if label is None or not label.strip():
            raise TextbenchError(f"{path}: row {i + 1}: empty label in column '{ds.label_column}'")
        doc_id = ids[i] if ids else f"{split or path.stem}-{i}"
        docs.append(Doc(doc_id, get[ds.text_column][i] or "", label.strip(), row_split))
    return docs


def _load(path: Path, fmt: str, key: str) -> pa.Table:
    if not path.is_file():
        raise TextbenchError(f"local corpus file {path} does not exist; fix {key}.path/files")
    fmt = FORMATS.get(path.suffix.lower(), "") if fmt == "auto" else fmt
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False)
            return pa.Table.from_pandas(frame, preserve_index=False)
        if fmt == "jsonl":
            return pajson.read_json(path)
        if fmt == "parquet":
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError, ValueError, pd.errors.ParserError) as e:
        raise TextbenchError(f"{path}: cannot be read as {fmt} ({str(e).splitlines()[0]})") from None
    raise TextbenchError(f"{path}: unknown format; set {key}.format to csv, tsv, jsonl or parquet")
