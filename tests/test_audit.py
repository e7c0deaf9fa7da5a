"""The data audit (pipeline/audit.py) on a generated corpus with planted faults, and its report section.

The corpus: 4 classes, each document 80 words drawn mostly from its class's own words. Planted:
exact copies inside train, copies of a train text under another label, test documents that are a
train document with 3 words changed, and documents whose label was flipped. The audit must find
each of them and flag few of the clean documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import paths
from pipeline.artifacts import DataAudit
from pipeline.audit import audit, bands, near_pairs, signatures
from pipeline.config import load_config
from pipeline.errors import TextbenchError
from pipeline.report.aggregate import ModelResult
from pipeline.report.compare import Row
from pipeline.report.data_audit import audit_blocks
from pipeline.report.render import Details, Table, markdown

CLASSES = ["alpha", "beta", "gamma", "delta"]
WORDS = 80
N = {"train": 400, "dev": 60, "test": 120}


def _text(rng: np.random.Generator, label: int) -> list[str]:
    own = [f"{CLASSES[label]}{i}" for i in range(60)]
    shared = [f"common{i}" for i in range(300)]
    return [str(rng.choice(own)) if rng.random() < 0.6 else str(rng.choice(shared)) for _ in range(WORDS)]


def planted_corpus(root: Path, multi: bool = False) -> dict[str, list[str]]:
    """Write data/prepared/corpus/ under `root`; returns the planted ids by kind."""
    rng = np.random.default_rng(0)
    docs = {s: [] for s in N}  # split → [id, words, label]
    for split, n in N.items():
        for i in range(n):
            label = i % len(CLASSES)
            docs[split].append([f"{split}-{i:03d}", _text(rng, label), label])
    train = docs["train"]
    planted: dict[str, list[str]] = {"copies": [], "conflicts": [], "near_test": [], "flipped": []}
    for k in range(3):  # exact copies inside train: the same label, equal after clean() (an ideographic space)
        src = train[k]
        train.append([f"train-copy{k}", [src[1][0] + "\u3000", *src[1][1:]], src[2]])
        planted["copies"].append(src[0])
    for k in range(3, 5):  # the same text under another label
        src = train[k]
        train.append([f"train-conflict{k}", list(src[1]), (src[2] + 1) % len(CLASSES)])
        planted["conflicts"].append(src[0])
    for k in range(5):  # test = a train document with 3 words changed
        src, target = train[10 + k], docs["test"][k]
        words = list(src[1])
        for pos in (10, 40, 70):
            words[pos] = f"changed{k}{pos}"
        target[1], target[2] = words, src[2]
        planted["near_test"].append(target[0])
    for split, picks in (("train", range(20, 30)), ("test", range(20, 26))):  # flipped labels
        for i in picks:
            d = docs[split][i]
            d[2] = (d[2] + 2) % len(CLASSES)
            planted["flipped"].append(d[0])
    out = root / "data" / "prepared" / "corpus"
    out.mkdir(parents=True)
    for split, rows in docs.items():
        column = "labels" if multi else "label"
        kind = pa.list_(pa.string()) if multi else pa.string()
        table = {
            "id": [r[0] for r in rows],
            "text": [" ".join(r[1]) for r in rows],
            column: [[CLASSES[r[2]]] if multi else CLASSES[r[2]] for r in rows],
        }
        schema = pa.schema([("id", pa.string()), ("text", pa.string()), (column, kind)])
        pq.write_table(pa.table(table, schema=schema), out / f"{split}.parquet")
    return planted


@pytest.fixture
def corpus_project(project: Path) -> Path:
    params = project / "params.yaml"
    import yaml

    p = yaml.safe_load(params.read_text(encoding="utf-8"))
    p["datasets"]["corpus"] = {"kind": "local", "language": "en", "path": "corpus.csv"}
    p["datasets"]["corpus_multi"] = {"kind": "local", "language": "en", "path": "corpus.csv", "label_mode": "multi"}
    p["audit"] = {"examples": 1000}  # every finding listed, so the tests see them all
    params.write_text(yaml.safe_dump(p, allow_unicode=True), encoding="utf-8")
    return project


def test_audit_finds_every_planted_fault_and_few_clean_docs(corpus_project: Path) -> None:
    planted = planted_corpus(corpus_project)
    audit(load_config(corpus_project / "params.yaml"), "corpus")
    a = DataAudit.of("corpus")
    assert a is not None
    assert a.docs == {"train": 405, "dev": 60, "test": 120}
    assert a.exact_duplicates.groups == {"train": 5, "dev": 0, "test": 0}
    assert a.exact_duplicates.copies == {"train": 5, "dev": 0, "test": 0}
    conflicts = {g[0].id for g in a.label_conflicts.examples}
    assert a.label_conflicts.groups == 2 and conflicts == set(planted["conflicts"])
    # exactly the planted near-duplicates, and nothing among the clean documents
    assert a.near_duplicates.pairs == {
        "train-train": 0,
        "train-dev": 0,
        "train-test": 5,
        "dev-dev": 0,
        "dev-test": 0,
        "test-test": 0,
    }
    assert a.test_near_train.ids == sorted(planted["near_test"])
    assert all(e.similarity >= a.params.threshold for e in a.near_duplicates.examples)
    # suspected label errors: most flipped labels, in train and test, and few clean documents
    flagged = {e.id for e in a.label_issues.examples}
    flipped = set(planted["flipped"])
    assert len(flagged & flipped) >= 0.8 * len(flipped)
    assert {i.split("-")[0] for i in flagged & flipped} == {"train", "test"}
    clean = sum(N.values()) + 5 - len(flipped)
    assert len(flagged - flipped - set(planted["conflicts"])) <= 0.02 * clean
    assert sum(a.label_issues.counts.values()) == len(flagged)


def test_multi_label_audit_finds_duplicates_and_says_what_it_skips(corpus_project: Path) -> None:
    planted = planted_corpus(corpus_project, multi=True)
    (corpus_project / "data" / "prepared" / "corpus").rename(corpus_project / "data" / "prepared" / "corpus_multi")
    audit(load_config(corpus_project / "params.yaml"), "corpus_multi")
    a = DataAudit.of("corpus_multi")
    assert a is not None and a.label_mode == "multi"
    assert a.label_conflicts.groups == 2
    assert a.test_near_train.ids == sorted(planted["near_test"])
    assert "multi-label" in a.label_issues.skipped and not a.label_issues.counts


def test_a_class_of_one_document_skips_the_label_error_search_instead_of_failing(corpus_project: Path) -> None:
    planted_corpus(corpus_project)
    path = paths.prepared_dir("corpus") / "train.parquet"
    table = pq.read_table(path).to_pydict()
    pq.write_table(
        pa.table({k: v + [{"id": "lone", "text": "a lonely text", "label": "epsilon"}[k]] for k, v in table.items()}),
        path,
    )
    audit(load_config(corpus_project / "params.yaml"), "corpus")
    a = DataAudit.of("corpus")
    assert a is not None and "single document" in a.label_issues.skipped
    assert a.test_near_train.count == 5


def test_audit_refuses_unprepared_data_with_one_error(corpus_project: Path) -> None:
    with pytest.raises(TextbenchError, match="textbench prepare -d corpus"):
        audit(load_config(corpus_project / "params.yaml"), "corpus")
    assert not paths.audit_dir("corpus").exists()


@pytest.mark.parametrize("changed", [0, 2, 12])
def test_minhash_estimates_jaccard_and_lsh_keeps_the_pairs_above_the_threshold(changed: int) -> None:
    """Signature agreement tracks the true Jaccard similarity of the shingle sets, and near_pairs keeps
    a pair exactly when it lies above the threshold: two texts of 200 distinct words, `changed` replaced
    (word bigrams: similarity 1.0, 0.96, 0.78 against a threshold of 0.9)."""
    words = [f"w{i}" for i in range(200)]
    other = list(words)
    for k in range(changed):
        other[5 + 15 * k] = f"x{k}"
    sig, ok = signatures([" ".join(words), " ".join(other)], 2, True, 256, 0)
    truth = (199 - 2 * changed) / (199 + 2 * changed)
    assert ok.all() and abs((sig[0] == sig[1]).mean() - truth) < 0.06
    pairs, _ = near_pairs(sig, ok, 0.9, bands(0.9, 256), 0)
    assert len(pairs) == (truth >= 0.9)


# --- the report section -----------------------------------------------------------------------


def _run(model: str, y_true: np.ndarray, y_pred: np.ndarray, ids: list[str]) -> ModelResult:
    from pipeline.evaluate import classification_metrics

    metrics = classification_metrics(y_true, y_pred, CLASSES) | {"label_mode": "single"}
    predictions = pd.DataFrame({"id": ids, "y_true": y_true, "y_pred": y_pred})
    return ModelResult("corpus", model, "ok", metrics=metrics, predictions=predictions)


def test_report_section_scores_every_model_without_the_leaked_test_docs(corpus_project: Path) -> None:
    """A model right only on the leaked test documents ranks first on the whole test split and last
    without them: the table shows both scores and the moved rank."""
    planted_corpus(corpus_project)
    audit(load_config(corpus_project / "params.yaml"), "corpus")
    a = DataAudit.of("corpus")
    assert a is not None
    test = pd.read_parquet(paths.prepared_dir("corpus") / "test.parquet").sort_values("id")
    ids = test["id"].tolist()
    y = test["label"].map(CLASSES.index).to_numpy()
    leaked = np.isin(ids, a.test_near_train.ids)
    rest = np.flatnonzero(~leaked)  # 115 documents
    memoriser, honest = y.copy(), y.copy()
    memoriser[rest[78:]] = (y[rest[78:]] + 1) % 4  # right on the 5 leaked and 78 of the rest: 83 of 120
    honest[leaked], honest[rest[80:]] = (y[leaked] + 1) % 4, (y[rest[80:]] + 1) % 4  # 80 of the rest only
    rows = [Row(_run("memoriser", y, memoriser, ids)), Row(_run("honest", y, honest, ids))]
    blocks = audit_blocks("corpus", rows, load_config(corpus_project / "params.yaml"))
    text = markdown(blocks)
    assert "Test documents with a copy or a near-duplicate in train: 5 of 120" in text
    assert "Jaccard ≥ 0.8" in text and "train–test 5" in text
    table = next(b for b in blocks if isinstance(b, Table))
    by_model = {r[0].text: [c.text for c in r] for r in table.rows}
    clean = ~leaked

    def macro(pred: np.ndarray, keep: np.ndarray) -> str:
        from sklearn.metrics import f1_score

        return f"{f1_score(y[keep], pred[keep], average='macro', labels=range(4), zero_division=0):.4f}"

    assert by_model["memoriser"][2] == macro(memoriser, np.ones(120, bool))
    assert by_model["memoriser"][4] == macro(memoriser, clean)
    assert by_model["honest"][4] == macro(honest, clean)
    assert by_model["memoriser"][6] == "1 → 2" and by_model["honest"][6] == "2 → 1"
    examples = next(b for b in blocks if isinstance(b, Details))
    assert "suspected label errors" in markdown(examples.blocks)


def test_report_section_without_an_audit_says_how_to_make_one(corpus_project: Path) -> None:
    assert "textbench audit -d corpus" in markdown(
        audit_blocks("corpus", [], load_config(corpus_project / "params.yaml"))
    )


def test_report_section_refuses_a_stale_audit(corpus_project: Path) -> None:
    """An audit of other params (or other prepared data) is not shown: its test ids would score the wrong
    documents; the section says to rerun it."""
    planted_corpus(corpus_project)
    cfg = load_config(corpus_project / "params.yaml")
    audit(cfg, "corpus")
    fresh = markdown(audit_blocks("corpus", [], cfg))
    assert "stale" not in fresh and "near-duplicate in train: 5 of 120" in fresh
    stale = cfg.model_copy(update={"audit": cfg.audit.model_copy(update={"threshold": 0.7})})
    text = markdown(blocks := audit_blocks("corpus", [], stale))
    assert "stale" in text and "textbench audit -d corpus" in text and "near-duplicate in train" not in text
    assert not any(isinstance(b, Table) for b in blocks)


def test_report_section_shows_example_texts_as_written(corpus_project: Path) -> None:
    """Markup in a document (Reuters writes tickers as `<BCS.L>`) is text in both renderings, never a tag."""
    from pipeline.report.render import page

    planted_corpus(corpus_project)
    audit(load_config(corpus_project / "params.yaml"), "corpus")
    path = paths.audit_json("corpus")
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["label_conflicts"]["examples"][0][0]["text"] = "RATE CUT <BCS.L> *now* <script>x</script>"
    path.write_text(json.dumps(raw), encoding="utf-8")
    blocks = audit_blocks("corpus", [], load_config(corpus_project / "params.yaml"))
    assert r"RATE CUT \<BCS.L\> \*now\* \<script\>x\</script\>" in markdown(blocks)
    html_page = page("t", blocks)
    assert "RATE CUT &lt;BCS.L&gt; *now* &lt;script&gt;x&lt;/script&gt;" in html_page and "<script>" not in html_page


def test_report_section_scores_multi_label_runs_by_micro_and_macro_f1(corpus_project: Path) -> None:
    from sklearn.metrics import f1_score

    from pipeline.evaluate import multilabel_metrics

    planted_corpus(corpus_project, multi=True)
    (corpus_project / "data" / "prepared" / "corpus").rename(corpus_project / "data" / "prepared" / "corpus_multi")
    audit(load_config(corpus_project / "params.yaml"), "corpus_multi")
    a = DataAudit.of("corpus_multi")
    assert a is not None
    test = pd.read_parquet(paths.prepared_dir("corpus_multi") / "test.parquet").sort_values("id")
    ids = test["id"].tolist()
    y = np.array([[int(c in labels) for c in CLASSES] for labels in test["labels"]], np.int8)
    pred = y.copy()
    pred[::3, 0] = 1 - pred[::3, 0]
    metrics = multilabel_metrics(y, pred, CLASSES)
    predictions = pd.DataFrame({"id": ids, "y_true": list(y), "y_pred": list(pred)})
    run = ModelResult("corpus_multi", "m", "ok", metrics=metrics, predictions=predictions)
    cfg = load_config(corpus_project / "params.yaml")
    table = next(b for b in audit_blocks("corpus_multi", [Row(run)], cfg) if isinstance(b, Table))
    assert table.headers[1] == "Micro-F1 (test)"
    keep = ~np.isin(ids, a.test_near_train.ids)
    cells = [c.text for c in table.rows[0]]
    assert cells[1] == f"{f1_score(y, pred, average='micro'):.4f}"
    assert cells[3] == f"{f1_score(y[keep], pred[keep], average='micro'):.4f}"
