"""The report's "Data audit" section of one dataset: what data/audit/<ds>/audit.json found (pipeline/audit.py),
and every model's test scores on the test documents without a copy or near-duplicate in train beside
its scores on the whole test split, so a reader sees how much leakage moves the ranking."""

from __future__ import annotations

import html
import re

from pipeline.artifacts import AuditDoc, DataAudit
from pipeline.audit import audit_fingerprint
from pipeline.config import Config
from pipeline.evaluate import classification_metrics, multilabel_metrics
from pipeline.paths import SPLITS
from pipeline.report.compare import Row
from pipeline.report.render import Block, Bullets, Cell, Details, Heading, Para, Table


def audit_blocks(ds: str, rows: list[Row], cfg: Config) -> list[Block]:
    """Heading, the findings with their rules, the deduplicated-test table and the examples; one line
    instead when there is no audit, or when it audited other prepared data or params (its test ids
    would score the wrong documents)."""
    audit = DataAudit.of(ds)
    if audit is None or getattr(audit, "fingerprint", None) != audit_fingerprint(cfg, ds):
        state = (
            "No data audit yet"
            if audit is None
            else "⚠ The data audit is stale (of other prepared data or audit params)"
        )
        return [
            Heading(3, "Data audit"),
            Para(f"{state} (data/audit/{ds}/audit.json): run `textbench audit -d {ds}` (or `dvc repro`)."),
        ]
    return [
        Heading(3, "Data audit"),
        Bullets([(line, warn) for line, warn in finding_lines(audit)]),
        *dedup_blocks(audit, rows),
        *example_blocks(audit),
    ]


def finding_lines(audit: DataAudit) -> list[tuple[str, bool]]:
    """(line, is_warning) per finding: counts with the rule and threshold that found them."""
    p, ex, near = audit.params, audit.exact_duplicates, audit.near_duplicates
    per_split = ", ".join(f"{s} {ex.groups.get(s, 0)} ({ex.copies.get(s, 0)} extra)" for s in SPLITS)
    shingle = ", ".join(f"{n} {'words' if lang == 'en' else 'characters'} ({lang})" for lang, n in p.shingle.items())
    test = audit.docs.get("test", 0)
    leak = audit.test_near_train.count
    lines = [
        (
            f"Exact duplicates (equal after prepare's normalisation), groups per split: {per_split}; across splits: "
            f"{ex.across_splits} (prepare keeps a text only in its highest split: card.json duplicates_removed).",
            False,
        ),
        (
            f"Identical texts with different labels: {audit.label_conflicts.groups} groups "
            f"({audit.label_conflicts.docs} documents).",
            audit.label_conflicts.groups > 0,
        ),
        (
            f"Near-duplicate pairs of distinct texts (Jaccard ≥ {p.threshold:g} of shingles of {shingle}, estimated "
            f"from {p.num_perm} MinHash values, LSH bands of {p.lsh_rows_per_band} rows): "
            + ", ".join(f"{k.replace('-', '–')} {v:,}" for k, v in near.pairs.items())
            + f"; with different labels: {near.different_labels}.",
            False,
        ),
        (
            f"Test documents with a copy or a near-duplicate in train: {leak:,} of {test:,}"
            + (f" ({leak / test:.1%})" if test else "")
            + ".",
            leak > 0,
        ),
    ]
    issues = audit.label_issues
    if issues.skipped:
        lines.append((f"Suspected label errors: not searched ({issues.skipped}).", False))
    else:
        lines.append(
            (
                "Suspected label errors (confident learning on "
                f"{issues.folds}-fold out-of-fold TF-IDF + LinearSVC probabilities): "
                + ", ".join(f"{s} {issues.counts.get(s, 0):,} of {audit.docs.get(s, 0):,}" for s in SPLITS)
                + ".",
                False,
            )
        )
    return lines


