"""Streaming table readers and writers for batch prediction: CSV, TSV, JSONL, Parquet, stdin lines.

Readers yield `pyarrow.Table` chunks of at most `chunk_rows` rows, so a million-row file is never
held in memory. CSV/TSV values are read as strings (they round-trip unchanged). Writers append
chunk by chunk to a temporary file that replaces the target only when everything succeeded.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.errors import TextbenchError
from pipeline.io import TABLE_FORMATS, atomic_path, decode_utf8, json_objects


def table_format(path: str | Path) -> str:
    """The format a file name implies, or an error listing the supported suffixes."""
    fmt = TABLE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise TextbenchError(f"{path}: unknown file type; use one of {sorted(TABLE_FORMATS)} (or '-' for stdin lines)")
    return fmt


def count_rows(path: str | Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata), else None."""
    if path != "-" and table_format(path) == "parquet" and Path(path).is_file():
        return _parquet_file(Path(path)).metadata.num_rows
    return None


def read_chunks(path: str | Path, chunk_rows: int, text_column: str = "text") -> Iterator[pa.Table]:
    """Yield the input's rows in order, `chunk_rows` at a time; `-` reads stdin, one text per line."""
    if path == "-":
        yield from _lines(sys.stdin.buffer, chunk_rows, text_column)
        return
    path = Path(path)
    if not path.is_file():
        raise TextbenchError(f"{path}: input file not found")
    fmt = table_format(path)
    try:
        chunks = {"csv": _delimited, "tsv": _delimited, "jsonl": _jsonl, "parquet": _parquet}[fmt](path, chunk_rows)
        for i, chunk in enumerate(chunks):
            if i == 0 and text_column not in chunk.column_names:
                raise TextbenchError(
                    f"{path}: no column '{text_column}' (columns: {chunk.column_names}); pass --text-column NAME"
                )
            yield chunk
    except (pa.ArrowException, UnicodeDecodeError, OSError) as e:  # corrupt data past a valid header
        if fmt != "parquet" and (isinstance(e, UnicodeDecodeError) or "utf8" in str(e).lower()):
            _first_bad_line(path)
        raise TextbenchError(f"{path}: cannot read as {fmt} ({str(e).splitlines()[0]})") from None


def _first_bad_line(path: Path) -> None:
    """Raise the one policy's error (`decode_utf8`: line and byte) for the first line of `path` that is
    not UTF-8; pyarrow's own message names neither."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            decode_utf8(raw, str(path), line=n)


def _lines(stream: IO[bytes], chunk_rows: int, column: str) -> Iterator[pa.Table]:
    """One text per line of the raw bytes, decoded by the one policy (`decode_utf8`): not by sys.stdin,
    whose surrogate escapes (C locale) would reach Arrow."""
    rows: list[str] = []
    for n, raw in enumerate(stream, 1):
        rows.append(decode_utf8(raw, "stdin", line=n).removeprefix("\ufeff" if n == 1 else "").rstrip("\r\n"))
        if len(rows) == chunk_rows:
            yield pa.table({column: pa.array(rows, pa.string())})
            rows = []
    if rows:
        yield pa.table({column: pa.array(rows, pa.string())})


def _delimited(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    delimiter = "\t" if table_format(path) == "tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:  # pyarrow skips a BOM too
        header = next(csv.reader(f, delimiter=delimiter), None)
    if not header:
        raise TextbenchError(f"{path}: empty file (expected a header row)")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=False
        ),
    )
    yield from _rechunk((pa.Table.from_batches([b]) for b in reader), chunk_rows)


def _jsonl(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    schema: pa.Schema | None = None
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for row in json_objects(path, f):
            rows.append(row)
            if len(rows) == chunk_rows:
                table = pa.Table.from_pylist(rows, schema=schema)
                schema, rows = table.schema, []
                yield table
    if rows:
        yield pa.Table.from_pylist(rows, schema=schema)


def _parquet_file(path: Path) -> pq.ParquetFile:
    """The file's Parquet reader; a file that is not Parquet (whatever its suffix says) is a TextbenchError."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise TextbenchError(
            f"{path}: not a Parquet file ({str(e).splitlines()[0][:160]}); "
            "pass a real .parquet, or name the file by its format (.csv, .tsv, .jsonl)"
        ) from None


def _parquet(path: Path, chunk_rows: int) -> Iterator[pa.Table]:
    for batch in _parquet_file(path).iter_batches(batch_size=chunk_rows):
        yield pa.Table.from_batches([batch])


def _rechunk(tables: Iterator[pa.Table], chunk_rows: int) -> Iterator[pa.Table]:
    """Regroup tables of arbitrary sizes into chunks of exactly `chunk_rows` (the last may be short)."""
    pending: list[pa.Table] = []
    size = 0
    for t in tables:
        pending.append(t)
        size += t.num_rows
        while size >= chunk_rows:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, chunk_rows)
            pending, size = [whole.slice(chunk_rows)], size - chunk_rows
    if size:
        yield pa.concat_tables(pending)


class TableWriter:
    """Append tables to CSV/TSV/JSONL/Parquet (schema fixed by the first chunk), or JSONL to a stream."""

    def __init__(self, target: Path | IO[str], fmt: str):
        self.target, self.fmt = target, fmt
        self._writer = None  # ParquetWriter | CSVWriter | text stream, opened by the first write

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            self._writer = self._open(table.schema)
        if self.fmt == "jsonl":
            self._writer.writelines(
                json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in table.to_pylist()
            )
            return
        try:
            table = table.cast(self._schema)
        except (pa.ArrowInvalid, ValueError) as e:
            raise TextbenchError(f"input rows change type between chunks ({e}); write JSONL output instead") from None
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema):
        if self.fmt == "jsonl":
            return open(self.target, "w", encoding="utf-8") if isinstance(self.target, Path) else self.target
        if self.fmt == "parquet":
            return pq.ParquetWriter(self.target, schema)
        options = pacsv.WriteOptions(delimiter="\t" if self.fmt == "tsv" else ",")
        return pacsv.CSVWriter(self.target, schema, write_options=options)

    def close(self) -> None:
        """Finish the file; an input without rows still gives a valid, empty output file."""
        if self._writer is None:
            if self.fmt == "parquet":
                pq.write_table(pa.table({}), self.target)
            elif isinstance(self.target, Path):
                self.target.write_text("", encoding="utf-8")
        elif isinstance(self.target, Path):
            self._writer.close()
        else:
            self._writer.flush()


@contextlib.contextmanager
def open_writer(out: str | Path) -> Iterator[TableWriter]:
    """A writer for `out` ('-' = JSONL on stdout); the file appears only if the block succeeds."""
    if str(out) == "-":
        writer = TableWriter(sys.stdout, "jsonl")
        yield writer
        writer.close()
        return
    with atomic_path(out) as tmp:
        writer = TableWriter(tmp, table_format(out))
        try:
            yield writer
        finally:
            writer.close()
