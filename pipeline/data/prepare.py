"""`textbench prepare`: archive or local corpus → data/prepared/<ds>/{train,dev,test}.parquet + card.json.

The same steps, in this order, for every kind of corpus:
1. read (the kind's reader picks documents and, where the source fixes it, their split);
2. refuse a repeated document id (ids are the documents' identity in predictions and reports);
   normalise whitespace and drop documents whose text is empty (counted);
3. split: a given split is kept, a missing dev is carved from train (`dev_ratio`), train alone gets
   dev and test carved from it (`ratios`), no split at all gets stratified `ratios` (card.json
   `split_origin` says which); stratified = per class, seeded shuffle, round(n * ratio) to dev/test;
4. de-duplicate: a text present in several splits is kept only in the highest of test > dev > train
   (the test set is never thinned by de-duplication; copies inside one split are kept); texts are
   compared after NFKC and whitespace normalisation (a fullwidth copy is a copy);
5. drop classes with fewer than `min_docs_per_class` documents counted over all splits after 4;
   a multi-label document loses the dropped labels and goes only when none is left; a class left
   without train documents is an error, or dropped with `classes_without_train: drop`;
6. refuse the result unless it has at least 2 classes and documents in every split.
The whole directory is written atomically; same params + seed give byte-identical files.

`label_mode: multi` (a label set per document): the splits hold a `labels` list<string> column in
place of `label`; card.json `counts` are documents carrying each label; stratification groups the
documents by their rarest label (see `_stratified`).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import paths
from pipeline.artifacts import DatasetCard
from pipeline.config import Config, DatasetConfig
from pipeline.data import local, reuters, thucnews
from pipeline.data.corpus import Corpus, Doc
from pipeline.data.download import raw_path
from pipeline.errors import TextbenchError
from pipeline.io import atomic_dir, fingerprint, sha256_file
from pipeline.tokenize.encoder import clean, has_content

SPLITS = paths.SPLITS
PRIORITY = ("test", "dev", "train")
TOKENIZE_KEYS = {"max_len", "encoder", "bag_max_len"}  # dataset keys the tokenize stage uses, not this one


def prepare(cfg: Config, name: str) -> Path:
    """Build data/prepared/<name>/ from the dataset's source; returns that directory."""
    ds = cfg.dataset(name)
    corpus, sources = _read(cfg, name, ds)
    check_unique_ids(name, corpus.docs)
    docs, empty = normalise(corpus.docs)
    given = dict(sorted(Counter(d.split or "none" for d in docs).items()))
    docs, origin = assign_splits(docs, ds, cfg.seed)
    docs, duplicates = dedup(docs)
    docs, dropped = drop_small_classes(docs, ds.min_docs_per_class)
    docs, untrained = drop_untrained_classes(name, docs, ds.classes_without_train)
    dropped += untrained
    labels = sorted({lb for d in docs for lb in d.labels})
    counts = {s: dict(sorted(Counter(lb for d in docs if d.split == s for lb in d.labels).items())) for s in SPLITS}
    check_usable(name, labels, counts, dropped)
    params = {"seed": cfg.seed, f"datasets.{name}": ds.model_dump(mode="json", exclude=TOKENIZE_KEYS)}
    card = DatasetCard(
        dataset=name,
        kind=ds.kind,
        language=ds.language,
        label_mode=ds.label_mode,
        labels=labels,
        num_labels=len(labels),
        totals={s: sum(d.split == s for d in docs) for s in SPLITS},
        counts=counts,
        classes_missing_from_split={s: [lb for lb in labels if lb not in counts[s]] for s in SPLITS},
        dropped_classes=dropped,
        duplicates_removed=duplicates,
        empty_docs_dropped=empty,
        given_split_docs=given,
        split_origin=origin,
        reader=corpus.stats,
        source=sources,
        params=params,
        rules={
            "text": "whitespace collapsed to single spaces; texts without content (whitespace, control, format "
            "chars) dropped",
            "dedup": "duplicate texts (equal after NFKC and whitespace normalisation) kept only in the highest "
            "of test > dev > train",
            "min_docs_per_class": "counted over all splits after de-duplication",
            "given_split_docs": "documents per split the source gives (none: unsplit) after empty texts are "
            "dropped, before de-duplication and the dev carve",
        },
        fingerprint=fingerprint(params, sources),
    )
    out = paths.prepared_dir(name)
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            write_split(
                paths.split_file(tmp, split), [d for d in docs if d.split == split], corpus.extras, ds.label_mode
            )
        card.write(tmp / paths.CARD)
    return out


