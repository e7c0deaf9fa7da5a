"""Classification metrics, predictions and cost figures (used by the trainer, report and predict).

Labels are fixed to all classes of the dataset (a class absent from the test split still gets a
row, with zero scores), and undefined precision/recall count as 0 (`zero_division=0`).
"""

from __future__ import annotations

import resource
import sys
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

RU_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # bytes per ru_maxrss unit (macOS: bytes, Linux: KiB)


def classification_metrics(y_true: Iterable[int], y_pred: Iterable[int], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro/weighted P/R/F1, per-class P/R/F1/support and the confusion matrix."""
    y_true, y_pred = np.asarray(list(y_true)), np.asarray(list(y_pred))
    idx = list(range(len(labels)))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=idx, average=avg, zero_division=0)
        out |= {f"{avg}_precision": float(p), f"{avg}_recall": float(r), f"{avg}_f1": float(f)}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=idx).tolist()
    out["labels"] = list(labels)
    return out


def predictions_table(ids: list[str], texts: list[str], y_true: np.ndarray, probs: np.ndarray,
                      labels: list[str]) -> pa.Table:
    """A report dir's predictions.parquet: id, text, label, pred (class names), confidence, probs list<float32>."""
    pred = probs.argmax(1)
    probs32 = probs.astype(np.float32)
    return pa.table({
        "id": pa.array(ids, pa.string()),
        "text": pa.array(texts, pa.string()),
        "label": pa.array([labels[i] for i in y_true], pa.string()),
        "pred": pa.array([labels[i] for i in pred], pa.string()),
        "confidence": pa.array(probs32.max(1), pa.float32()),
        "probs": pa.array(list(probs32), pa.list_(pa.float32())),
    })


def param_count(model: torch.nn.Module) -> dict[str, int]:
    return {"num_params": sum(p.numel() for p in model.parameters()),
            "num_trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


class PeakMemory:
    """Peak memory in MB: on CUDA the allocator's peak since construction, on CPU the process's peak
    resident set (`ru_maxrss`, which the kernel keeps for the process's whole life)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    @property
    def mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * RU_MAXRSS_UNIT / 2**20
