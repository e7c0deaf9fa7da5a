"""Classification metrics, predictions and cost figures (used by the trainer, report and predict).

Labels are fixed to all classes of the dataset (a class absent from the test split still gets a
row, with zero scores), and undefined precision/recall count as 0 (`zero_division=0`).

Multi-label runs (targets [N, C] 0/1, sigmoid probabilities) predict every label whose probability
is >= a threshold (THRESHOLD, or one tuned on dev: `tune_threshold`; a document may get none) and
are scored by `multilabel_metrics`; their `accuracy` is subset accuracy (the whole label set right),
so single- and multi-label rows share the key.

Calibration (`calibration`, on the test probabilities before and after temperature scaling): expected
calibration error over ECE_BINS equal-width confidence bins (bin b = (b/15, (b+1)/15], the first also
holding 0), ECE = Σ_b n_b/N · |accuracy_b − mean confidence_b|; single-label it is the top-label ECE
(confidence = the highest probability, correct = argmax is the gold class), multi-label it bins every
(document, label) probability against that label's presence. Brier score: mean over documents of
Σ_c (p_c − y_c)² (multi-label: mean over (document, label) pairs); NLL: mean −log p(gold class) (multi-
label: mean binary cross-entropy per label), probabilities floored at float32's smallest normal.
Temperature scaling (`fit_temperature`, `temper`): one T > 0 fitted on dev NLL, probabilities
softmax(logits / T) (multi-label: sigmoid(logit / T), one T for every label, which keeps the 0.5
decisions); the ranking, and so every argmax, is the model's.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax, logit
from sklearn.metrics import accuracy_score, confusion_matrix, hamming_loss, precision_recall_fscore_support

THRESHOLD = 0.5  # multi-label: a label is predicted when its sigmoid probability reaches it
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # what `threshold: dev` chooses from
ECE_BINS = 15  # equal-width confidence bins of the expected calibration error
TINY = float(np.finfo(np.float32).tiny)  # float32 probabilities floor here before a log
RU_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # bytes per ru_maxrss unit (macOS: bytes, Linux: KiB)


def classification_metrics(y_true: Iterable[int], y_pred: Iterable[int], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro/weighted P/R/F1, per-class P/R/F1/support and the confusion matrix."""
    y_true, y_pred = np.asarray(list(y_true)), np.asarray(list(y_pred))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    out |= _averaged(y_true, y_pred, labels, ("macro", "weighted"))
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=list(range(len(labels)))).tolist()
    out["labels"] = list(labels)
    return out


def _averaged(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], averages: tuple[str, ...]) -> dict[str, Any]:
    """`<average>_precision/_recall/_f1` for each of `averages`, and `per_class` P/R/F1/support."""
    idx = list(range(len(labels)))
    out: dict[str, Any] = {}
    for avg in averages:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=idx, average=avg, zero_division=0)
        out |= {f"{avg}_precision": float(p), f"{avg}_recall": float(r), f"{avg}_f1": float(f)}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, average=None, zero_division=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }
    return out