def _read(cfg: Config, name: str, ds: DatasetConfig) -> tuple[Corpus, list[dict[str, Any]]]:
    if ds.kind == "local":
        corpus, files = local.read(ds, name)
    else:
        archive = raw_path(name, ds)
        if not archive.is_file():
            raise TextbenchError(f"{archive} not found; run `textbench download --dataset {name}` first")
        corpus = reuters.read(ds, archive) if ds.kind == "reuters" else thucnews.read(ds, name, archive, cfg.seed)
        files = [archive]
    sources = [{"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files]
    return corpus, sources


def check_unique_ids(name: str, docs: list[Doc]) -> None:
    """Every document id once: predictions and reports join texts and labels on it."""
    seen: set[str] = set()
    for i, d in enumerate(docs, 1):
        if d.id in seen:
            first = next(j for j, e in enumerate(docs, 1) if e.id == d.id)
            raise TextbenchError(
                f"dataset '{name}': document id '{d.id}' occurs more than once (documents {first} and {i}); ids "
                f"identify documents in predictions and reports: make the id column unique, or drop it "
                f"(ids are then generated)"
            )
        seen.add(d.id)


def normalise(docs: list[Doc]) -> tuple[list[Doc], int]:
    """Collapse whitespace; drop (and count) documents left without text (`has_content`: nothing but
    whitespace, control or format characters, which no tokenizer makes a token of)."""
    kept = []
    for d in docs:
        d.text = " ".join(d.text.split())
        if has_content(d.text):
            kept.append(d)
    return kept, len(docs) - len(kept)


def assign_splits(docs: list[Doc], ds: DatasetConfig, seed: int) -> tuple[list[Doc], dict[str, str]]:
    """Keep a given split (carving a missing dev, or dev and test when train alone is given, from
    train) or draw stratified `ratios`; also where each split came from."""
    given = {d.split for d in docs}
    if given == {None}:
        _stratified(docs, ds.ratios, seed)
        return docs, dict.fromkeys(SPLITS, "drawn from the whole corpus (ratios)")
    if None in given:
        raise TextbenchError("some documents have a split and some do not; give every row a split or none")
    if given == {"train"}:
        _stratified(docs, ds.ratios, seed)
        return docs, {"train": "given", "dev": "carved from train (ratios)", "test": "carved from train (ratios)"}
    origin = {s: "given" for s in SPLITS}
    if "dev" not in given:
        _stratified([d for d in docs if d.split == "train"], (1 - ds.dev_ratio, ds.dev_ratio, 0.0), seed)
        origin["dev"] = "carved from train (dev_ratio)"
    return docs, origin


def _stratified(docs: list[Doc], ratios: tuple[float, float, float], seed: int) -> None:
    """Per class (sorted), a seeded permutation: first round(n*dev) → dev, next round(n*test) → test.
    A multi-label document counts under its rarest label (fewest of these documents; ties: name), so
    a label with one or two documents keeps them in train instead of losing them to a common label's
    dev share; for single-label documents that is their label."""
    rng = np.random.default_rng(seed)
    freq = Counter(lb for d in docs for lb in d.labels)
    by_label: dict[str, list[Doc]] = defaultdict(list)
    for d in docs:
        by_label[min(d.labels, key=lambda lb: (freq[lb], lb))].append(d)
    for label in sorted(by_label):
        group = by_label[label]
        n_dev, n_test = (int(len(group) * r + 0.5) for r in ratios[1:])
        for rank, i in enumerate(rng.permutation(len(group))):
            group[i].split = "dev" if rank < n_dev else "test" if rank < n_dev + n_test else "train"


def dedup(docs: list[Doc]) -> tuple[list[Doc], dict[str, int]]:
    """Drop copies of a text from every split below the highest one it occurs in."""
    keys = [dedup_key(d.text) for d in docs]
    best = {}
    for d, key in zip(docs, keys):
        rank = PRIORITY.index(d.split)
        best[key] = min(rank, best.get(key, rank))
    kept = [d for d, key in zip(docs, keys) if PRIORITY.index(d.split) == best[key]]
    removed = Counter(d.split for d in docs) - Counter(d.split for d in kept)
    return kept, {s: removed.get(s, 0) for s in SPLITS}


def dedup_key(text: str) -> str:
    """What two texts must share to be copies: the text as the tokenizers see it (`encoder.clean`: NFKC,
    control characters as spaces, whitespace collapsed)."""
    return clean(text)


def drop_untrained_classes(name: str, docs: list[Doc], rule: str) -> tuple[list[Doc], list[dict[str, Any]]]:
    """A class with no train documents cannot be learnt and scores 0 in macro-F1: an error naming it,
    or (`classes_without_train: drop`) removed like a small class, listed, and one line printed."""
    trained = {lb for d in docs if d.split == "train" for lb in d.labels}
    sizes = Counter(lb for d in docs for lb in d.labels)
    if not (untrained := sorted(set(sizes) - trained)):
        return docs, []
    if rule == "error":
        raise TextbenchError(
            f"dataset '{name}': class(es) {untrained} have no train documents (only dev/test); give them train "
            f"documents, or set datasets.{name}.classes_without_train: drop"
        )
    print(f"dataset '{name}': dropped class(es) {untrained} without train documents", file=sys.stderr)
    dropped = [{"label": lb, "docs": sizes[lb], "reason": "no train documents"} for lb in untrained]
    return [d for d in docs if d.keep_labels(trained)], dropped


def drop_small_classes(docs: list[Doc], minimum: int) -> tuple[list[Doc], list[dict[str, Any]]]:
    """Remove classes with < `minimum` documents over all splits (and documents left without a label);
    list them with the reason."""
    sizes = Counter(lb for d in docs for lb in d.labels)
    small = {lb for lb, n in sizes.items() if n < minimum}
    dropped = [
        {"label": lb, "docs": sizes[lb], "reason": f"fewer than min_docs_per_class={minimum} documents"}
        for lb in sorted(small)
    ]
    return [d for d in docs if d.keep_labels(set(sizes) - small)], dropped


def check_usable(name: str, labels: list[str], counts: dict[str, dict[str, int]], dropped: list[dict]) -> None:
    """At least 2 classes and documents in every split, or one error saying what to change: a
    one-class corpus would train to accuracy 1.0, an empty split fails later or measures nothing."""
    if len(labels) < 2:
        fix = (
            f"lower datasets.{name}.min_docs_per_class (it dropped {[d['label'] for d in dropped]})"
            if dropped
            else f"use a corpus (or datasets.{name}.categories) with 2 or more labels"
        )
        raise TextbenchError(
            f"dataset '{name}': {len(labels)} class(es) left after filtering ({labels}); a "
            f"classifier needs at least 2: {fix}"
        )
    if empty := [s for s in SPLITS if not counts[s]]:
        raise TextbenchError(
            f"dataset '{name}': no documents in the {'/'.join(empty)} split (documents per split: "
            f"{ {s: sum(counts[s].values()) for s in SPLITS} }); give the corpus documents for it, or raise "
            f"datasets.{name}.ratios (dev_ratio when only dev is missing)"
        )


def write_split(path: Path, docs: list[Doc], extras: dict[str, pa.DataType], label_mode: str) -> None:
    """One split as Parquet with a fixed schema (id, text, label | labels, extras...) and no timestamps."""
    column, kind = ("label", pa.string()) if label_mode == "single" else ("labels", pa.list_(pa.string()))
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), (column, kind)] + [(k, t) for k, t in extras.items()]
    )
    columns = {
        "id": [d.id for d in docs],
        "text": [d.text for d in docs],
        column: [d.label if label_mode == "single" else list(d.labels) for d in docs],
    }
    columns.update({k: [d.extra[k] for d in docs] for k in extras})
    pq.write_table(pa.table(columns, schema=schema), path, compression="zstd")