def dedup_blocks(audit: DataAudit, rows: list[Row]) -> list[Block]:
    """Every comparable model's scores on the whole test split and on the test documents without a copy
    or near-duplicate in train, with both rankings by macro-F1."""
    runs = [r.run for r in rows if r.run.comparable and r.run.predictions is not None]
    if not runs:
        return []
    leaked = set(audit.test_near_train.ids)
    multi = any(r.multi for r in runs)
    first = "Micro-F1" if multi else "Accuracy"
    scores = {}
    for run in runs:
        assert run.predictions is not None
        keep = ~run.predictions["id"].astype(str).isin(leaked).to_numpy()
        y_true, y_pred = run.targets()
        labels = run.metrics["labels"]
        metric = multilabel_metrics if multi else classification_metrics
        full, clean = metric(y_true, y_pred, labels), metric(y_true[keep], y_pred[keep], labels)
        key = "micro_f1" if multi else "accuracy"
        scores[run.model] = (full[key], full["macro_f1"], clean[key], clean["macro_f1"], int(keep.sum()), len(keep))
    rank_full = _ranks({m: s[1] for m, s in scores.items()})
    rank_clean = _ranks({m: s[3] for m, s in scores.items()})
    table = [
        [
            Cell(m),
            Cell(f"{s[0]:.4f}"),
            Cell(f"{s[1]:.4f}"),
            Cell(f"{s[2]:.4f}"),
            Cell(f"{s[3]:.4f}"),
            Cell(f"{100 * (s[3] - s[1]):+.2f}"),
            Cell(f"{rank_full[m]} → {rank_clean[m]}", alert=rank_full[m] != rank_clean[m]),
        ]
        for m, s in scores.items()
    ]
    kept, total = next(iter(scores.values()))[4:]
    return [
        Para(
            f"Scores without leakage: each model on the {kept:,} of {total:,} test documents with no copy or "
            f"near-duplicate in train, beside the whole test split; rank by macro-F1 (red: the ranking moves)."
        ),
        Table(
            [
                "Model",
                f"{first} (test)",
                "Macro-F1 (test)",
                f"{first} (no near-dup in train)",
                "Macro-F1 (no near-dup in train)",
                "Δ macro-F1 (points)",
                "Rank",
            ],
            table,
        ),
    ]


def _ranks(values: dict[str, float]) -> dict[str, int]:
    """1 = highest; equal values share the better rank."""
    ordered = sorted(values.values(), reverse=True)
    return {m: ordered.index(v) + 1 for m, v in values.items()}


def example_blocks(audit: DataAudit) -> list[Block]:
    """The most similar cross-split near-duplicates, the label conflicts and the least self-confident
    suspected label errors, in one collapsible."""
    blocks: list[Block] = []
    near = audit.near_duplicates.examples
    if near:
        blocks.append(
            Table(
                ["Similarity", "A", "B"],
                [[Cell(f"{e.similarity:.3f}"), _doc(e.a), _doc(e.b)] for e in near],
                "near-duplicates across splits, most similar first",
            )
        )
    conflicts = audit.label_conflicts.examples
    if conflicts:
        blocks.append(
            Table(
                ["Text", "Documents (split: label)"],
                [[_text(g[0].text), _text("; ".join(f"{d.id} ({d.split}: {d.label})" for d in g))] for g in conflicts],
                "identical texts with different labels",
            )
        )
    issues = audit.label_issues.examples
    if issues:
        blocks.append(
            Table(
                ["Id", "Split", "Label", "Suggested", "p(label)", "Text"],
                [
                    [Cell(e.id), Cell(e.split), Cell(e.label), Cell(e.suggested), Cell(f"{e.p_label:.2g}")]
                    + [_text(e.text)]
                    for e in issues
                ],
                "suspected label errors, least self-confident first",
            )
        )
    return [Details("Data audit examples", blocks)] if blocks else []


def _doc(d: AuditDoc) -> Cell:
    return _text(f"{d.id} ({d.split}: {d.label}) {d.text}")


_MARKDOWN = re.compile(r"([\\`*_\[\]<>#])")


def _text(text: str) -> Cell:
    """A document's text as a cell, shown as written: Markdown's markup characters and HTML tags
    (Reuters writes tickers as `<BCS.L>`) escaped in comparison.md, HTML-escaped in index.html."""
    return Cell(_MARKDOWN.sub(r"\\\1", text), raw_html=html.escape(text), wrap=True)