def multilabel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], threshold: float = THRESHOLD
) -> dict[str, Any]:
    """0/1 matrices [N, C] → subset accuracy (`accuracy`), Hamming loss, micro/macro/weighted/samples
    P/R/F1 and per-class P/R/F1/support (no confusion matrix: classes are not exclusive)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int8), np.asarray(y_pred, dtype=np.int8)
    out: dict[str, Any] = {
        "label_mode": "multi",
        "threshold": threshold,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }
    out |= _averaged(y_true, y_pred, labels, ("micro", "macro", "weighted", "samples"))
    out["labels"] = list(labels)
    return out


def decide(probs: np.ndarray, multi: bool, threshold: float = THRESHOLD) -> np.ndarray:
    """Predictions from probabilities: class ids (argmax), or the 0/1 matrix of labels >= `threshold`."""
    return (probs >= threshold).astype(np.int8) if multi else probs.argmax(1)


def score(y_true: np.ndarray, probs: np.ndarray, labels: list[str], threshold: float = THRESHOLD) -> dict[str, Any]:
    """The metrics of `probs` against `y_true`: class ids (single-label) or a 0/1 matrix (multi-label)."""
    if np.ndim(y_true) == 2:
        return multilabel_metrics(y_true, decide(probs, True, threshold), labels, threshold)
    return classification_metrics(y_true, decide(probs, False), labels)


def tune_threshold(y_true: np.ndarray, probs: np.ndarray) -> float:
    """The THRESHOLD_GRID value with the highest micro-F1 of `probs` (the dev split's; ties: nearest 0.5)."""
    f1 = [
        precision_recall_fscore_support(y_true, probs >= t, average="micro", zero_division=0)[2] for t in THRESHOLD_GRID
    ]
    return float(max(zip(f1, -abs(THRESHOLD_GRID - THRESHOLD), THRESHOLD_GRID))[2])


def reliability(confidence: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ECE bin: (mean confidence, accuracy, count) [ECE_BINS] each (NaN where a bin is empty) of
    predictions with these confidences and 0/1 outcomes (`hits` says which, per label mode)."""
    conf, hit = np.asarray(confidence, np.float64).ravel(), np.asarray(hit, np.float64).ravel()
    b = np.clip(np.ceil(conf * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
    count = np.bincount(b, minlength=ECE_BINS)
    with np.errstate(invalid="ignore"):
        return np.bincount(b, conf, ECE_BINS) / count, np.bincount(b, hit, ECE_BINS) / count, count


def hits(y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, outcome) the ECE bins: single-label the top probability and whether argmax is gold,
    multi-label every (document, label) probability and whether the label is gold."""
    if np.ndim(y_true) == 2:
        return probs, y_true
    return probs.max(1), probs.argmax(1) == y_true


def calibration(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """`ece`, `brier` and `nll` of `probs` [N, C] against class ids or a 0/1 matrix (module docstring)."""
    if not len(y_true):
        return {"ece": 0.0, "brier": 0.0, "nll": 0.0}
    mean_conf, accuracy, count = reliability(*hits(y_true, probs))
    full = count > 0
    ece = float((count[full] * np.abs(accuracy[full] - mean_conf[full])).sum() / count.sum())
    multi = np.ndim(y_true) == 2
    onehot = np.asarray(y_true, np.float64) if multi else np.eye(probs.shape[1])[y_true]
    sq = (probs.astype(np.float64) - onehot) ** 2
    brier = float(sq.mean() if multi else sq.sum(1).mean())
    return {"ece": ece, "brier": brier, "nll": nll(logits_of(probs, multi), np.asarray(y_true))}


def logits_of(probs: np.ndarray, multi: bool) -> np.ndarray:
    """Logits [N, C] that give `probs` back (log-probabilities, or per-label log-odds), float64."""
    p = np.clip(probs.astype(np.float64), TINY, None)
    return logit(np.clip(p, None, 1 - np.finfo(np.float32).eps)) if multi else np.log(p)


def temper(probs: np.ndarray, temperature: float, multi: bool) -> np.ndarray:
    """`probs` as the same logits divided by `temperature` would give them (float32)."""
    z = logits_of(probs, multi) / temperature
    return np.exp(log_expit(z) if multi else log_softmax(z, axis=1)).astype(np.float32)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T), or for multi-hot `y` the binary cross-entropy
    of sigmoid(logits / T) (searched over log T in [−7, 7]). 1 when there is nothing to fit: no documents,
    or every decision right (argmax; multi-label, logit ≥ 0), where the NLL falls for ever as T → 0 and
    a fit would turn every confidence into 1."""
    if not y.size or (decide(logits, y.ndim == 2, 0.0) == y).all():
        return 1.0
    result = minimize_scalar(lambda log_t: nll(logits / np.exp(log_t), y), bounds=(-7.0, 7.0), method="bounded")
    return float(np.exp(result.x))


def nll(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean NLL of the true class (y: class ids), or mean binary cross-entropy per label (y multi-hot)."""
    if not y.size:
        return float("nan")
    if y.ndim == 2:
        return float(-(y * log_expit(logits) + (1 - y) * log_expit(-logits)).mean())
    return float(-log_softmax(logits, axis=1)[np.arange(len(y)), y].mean())


def predictions_table(
    ids: list[str],
    texts: list[str],
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    threshold: float = THRESHOLD,
) -> pa.Table:
    """A report dir's predictions.parquet: id, text, label, pred (class names), confidence, probs list<float32>.
    Multi-label: label and pred are list<string> (the gold set, the labels >= `threshold`, in class
    order) and confidence is the highest label probability."""
    multi = np.ndim(y_true) == 2
    pred = decide(probs, multi, threshold)
    probs32 = probs.astype(np.float32)

    def names(rows: np.ndarray) -> pa.Array:
        if multi:
            return pa.array([[labels[j] for j in np.flatnonzero(r)] for r in rows], pa.list_(pa.string()))
        return pa.array([labels[i] for i in rows], pa.string())

    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "text": pa.array(texts, pa.string()),
            "label": names(y_true),
            "pred": names(pred),
            "confidence": pa.array(probs32.max(1), pa.float32()),
            "probs": pa.array(list(probs32), pa.list_(pa.float32())),
        }
    )


def param_count(model: torch.nn.Module) -> dict[str, int]:
    return {
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


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
