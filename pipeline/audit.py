"""`textbench audit`: data/prepared/<ds>/ → data/audit/<ds>/audit.json, what a score table does not say
about its data. Each finding is counted with the rule that found it (audit.json `rules`), with a few
examples (`audit.examples`):

- exact duplicates: documents whose texts share prepare's `dedup_key` (encoder.clean: NFKC, controls,
  whitespace). prepare keeps a text only in the highest split it occurs in, so copies left lie inside
  one split; counted per split (groups, and copies beyond the first);
- identical texts with different labels (label sets, multi-label) among those copies; what prepare's
  cross-split de-duplication removed is card.json `duplicates_removed`;
- near-duplicates: pairs of distinct texts whose Jaccard similarity of shingles (`audit.shingle`
  consecutive words for English, characters for Chinese; lowercased), estimated from `audit.num_perm` MinHash
  values, reaches `audit.threshold`; candidates by LSH banding (rows per band: the most for which a
  pair at the threshold is still a candidate with probability >= 0.99), counted per split pair. The
  test documents with a copy or a near-duplicate in train are listed (`test_near_train`): the report
  scores every model on the test documents without one;
- suspected label errors (single-label): the confident-learning rule (Northcutt et al. 2021, the
  off-diagonal of the confident joint; cleanlab's `filter_by="confident_learning"`) on out-of-fold
  probabilities of the TF-IDF baseline (LinearSVC scores, softmax at a temperature fitted on the
  out-of-fold NLL, as tfidf_svm), `audit.folds`-fold over all splits. Multi-label: skipped (the rule
  is for one label a document; one search per label is 90 Reuters fits per fold).

Implemented here rather than with datasketch/cleanlab: datasketch hashes each document in a Python
loop (tens of minutes for 1M documents), and the confident-learning rule is a few numpy lines. Cost
for N documents: signatures N × num_perm uint32 (1M documents, 128 permutations: 512 MB), shingled
and hashed in batches of BATCH documents (bounded working memory); banding sorts N keys per band;
pairs grow with the near-duplicates found. Measured on a 2-core CPU: 100k generated documents of
100 words, 35 s of signatures and 1 s of LSH in 350 MB (so 1M: about 6 minutes and 1 GB); Reuters
(8,991 documents) 8 s and THUCNews (9,400 titles) 4 s for the whole audit, label search included.
The label-error search holds the TF-IDF matrix of all documents and fits `folds` LinearSVCs.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline import paths
from pipeline.artifacts import DataAudit, read_card
from pipeline.config import AuditConfig, Config
from pipeline.data.prepare import dedup_key
from pipeline.io import atomic_dir, fingerprint
from pipeline.tokenize.stage import LABEL_COLUMN, label_mode, prepared_inputs

SPLITS = paths.SPLITS
BATCH = 1000  # documents shingled and hashed at a time
PERM_CHUNK = 16  # permutations hashed at a time (working memory: shingles of a batch × PERM_CHUNK × 4 bytes)
RECALL = 0.99  # LSH: a pair at the threshold becomes a candidate with at least this probability
CLIP = 160  # characters of an example text


def audit_fingerprint(cfg: Config, name: str) -> str:
    """The fingerprint an audit.json of `name` carries when it audits the current prepared data with the
    current `audit` params and seed (the report shows no stale audit's findings)."""
    card = read_card(name)
    return fingerprint(cfg.audit.model_dump(mode="json"), cfg.seed, card.fingerprint if card else None)


def audit(cfg: Config, name: str) -> Path:
    """Write data/audit/<name>/audit.json from the prepared splits; returns that directory."""
    ds, ac = cfg.dataset(name), cfg.audit
    inputs = prepared_inputs(name)
    mode = label_mode(inputs["train"])
    docs = _read(inputs, mode)
    started = time.perf_counter()
    keys = [dedup_key(d["text"]) for d in docs]
    uniq: dict[str, int] = {}
    key_of = np.array([uniq.setdefault(k, len(uniq)) for k in keys], np.int64)
    members: list[list[int]] = [[] for _ in uniq]
    for i, k in enumerate(key_of):
        members[k].append(i)
    rows = bands(ac.threshold, ac.num_perm)
    sig, ok = signatures(list(uniq), ac.shingle[ds.language], ds.language == "en", ac.num_perm, cfg.seed)
    pairs, sims = near_pairs(sig, ok, ac.threshold, rows, cfg.seed)
    result = {
        "dataset": name,
        "label_mode": mode,
        "fingerprint": audit_fingerprint(cfg, name),
        "params": ac.model_dump(mode="json") | {"seed": cfg.seed, "lsh_rows_per_band": rows},
        "docs": {s: sum(d["split"] == s for d in docs) for s in SPLITS},
        "exact_duplicates": exact_duplicates(docs, members, ac.examples),
        "label_conflicts": label_conflicts(docs, members, ac.examples),
        **near_duplicates(docs, members, pairs, sims, ac.examples),
        "label_issues": (
            label_issues(docs, ds.language, ac, cfg.seed)
            if mode == "single" and ac.folds
            else {"skipped": MULTI_SKIPPED if mode == "multi" else "audit.folds is 0"}
        ),
        "rules": RULES,
    }
    out = paths.audit_dir(name)
    with atomic_dir(out) as tmp:
        DataAudit(**result).write(tmp / paths.audit_json(name).name)
    print(f"{name}: audited {len(docs):,} documents in {time.perf_counter() - started:.1f}s")
    return out


MULTI_SKIPPED = (
    "multi-label: the confident-learning rule here is for one label a document (a search per label would be "
    "one cross-validation per topic)"
)
RULES = {
    "exact_duplicates": "documents whose texts are equal after prepare's normalisation (encoder.clean), per split",
    "label_conflicts": "such copies carrying different labels (label sets)",
    "near_duplicates": "pairs of distinct texts with MinHash-estimated Jaccard similarity of lowercased "
    "shingles (audit.shingle words, Chinese: characters) >= audit.threshold (LSH candidates, each verified on the whole signature)",
    "test_near_train": "test documents with a copy or a near-duplicate in train",
    "label_issues": "confident learning (off-diagonal of the confident joint) on out-of-fold TF-IDF + LinearSVC "
    "probabilities (softmax at a temperature fitted on them)",
}


def _read(inputs: dict[str, Path], mode: str) -> list[dict[str, Any]]:
    """Every prepared document as {split, id, text, label} (label: a string, or a sorted tuple of labels)."""
    docs = []
    column = LABEL_COLUMN[mode]
    for split in SPLITS:
        table = pq.read_table(inputs[split], columns=["id", "text", column]).to_pydict()
        for i, text, label in zip(table["id"], table["text"], table[column]):
            docs.append(
                {
                    "split": split,
                    "id": str(i),
                    "text": text,
                    "label": tuple(sorted(label)) if mode == "multi" else label,
                }
            )
    return docs


# --- MinHash and LSH ---------------------------------------------------------------------------


def signatures(texts: list[str], shingle: int, words: bool, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures [N, num_perm] uint32 of each text's set of lowercased shingles, `shingle`
    consecutive words (`words`; scikit-learn's tokens of 2+ word characters) or characters, hashed to
    31 bits by scikit-learn's HashingVectorizer, then by num_perm random permutations x → a·x + b of
    the 32-bit integers (a odd); and which texts have a shingle at all [N] bool (shorter ones take no part)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    rng = np.random.default_rng([seed, num_perm])
    a = rng.integers(0, 2**31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = rng.integers(0, 2**32, num_perm, dtype=np.uint32)
    vec = HashingVectorizer(
        analyzer="word" if words else "char",
        ngram_range=(shingle, shingle),
        n_features=2**31 - 1,
        alternate_sign=False,
        norm=None,
        binary=True,
    )
    sig = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, np.uint32)
    ok = np.zeros(len(texts), bool)
    for start in range(0, len(texts), BATCH):
        x = vec.transform(texts[start : start + BATCH]).tocsr()
        filled = np.flatnonzero(np.diff(x.indptr))
        if not len(filled):
            continue
        ok[start + filled] = True
        cols = x.indices.astype(np.uint32)[:, None]
        for p in range(0, num_perm, PERM_CHUNK):
            h = cols * a[None, p : p + PERM_CHUNK] + b[None, p : p + PERM_CHUNK]  # wraps mod 2^32
            sig[start + filled, p : p + PERM_CHUNK] = np.minimum.reduceat(h, x.indptr[filled], axis=0)
    return sig, ok


def bands(threshold: float, num_perm: int) -> int:
    """Rows per LSH band: the most for which a pair of similarity `threshold` is still a candidate
    (equal in at least one of num_perm // rows bands) with probability >= RECALL."""
    return max(r for r in range(1, num_perm + 1) if 1 - (1 - threshold**r) ** (num_perm // r) >= RECALL or r == 1)


def near_pairs(
    sig: np.ndarray, ok: np.ndarray, threshold: float, rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) [M, 2] of texts whose signatures agree in >= threshold of their values, and that
    share [M]: candidates are texts equal in all `rows` values of some band, each checked on the whole
    signature; sorted by pair."""
    idx = np.flatnonzero(ok)
    mult = np.random.default_rng([seed, rows]).integers(1, 2**63, rows, dtype=np.uint64) | np.uint64(1)
    found: list[np.ndarray] = []
    n = len(sig)
    for band in range(sig.shape[1] // rows):
        key = (sig[idx, band * rows : (band + 1) * rows].astype(np.uint64) * mult).sum(1)  # wraps: a band hash
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        sizes = np.diff(np.r_[starts, len(ks)])
        for s, m in zip(starts[sizes > 1], sizes[sizes > 1]):
            group = np.sort(idx[order[s : s + m]])
            i, j = np.triu_indices(m, 1)
            found.append(group[i] * n + group[j])
    if not found:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    codes = np.unique(np.concatenate(found))
    i, j = codes // n, codes % n
    sims = np.concatenate([(sig[i[c : c + 65536]] == sig[j[c : c + 65536]]).mean(1) for c in range(0, len(i), 65536)])
    keep = sims >= threshold
    return np.stack([i[keep], j[keep]], 1), sims[keep]


# --- findings ----------------------------------------------------------------------------------


def _doc(d: dict[str, Any]) -> dict[str, Any]:
    """An example document: id, split, label (a multi-label set joined) and the text's first CLIP characters."""
    text = d["text"] if len(d["text"]) <= CLIP else d["text"][:CLIP] + " …"
    label = ", ".join(d["label"]) if isinstance(d["label"], tuple) else d["label"]
    return {"id": d["id"], "split": d["split"], "label": label, "text": text}


def exact_duplicates(docs: list[dict], members: list[list[int]], k: int) -> dict[str, Any]:
    """Per split: groups of documents with one text, and the copies beyond each group's first; the largest groups."""
    groups = [g for g in members if len(g) > 1]
    by_split = {s: [g for g in groups if docs[g[0]]["split"] == s] for s in SPLITS}
    largest = sorted(groups, key=lambda g: (-len(g), docs[g[0]]["id"]))[:k]
    return {
        "groups": {s: len(gs) for s, gs in by_split.items()},
        "copies": {s: sum(len(g) - 1 for g in gs) for s, gs in by_split.items()},
        "across_splits": sum(len({docs[i]["split"] for i in g}) > 1 for g in groups),
        "examples": [{"docs": len(g), **_doc(docs[g[0]]), "ids": [docs[i]["id"] for i in g[:10]]} for g in largest],
    }


def label_conflicts(docs: list[dict], members: list[list[int]], k: int) -> dict[str, Any]:
    """Groups of copies of one text whose documents carry different labels (label sets)."""
    groups = [g for g in members if len({docs[i]["label"] for i in g}) > 1]
    groups.sort(key=lambda g: docs[g[0]]["id"])
    return {
        "groups": len(groups),
        "docs": sum(map(len, groups)),
        "examples": [[_doc(docs[i]) for i in g[:4]] for g in groups[:k]],
    }


def near_duplicates(
    docs: list[dict], members: list[list[int]], pairs: np.ndarray, sims: np.ndarray, k: int
) -> dict[str, Any]:
    """`near_duplicates` (pairs of distinct texts per split pair, how many have different labels, the
    most similar across splits) and `test_near_train` (test documents with a copy or near-duplicate in train)."""
    splits_of = [{docs[i]["split"] for i in g} for g in members]
    labels_of = [{docs[i]["label"] for i in g} for g in members]
    counts: dict[str, int] = defaultdict(int)
    near_train: set[int] = {u for u, s in enumerate(splits_of) if {"train", "test"} <= s}
    different = 0
    for u, v in pairs:
        for su in splits_of[u]:
            for sv in splits_of[v]:
                a, b = sorted((su, sv), key=SPLITS.index)
                counts[f"{a}-{b}"] += 1
        different += labels_of[u] != labels_of[v]
        if "train" in splits_of[u] and "test" in splits_of[v]:
            near_train.add(v)
        if "train" in splits_of[v] and "test" in splits_of[u]:
            near_train.add(u)
    across = [n for n, (u, v) in enumerate(pairs) if splits_of[u] != splits_of[v]]
    across.sort(key=lambda n: (-sims[n], docs[members[pairs[n][0]][0]]["id"]))
    test_ids = sorted(docs[i]["id"] for u in near_train for i in members[u] if docs[i]["split"] == "test")
    return {
        "near_duplicates": {
            "pairs": {f"{a}-{b}": counts[f"{a}-{b}"] for n, a in enumerate(SPLITS) for b in SPLITS[n:]},
            "different_labels": different,
            "examples": [
                {
                    "similarity": round(float(sims[n]), 4),
                    "a": _doc(docs[members[pairs[n][0]][0]]),
                    "b": _doc(docs[members[pairs[n][1]][0]]),
                }
                for n in across[:k]
            ],
        },
        "test_near_train": {"count": len(test_ids), "ids": test_ids},
    }


def label_issues(docs: list[dict], language: str, ac: AuditConfig, seed: int) -> dict[str, Any]:
    """Suspected label errors per split, the least self-confident first (see the module docstring)."""
    from scipy.special import log_softmax
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    from pipeline.evaluate import fit_temperature

    classes = sorted({d["label"] for d in docs})
    y = np.array([classes.index(d["label"]) for d in docs])
    word = language == "en"  # words for English (unigrams: bigrams tripled the fits' time on Reuters), else characters
    x = TfidfVectorizer(
        analyzer="word" if word else "char",
        ngram_range=(1, 1 if word else 2),
        min_df=2,
        sublinear_tf=True,
        dtype=np.float32,
    ).fit_transform([d["text"] for d in docs])
    folds = min(ac.folds, int(np.bincount(y).min()))
    if folds < 2:
        return {"skipped": "a class has a single document: no fold can hold it out and train on it"}
    scores = np.zeros((len(docs), len(classes)))
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = LinearSVC(random_state=seed).fit(x[fit], y[fit])
        part = clf.decision_function(x[held])
        if part.ndim == 1:  # two classes: one score s → logits (−s/2, s/2), as tfidf_svm
            part = np.stack([-part / 2, part / 2], 1)
        scores[np.ix_(held, clf.classes_)] = part
    probs = np.exp(log_softmax(scores / fit_temperature(scores, y), axis=1))
    issue = confident_learning(probs, y)
    self_conf = probs[np.arange(len(y)), y]
    suggested = probs.argmax(1)
    order = sorted(np.flatnonzero(issue), key=lambda i: (self_conf[i], docs[i]["id"]))
    return {
        "folds": folds,
        "counts": {s: int(sum(issue[i] for i, d in enumerate(docs) if d["split"] == s)) for s in SPLITS},
        "examples": [
            _doc(docs[i]) | {"suggested": classes[suggested[i]], "p_label": round(float(self_conf[i]), 4)}
            for i in order[: ac.examples]
        ],
    }


def confident_learning(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which documents lie off the diagonal of the confident joint [N] bool: class j's threshold is the
    mean probability of j over the documents labelled j; a document's confident class is its most
    probable class among those at or above their threshold; an issue when that is not its label."""
    n_classes = probs.shape[1]
    thresholds = np.array([probs[y == j, j].mean() if (y == j).any() else math.inf for j in range(n_classes)])
    above = probs >= thresholds
    confident = np.where(above, probs, -1.0).argmax(1)
    return above.any(1) & (confident != y)
