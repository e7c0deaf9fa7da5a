"""Fitting a linear baseline (family `linear`): TF-IDF features → scikit-learn, weights → the torch module.

The n-gram vocabulary and idf are fitted on train only (`min_df`, `max_features`, sklearn's smooth
idf ln((1 + n) / (1 + df)) + 1). The feature matrices come from the module's own `features` (the
computation inference runs), as scipy CSR. For each C of `c_grid` scikit-learn fits LinearSVC
(`loss: squared_hinge`) or one-vs-rest LogisticRegression (`loss: log`); the C with the best dev
`select_metric` is kept. Probabilities are the softmax of the decision scores divided by one
temperature fitted on dev NLL (a scalar calibration: the ranking is the classifier's). One curves
row per C: dev accuracy/macro-F1 and the train/dev NLL of the calibrated probabilities.

Multi-label (multi-hot targets): one binary classifier per label (one-vs-rest), probabilities the
sigmoid of score / T with T fitted on dev binary cross-entropy, so the default 0.5 threshold is
the classifier's own decision (score ≥ 0; `threshold: dev` may choose another); `select_metric:
accuracy` selects on dev micro-F1, as for the neural models. A label constant in train is never (or
always) predicted, and takes no part in the calibration.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import log_expit, log_softmax

from pipeline.config import TrainConfig
from pipeline.errors import TextbenchError
from pipeline.evaluate import fit_temperature, nll, score
from pipeline.models.linear import SENTINEL
from pipeline.models.registry import Classifier
from pipeline.train.checkpoint import TrainState
from pipeline.train.data import Split, eval_batches

BATCH = 256  # documents per feature batch
ABSENT_BIAS = -1e4  # a class without train documents: never predicted


def fit_linear(
    net: Classifier, train: Split, dev: Split, labels: list[str], tc: TrainConfig, seed: int, state: TrainState
) -> bool:
    """Fit `net` (a TfidfEmbedder + LinearHead Classifier, on the CPU) in place and record the fit in `state`
    (a step per C, best_step = the chosen C's, stop_reason `solver`); returns whether the chosen C's
    solver converged (stopped before `max_iter`)."""
    started = time.perf_counter()
    emb, head = net.embedder, net.head
    fit_vocabulary(emb, train)
    x_train, x_dev = matrix(emb, train), matrix(emb, dev)
    trained = _varies(train.labels, len(labels))
    best_params, converged = None, False
    for i, c in enumerate(head.c_grid):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: recorded in metrics.json instead
            try:
                weight, bias, n_iter = _fit(head, c, tc.class_weights, seed, x_train, train.labels, len(labels))
            except ValueError as e:  # e.g. a single class in train
                raise TextbenchError(f"linear model fit failed: {e}") from None
        dev_scores, train_scores = x_dev @ weight.T + bias, x_train @ weight.T + bias
        temperature = fit_temperature(*_learnable(dev_scores, dev.labels, trained))
        m = score(dev.labels, _probs(dev_scores / temperature, dev.multi), labels)
        dev_loss = nll(*_learnable(dev_scores / temperature, dev.labels, trained))
        row = {
            "step": i + 1,
            "train_loss": nll(train_scores / temperature, train.labels),
            "dev_loss": dev_loss,
            "dev_accuracy": m["accuracy"],
            "dev_macro_f1": m["macro_f1"],
            **({"dev_micro_f1": m["micro_f1"]} if dev.multi else {}),
        }
        state.curves.append(row)
        metric = "micro_f1" if dev.multi and tc.select_metric == "accuracy" else tc.select_metric
        value = -dev_loss if metric == "loss" else row[f"dev_{metric}"]
        if value > state.best_score:
            state.best_score, state.best_step, best_params = value, i + 1, (weight, bias, temperature)
            converged = n_iter < head.max_iter
    weight, bias, temperature = best_params
    with torch.no_grad():
        head.linear.weight.data = torch.from_numpy(weight.astype(np.float32))
        head.linear.in_features = weight.shape[1]
        head.linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
        head.temperature.fill_(temperature)
    state.step, state.samples, state.stop_reason = len(head.c_grid), len(train) * len(head.c_grid), "solver"
    state.wall_s = state.compute_s = time.perf_counter() - started
    return converged


def _classifier(loss: str, c: float, max_iter: int, balanced: bool, seed: int):
    """LinearSVC, or one-vs-rest LogisticRegression by liblinear's dual solver (Reuters, 116k features:
    5-10 s per C where multinomial lbfgs took 100 s; test accuracy 0.928 vs 0.921 at C=100)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    class_weight = "balanced" if balanced else None
    if loss == "squared_hinge":
        return LinearSVC(C=c, max_iter=max_iter, class_weight=class_weight, random_state=seed)
    return OneVsRestClassifier(
        LogisticRegression(
            C=c, solver="liblinear", dual=True, max_iter=max_iter, class_weight=class_weight, random_state=seed
        )
    )


