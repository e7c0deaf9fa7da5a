"""The tokenize stage: data/prepared/<ds>/*.parquet → data/tokenized/<ds>/<scheme>/ (the tokenized data).

Streams record batches of `tokenize.batch_size` documents through `TextEncoder.encode_batch`
(the code path prediction uses) into one ParquetWriter per split. Row groups hold a fixed
`ROW_GROUP` rows whatever the batch size or worker count, so the output bytes depend only on the
data and the settings in the fingerprint. Each scheme dir is written atomically. A multi-label
dataset (prepared splits with a `labels` list column) gets a `labels` list<int32> column of label
ids in place of `label`, and meta.json `label_mode: multi`. A dataset without `max_len` gets one per
scheme from a first pass over train (`auto_max_len`, settings `tokenize.max_len_auto`), recorded in
meta.json `max_len_auto`; with an explicit `max_len` meta.json has no such key.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.artifacts import TokenizedMeta, read_card
from pipeline.config import Config, MaxLenAutoConfig
from pipeline.errors import TextbenchError
from pipeline.families import SCHEME_OF_MODEL, SCHEMES, WHOLE_DOCUMENT
from pipeline.io import atomic_dir, fingerprint, sha256_file, write_json
from pipeline.paths import META, SPLITS, VOCAB, prepared_dir, root, split_file, tokenized_dir
from pipeline.tokenize.coverage import UNK_WARN
from pipeline.tokenize.embeddings import aligned_embeddings
from pipeline.tokenize.encoder import TextEncoder
from pipeline.tokenize.subword import SubwordEncoder
from pipeline.tokenize.vocab import WORD_PATTERN, Segmenter, VocabEncoder, build_vocab

log = logging.getLogger(__name__)
SCHEMAS = {
    mode: pa.schema([("id", pa.string()), ("input_ids", pa.list_(pa.int32())), column])
    for mode, column in (("single", ("label", pa.int32())), ("multi", ("labels", pa.list_(pa.int32()))))
}
LABEL_COLUMN = {"single": "label", "multi": "labels"}
BAG_COLUMN = pa.field("bag_ids", pa.list_(pa.int32()))  # ids up to bag_max_len, for WHOLE_DOCUMENT models
BAG_SCHEMES = {SCHEME_OF_MODEL[m] for m in WHOLE_DOCUMENT}
ROW_GROUP = 8192
PERCENTILES = (50, 80, 90, 95, 99)


def prepared_inputs(dataset: str) -> dict[str, Path]:
    """The three prepared splits, or an error naming the missing file and the command that makes it."""
    paths = {s: split_file(prepared_dir(dataset), s) for s in SPLITS}
    for path in paths.values():
        if not path.is_file():
            raise TextbenchError(f"{path}: prepared split not found; run `textbench prepare -d {dataset}` first")
    return paths


def label_mode(path: Path) -> str:
    """`multi` when the prepared split holds label sets (a `labels` column), else `single`."""
    try:
        return "multi" if "labels" in pq.ParquetFile(path).schema_arrow.names else "single"
    except (pa.ArrowInvalid, OSError) as e:
        raise TextbenchError(f"{path}: unreadable Parquet ({e}); rerun `textbench prepare`") from None


def _batches(path: Path, batch_size: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(path)
        missing = set(columns) - set(pf.schema_arrow.names)
        if missing:
            raise TextbenchError(
                f"{path}: missing column(s) {sorted(missing)}; expected {', '.join(columns)} (rerun prepare)"
            )
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise TextbenchError(f"{path}: unreadable Parquet ({e}); rerun `textbench prepare`") from None


def _num_rows(path: Path) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as e:
        raise TextbenchError(f"{path}: unreadable Parquet ({e}); rerun `textbench prepare`") from None


def class_labels(dataset: str, inputs: dict[str, Path], mode: str) -> list[str]:
    """card.json `labels` (the data stage's kept classes) or, without a card, the sorted train labels."""
    card = read_card(dataset)
    if card is not None:
        return card.labels
    try:
        column = pq.read_table(inputs["train"], columns=[LABEL_COLUMN[mode]]).column(0).to_pylist()
    except (pa.ArrowInvalid, OSError, KeyError) as e:
        raise TextbenchError(f"{inputs['train']}: cannot read the label column ({e})") from None
    return sorted({str(x) for v in column for x in (v if mode == "multi" else [v])})


class _RowGroupWriter:
    """ParquetWriter that emits row groups of exactly ROW_GROUP rows (the last may be shorter)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.pending: list[pa.Table] = []
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= ROW_GROUP:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.concat_tables(self.pending).combine_chunks()
        full = table.num_rows if final else table.num_rows - table.num_rows % ROW_GROUP
        for start in range(0, full, ROW_GROUP):
            self.writer.write_table(table.slice(start, min(ROW_GROUP, full - start)).combine_chunks())
        rest = table.slice(full)
        self.pending, self.rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def close(self) -> None:
        if self.rows:
            self._flush(final=True)
        self.writer.close()


def _split_stats(full_lengths: list[int], pieces: int, unks: int, max_len: int) -> dict[str, Any]:
    lengths = np.asarray(full_lengths, dtype=np.int64)
    pct = np.percentile(lengths, PERCENTILES, method="higher") if len(lengths) else [0] * len(PERCENTILES)
    return {
        "docs": int(len(lengths)),
        "length_before_truncation": {
            **{f"p{p}": int(v) for p, v in zip(PERCENTILES, pct)},
            "max": int(lengths.max(initial=0)),
        },
        "truncated_share": round(float((lengths > max_len).mean()) if len(lengths) else 0.0, 6),
        "unk_rate": round(unks / pieces, 6) if pieces else 0.0,
        "tokens": int(pieces),
    }


def encode_split(
    encoder: TextEncoder,
    src: Path,
    dst: Path,
    split: str,
    labels: list[str],
    batch_size: int,
    desc: str,
    mode: str,
    bag_len: int | None = None,
) -> dict[str, Any]:
    """Encode one prepared split into `dst` (with `bag_len`, also a `bag_ids` column cut there);
    returns its length/[UNK] statistics."""
    label_id = {name: i for i, name in enumerate(labels)}
    schema, column = SCHEMAS[mode], LABEL_COLUMN[mode]
    if bag_len is not None:
        schema = schema.append(BAG_COLUMN)
    writer = _RowGroupWriter(dst, schema)
    full_lengths: list[int] = []
    pieces = unks = 0
    try:
        with tqdm(total=_num_rows(src), desc=desc, unit="doc", file=sys.stderr, leave=False) as bar:
            for batch in _batches(src, batch_size, ["id", "text", column]):
                ids = [str(x) for x in batch.column("id").to_pylist()]
                enc = encoder.encode_batch([t or "" for t in batch.column("text").to_pylist()], bag_len)
                for doc_id, n in zip(ids, enc.pieces):
                    if n == 0:
                        raise TextbenchError(
                            f"{src}: document id={doc_id} in split '{split}' has no tokens after cleaning; "
                            "drop or fix it in the prepare stage"
                        )
                try:
                    y = [
                        [label_id[str(x)] for x in v] if mode == "multi" else label_id[str(v)]
                        for v in batch.column(column).to_pylist()
                    ]
                except KeyError as e:
                    raise TextbenchError(
                        f"{src}: label {e} is not among the dataset's labels {labels}; rerun prepare"
                    ) from None
                writer.write(
                    pa.Table.from_arrays(
                        [
                            pa.array(ids, pa.string()),
                            pa.array(enc.ids, pa.list_(pa.int32())),
                            pa.array(y, schema.field(column).type),
                            *([pa.array(enc.bag_ids, BAG_COLUMN.type)] if bag_len is not None else []),
                        ],
                        schema=schema,
                    )
                )
                full_lengths.extend(enc.full_lengths)
                pieces += sum(enc.pieces)
                unks += sum(enc.unks)
                bar.update(batch.num_rows)
    finally:
        writer.close()
    return _split_stats(full_lengths, pieces, unks, encoder.max_len)


def auto_max_len(lengths: list[int], auto: MaxLenAutoConfig) -> dict[str, Any]:
    """meta.json `max_len_auto`: the length covering `auto.quantile` of `lengths`, rounded up to a
    multiple of auto.STEP, clamped to [auto.min, auto.max]; `chosen` is the max_len used."""
    covering = int(np.quantile(np.asarray(lengths, dtype=np.int64), auto.quantile, method="inverted_cdf"))
    chosen = min(max(-(-covering // auto.STEP) * auto.STEP, auto.min), auto.max)
    return {"chosen": chosen, "train_length_at_quantile": covering, **auto.model_dump()}


def _train_lengths(encoder: TextEncoder, train: Path, batch_size: int) -> list[int]:
    lengths: list[int] = []
    with tqdm(total=_num_rows(train), desc="measure train lengths", unit="doc", file=sys.stderr, leave=False) as bar:
        for batch in _batches(train, batch_size, ["id", "text"]):
            lengths += encoder.encode_batch([t or "" for t in batch.column("text").to_pylist()]).full_lengths
            bar.update(batch.num_rows)
    return lengths


def _train_counts(segmenter: Segmenter, train: Path, batch_size: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    with tqdm(total=_num_rows(train), desc="count train tokens", unit="doc", file=sys.stderr, leave=False) as bar:
        for batch in _batches(train, batch_size, ["id", "text"]):
            for toks in segmenter(batch.column("text").to_pylist()):
                counts.update(toks)
            bar.update(batch.num_rows)
    return counts


def _build_subword(cfg: Config, dataset: str, out: Path, max_len: int) -> tuple[TextEncoder, dict[str, Any]]:
    ds = cfg.dataset(dataset)
    enc = SubwordEncoder.from_config(ds.encoder, max_len, cfg.tokenize.truncation)
    enc.save(out)
    meta = {
        "encoder": ds.encoder,
        "tokenizer_sha256": enc.identity(),
        "vocab_size": enc.vocab_size(),
        "pad_id": enc.pad_id(),
        "unk_id": enc.unk_id,
        "special_ids": {"first": enc.prefix[0], "last": enc.suffix[0]},
    }
    return enc, meta


def _build_vocab(cfg: Config, dataset: str, out: Path, train: Path, max_len: int) -> tuple[TextEncoder, dict[str, Any]]:
    ds, tk, vc = cfg.dataset(dataset), cfg.tokenize, cfg.tokenize.vocab
    segmenter = Segmenter(ds.language, vc.zh_mode, tk.workers)
    try:
        counts = _train_counts(segmenter, train, tk.batch_size)
        itos = build_vocab(counts, vc.max_size, vc.min_freq)
        write_json(out / VOCAB, itos)
        meta: dict[str, Any] = {
            "zh_mode": vc.zh_mode if ds.language == "zh" else None,
            "vocab_file": VOCAB,
            "vocab_size": len(itos),
            "pad_id": 0,
            "unk_id": 1,
            "lowercase": True,
            "token_pattern": WORD_PATTERN if ds.language == "en" else None,
            "vocab_settings": vc.model_dump(),
            "tokenizer_sha256": sha256_file(out / VOCAB),
            "train_types": len(counts),
        }
        if vc.embeddings:
            vocab_path = root() / vc.embeddings_vocab if vc.embeddings_vocab else None
            matrix, coverage = aligned_embeddings(root() / vc.embeddings, vocab_path, itos, counts, cfg.seed)
            np.save(out / "embeddings.npy", matrix, allow_pickle=False)
            meta |= {
                "embeddings_file": "embeddings.npy",
                "embeddings_coverage": coverage,
                "embeddings_seed": cfg.seed,
                "embeddings_sha256": sha256_file(root() / vc.embeddings),
            }
    except BaseException:
        segmenter.close()
        raise
    return VocabEncoder(itos, segmenter, max_len, tk.truncation), meta


def unk_warnings(dataset: str, scheme: str, encoder: str, splits: dict[str, Any]) -> list[str]:
    """One line per split whose unknown-token rate exceeds UNK_WARN (kept in meta.json and logged)."""
    why = {
        "subword": f"[UNK]: encoder '{encoder}' does not cover this text (Chinese needs a Chinese encoder, "
        "e.g. bert-base-chinese); results will suffer",
        "vocab": "<unk>: tokens absent from the train vocabulary (raise max_size / lower min_freq?)",
    }[scheme]
    return [
        f"{dataset}/{scheme} {s}: {100 * st['unk_rate']:.1f}% of tokens are {why}"
        for s, st in splits.items()
        if st["unk_rate"] > UNK_WARN
    ]


def tokenize_scheme(cfg: Config, dataset: str, scheme: str) -> Path:
    """Write data/tokenized/<dataset>/<scheme>/ atomically and return it."""
    ds = cfg.dataset(dataset)
    inputs = prepared_inputs(dataset)
    mode = label_mode(inputs["train"])
    labels = class_labels(dataset, inputs, mode)
    out_dir = tokenized_dir(dataset, scheme)
    auto = cfg.tokenize.max_len_auto
    with atomic_dir(out_dir) as tmp:
        if scheme == "subword":
            enc, meta = _build_subword(cfg, dataset, tmp, ds.max_len or auto.max)
        else:
            enc, meta = _build_vocab(cfg, dataset, tmp, inputs["train"], ds.max_len or auto.max)
        try:
            if ds.max_len is None:  # only then has meta.json the key: explicit max_len outputs are unchanged
                meta["max_len_auto"] = auto_max_len(_train_lengths(enc, inputs["train"], cfg.tokenize.batch_size), auto)
                enc.set_max_len(meta["max_len_auto"]["chosen"])
                log.info("%s/%s: max_len %d chosen from the train lengths", dataset, scheme, enc.max_len)
            # the bags' own column only where it holds more than input_ids: other outputs are unchanged
            bag_len = ds.bag_max_len if scheme in BAG_SCHEMES and ds.bag_max_len > enc.max_len else None
            splits = {
                s: encode_split(
                    enc,
                    inputs[s],
                    split_file(tmp, s),
                    s,
                    labels,
                    cfg.tokenize.batch_size,
                    f"{dataset}/{scheme}/{s}",
                    mode,
                    bag_len,
                )
                for s in SPLITS
            }
        finally:
            enc.close()
        settings = {
            "scheme": scheme,
            "max_len": enc.max_len,
            "truncation": cfg.tokenize.truncation,
            "head_tokens": enc.head,
            "language": ds.language,
            **({"bag_max_len": bag_len} if bag_len is not None else {}),
        }
        meta |= settings | {
            "labels": labels,
            "label_mode": mode,
            "splits": splits,
            "inputs_sha256": {s: sha256_file(p) for s, p in inputs.items()},
            "tokenizer_fingerprint": fingerprint(
                settings,
                meta.get("encoder"),
                meta.get("zh_mode"),
                meta.get("vocab_settings"),
                meta["tokenizer_sha256"],
                meta.get("embeddings_sha256"),
            ),
        }
        meta["fingerprint"] = fingerprint(
            meta["tokenizer_fingerprint"], meta["inputs_sha256"], labels, *(["multi"] if mode == "multi" else [])
        )
        meta["warnings"] = unk_warnings(dataset, scheme, ds.encoder, splits)
        for line in meta["warnings"]:
            log.warning("warning: %s", line)
        TokenizedMeta.model_validate(meta).write(tmp / META)
    return out_dir


def tokenize_dataset(cfg: Config, dataset: str, schemes: tuple[str, ...] = SCHEMES) -> list[Path]:
    """Tokenize one dataset into each requested scheme (default: subword and vocab)."""
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise TextbenchError(f"unknown scheme '{scheme}': choose from {list(SCHEMES)}")
    return [tokenize_scheme(cfg, dataset, s) for s in schemes]
