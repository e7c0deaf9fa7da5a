"""Honest comparisons from saved test predictions: bootstrap CIs, paired tests, seed spread.

All resampling is seeded: the same (n, seed) draws the same bootstrap samples, so two models
scored on the same test ids in the same order are resampled *paired*, and their per-sample
differences form a paired bootstrap distribution.

Gold and predictions are class ids [n] (single-label) or 0/1 matrices [n, C] (multi-label); the
scores are computed from per-class counts either way (for single-label, micro-F1 = accuracy).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

CHUNK = 200  # bootstrap samples scored at once (bounds memory to CHUNK × n counts)


@dataclass(frozen=True)
class Bootstrap:
    """Per-resample scores of one model (length = number of bootstrap samples)."""

    accuracy: np.ndarray  # multi-label: subset accuracy
    macro_f1: np.ndarray
    micro_f1: np.ndarray


@dataclass(frozen=True)
class McNemar:
    """Paired correct/incorrect table: b = only A right, c = only B right; exact two-sided p."""

    b: int
    c: int
    p: float


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all `n_classes` labels (absent ones count 0, like sklearn zero_division=0)."""
    return f1_scores(y_true, y_pred, n_classes)[0]


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[float, float]:
    """Macro-F1 (as `macro_f1`) and micro-F1 of the whole sample."""
    macro, micro = _f1(np.ones((1, len(y_true))), *_indicators(y_true, y_pred, n_classes))
    return float(macro[0]), float(micro[0])


def bootstrap(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_boot: int, seed: int) -> Bootstrap:
    """Accuracy, macro-F1 and micro-F1 on `n_boot` resamples (with replacement) of the test set."""
    n = len(y_true)
    if n == 0:
        return Bootstrap(np.zeros(0), np.zeros(0), np.zeros(0))
    truth, pred = _indicators(y_true, y_pred, n_classes)
    correct = (truth == pred).all(axis=1).astype(np.float64)
    rng = np.random.default_rng(seed)
    accs, macros, micros = [np.zeros(0)], [np.zeros(0)], [np.zeros(0)]
    for start in range(0, n_boot, CHUNK):
        rows = min(CHUNK, n_boot - start)
        draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        weights = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)
        accs.append(weights @ correct / n)
        macro, micro = _f1(weights, truth, pred)
        macros.append(macro)
        micros.append(micro)
    return Bootstrap(np.concatenate(accs), np.concatenate(macros), np.concatenate(micros))


def _indicators(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 matrices [n, C]: one-hot class ids, or the multi-label matrices as given."""
    if np.ndim(y_true) == 2:
        return np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    eye = np.eye(n_classes)
    return eye[y_true], eye[y_pred]


def _f1(weights: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and micro-F1 for each row of sample weights [rows, n]."""
    tp = weights @ (truth * pred)
    denom = weights @ truth + weights @ pred  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = denom.sum(axis=1)
    return f1.mean(axis=1), np.divide(2 * tp.sum(axis=1), total, out=np.zeros_like(total), where=total > 0)


def interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval holding `confidence` of the bootstrap distribution."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_bootstrap_p(diff: np.ndarray) -> float:
    """Two-sided p-value that the paired difference is zero (share of resamples crossing 0, ×2)."""
    return float(min(1.0, 2 * min(np.mean(diff <= 0), np.mean(diff >= 0))))


def format_p(p: float, alpha: float, resamples: int = 0) -> str:
    """The one p-value text of the report, its sentences, the diff and the card: 4 decimals (1 significant
    digit in e-notation below 1e-4), ✱ when below `alpha`. A bootstrap p over `resamples` resamples is
    never printed below its resolution 2/resamples: 0 there reads `< 2/resamples` (e.g. `< 0.002`), and
    an exact p that underflows to 0 reads `< 1e-300`."""
    floor = 2 / resamples if resamples else 1e-300
    text = f"< {floor:.2g}" if p < floor else f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"
    return f"{text} ✱" if p < alpha else text


def p_phrase(p: float, alpha: float, resamples: int = 0) -> str:
    """`format_p` in a sentence: `p = 0.0310` or `p < 0.002 ✱`."""
    text = format_p(p, alpha, resamples)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's test: scipy's exact two-sided binomial test of the discordant pairs against 1/2
    (milliseconds even at 10⁸ pairs, so no chi² approximation is needed)."""
    a, o = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b, c = int(np.sum(a & ~o)), int(np.sum(~a & o))
    return McNemar(b, c, binomtest(b, b + c, 0.5).pvalue if b + c else 1.0)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
