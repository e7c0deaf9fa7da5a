"""Error analysis of the best model: its most confidently wrong test documents.

HOOK for token highlights: `ERROR_ANALYSIS` is the function the report calls, with the
signature `(model_dir, predictions_parquet, k) -> list[dict]`. Each dict has `id`, `label`,
`pred`, `confidence` and `text`; an optional `html` key (trusted, already escaped markup, e.g.
tokens highlighted by integrated gradients) is rendered instead of `text` in index.html.
To add highlights, point `ERROR_ANALYSIS` at that richer function (e.g.
`pipeline.serve.explain.error_analysis`); `confidently_wrong` below is the plain version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ErrorAnalysis = Callable[[Path, Path, int], list[dict[str, Any]]]


def confidently_wrong(model_dir: Path, predictions: Path, k: int) -> list[dict[str, Any]]:
    """The `k` wrong test predictions with the highest confidence (ties: by id), no highlights; a
    multi-label run's label sets read "a, b" (wrong = not exactly the gold set)."""
    df = pd.read_parquet(predictions, columns=["id", "text", "label", "pred", "confidence"])
    for col in ("label", "pred"):
        df[col] = [v if isinstance(v, str) else ", ".join(v) for v in df[col]]
    wrong = df[df["label"] != df["pred"]].sort_values(["confidence", "id"], ascending=[False, True], kind="stable")
    return [
        {
            "id": str(r.id),
            "label": str(r.label),
            "pred": str(r.pred),
            "confidence": float(r.confidence),
            "text": str(r.text),
        }
        for r in wrong.head(k).itertuples(index=False)
    ]


def highlighted(model_dir: Path, predictions: Path, k: int) -> list[dict[str, Any]]:
    """`confidently_wrong` plus integrated-gradient token highlights (`html`); needs the trained model."""
    from pipeline.serve.explain import error_analysis

    return error_analysis(model_dir, predictions, k)


ERROR_ANALYSIS: ErrorAnalysis = highlighted