def _fit(
    head, c: float, balanced: bool, seed: int, x: sp.csr_matrix, y: np.ndarray, num_labels: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(weight [C, F], bias [C], most solver iterations) at `c`: one classifier over the classes, or (y
    multi-hot [N, C]) one binary classifier per label; a label constant in train gets no weights and
    ∓ABSENT_BIAS (never / always predicted)."""
    if y.ndim == 1:
        clf = _classifier(head.loss, c, head.max_iter, balanced, seed).fit(x, y)
        return (*_full_weights(clf, num_labels, x.shape[1]), _parts(clf)[2])
    weight, bias, n_iter = np.zeros((num_labels, x.shape[1])), np.zeros(num_labels), 0
    for j in range(num_labels):
        target = y[:, j].astype(np.int64)
        if target.min() == target.max():
            bias[j] = -ABSENT_BIAS if target[0] else ABSENT_BIAS
            continue
        coef, intercept, iters = _parts(_classifier(head.loss, c, head.max_iter, balanced, seed).fit(x, target))
        weight[j], bias[j], n_iter = coef[0], intercept[0], max(n_iter, iters)
    return weight, bias, n_iter


def _parts(clf) -> tuple[np.ndarray, np.ndarray, int]:
    """(coef [K, F], intercept [K], solver iterations) of a fitted LinearSVC or one-vs-rest classifier."""
    fitted = getattr(clf, "estimators_", [clf])
    coef = np.vstack([np.asarray(e.coef_, dtype=np.float64) for e in fitted])
    intercept = np.concatenate([np.asarray(e.intercept_, dtype=np.float64).ravel() for e in fitted])
    return coef, intercept, int(max(np.max(e.n_iter_) for e in fitted))


def _full_weights(clf, num_labels: int, num_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight [C, F], bias [C]) over every class: sklearn's rows at their classes' places; its single
    binary row s becomes the two logits (−s/2, s/2); a class absent from train gets ABSENT_BIAS."""
    coef, intercept, _ = _parts(clf)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    weight = np.zeros((num_labels, num_features))
    bias = np.full(num_labels, ABSENT_BIAS)
    weight[clf.classes_], bias[clf.classes_] = coef, intercept
    return weight, bias


def fit_vocabulary(emb, train: Split) -> None:
    """The n-gram keys with document frequency ≥ min_df (the `max_features` most frequent, when set),
    sorted, and their smoothed idf → the embedder's buffers."""
    doc_keys, all_keys = [], []
    for rows in eval_batches(train, BATCH):
        ids, mask = train.collate(rows, 0)
        key, ok = emb.ngram_keys(ids, mask)
        row = torch.arange(len(rows)).unsqueeze(1).expand_as(key)
        pairs = np.unique(np.stack([row[ok].numpy(), key[ok].numpy()], 1), axis=0)
        doc_keys.append(pairs[:, 1])
        all_keys.append(key[ok].numpy())
    keys, df = np.unique(np.concatenate(doc_keys), return_counts=True)
    keep = df >= emb.min_df
    if emb.max_features and keep.sum() > emb.max_features:
        terms, counts = np.unique(np.concatenate(all_keys), return_counts=True)  # same keys, same order
        order = np.lexsort((terms, -counts))  # most frequent first, then by key
        chosen = np.zeros(len(terms), bool)
        chosen[[i for i in order if keep[i]][: emb.max_features]] = True
        keep = chosen
    keys, df = keys[keep], df[keep]
    if not len(keys):
        raise TextbenchError(
            "linear model: no n-gram of the train split reaches min_df; lower models.<name>.arch.min_df"
        )
    idf = np.log((1 + len(train)) / (1 + df)) + 1
    emb.keys = torch.from_numpy(np.append(keys, SENTINEL).astype(np.int64))
    emb.idf = torch.from_numpy(idf.astype(np.float32))


@torch.no_grad()
def matrix(emb, split: Split) -> sp.csr_matrix:
    """The split's TF-IDF rows [N, F] as computed by `emb.features` (repeated n-grams summed)."""
    rows_, cols, vals = [], [], []
    for rows in eval_batches(split, BATCH):
        ids, mask = split.collate(rows, 0)
        idx, weight = emb.features(ids, mask)
        nz = weight != 0
        rows_.append(np.broadcast_to(rows[:, None], idx.shape)[nz.numpy()])
        cols.append(idx[nz].numpy())
        vals.append(weight[nz].numpy())
    f = emb.out_dim
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows_), np.concatenate(cols))), shape=(len(split), f)
    ).tocsr()


def _varies(y: np.ndarray, num_labels: int) -> np.ndarray:
    """Which classes the classifier learnt [C] bool: single-label, those with train documents; multi-label,
    the labels neither absent from nor on every train document (the others get ±ABSENT_BIAS)."""
    if y.ndim == 1:
        return np.bincount(y, minlength=num_labels) > 0
    return (y.min(0) != y.max(0)) if len(y) else np.zeros(num_labels, bool)


def _learnable(scores: np.ndarray, y: np.ndarray, trained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dev scores and targets a calibration may use: single-label, the documents of trained classes;
    multi-label, the trained labels' columns. One dev document of a class never seen in train (its
    ABSENT_BIAS logit) would otherwise push the temperature to its bound and flatten every probability."""
    if y.ndim == 2:
        return scores[:, trained], y[:, trained]
    keep = trained[y]
    return scores[keep], y[keep]


def _probs(logits: np.ndarray, multi: bool) -> np.ndarray:
    """What the trainer's `predict` returns for these logits: sigmoid per label, or softmax over classes."""
    return np.exp(log_expit(logits)) if multi else np.exp(log_softmax(logits, axis=1))
