"""The report's figures as PNG bytes (matplotlib Figure objects on the Agg canvas, no pyplot).

PNG metadata is stripped of the matplotlib version, so the same inputs give the same bytes.
Chinese class names need a CJK font (fonts-noto-cjk or fonts-wqy-microhei); without one the
figures label classes by index and `needs_cjk_font` tells the report to say so.
"""

from __future__ import annotations

import io
from functools import lru_cache

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager, ticker
from matplotlib.figure import Figure

from pipeline import evaluate
from pipeline.report.aggregate import ModelResult
from pipeline.report.learning import Point

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "AR PL UMing CN",
)
COLORS = matplotlib.colormaps["tab10"].colors


@lru_cache(maxsize=1)
def _cjk_font() -> str | None:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def needs_cjk_font(labels: list[str]) -> bool:
    """True when labels have CJK characters and no CJK font is installed (figures use indices)."""
    return _cjk_font() is None and any(ord(ch) >= 0x2E80 for label in labels for ch in label)


def _style() -> dict[str, object]:
    return {
        "font.family": ["DejaVu Sans", *([_cjk_font()] if _cjk_font() else [])],
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }


def _names(labels: list[str]) -> list[str]:
    return [f"#{i}" for i in range(len(labels))] if needs_cjk_font(labels) else list(labels)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def confusion(run: ModelResult) -> bytes:
    """Confusion matrix, colour = row-normalised (recall), counts printed when it stays legible."""
    labels = run.metrics["labels"]
    cm = np.asarray(run.metrics["confusion_matrix"], dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = min(11.0, max(4.0, 0.32 * len(labels) + 2))
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(side + 1, side))
        ax = fig.add_subplot()
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.grid(False)
        ticks = range(len(labels))
        ax.set_xticks(ticks, _names(labels), rotation=90, fontsize=7)
        ax.set_yticks(ticks, _names(labels), fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{run.model} — confusion (colour: share of true class)")
        if len(labels) <= 25:
            for i, j in zip(*np.nonzero(cm)):
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.6 else "black",
                )
        fig.colorbar(im, ax=ax, fraction=0.04)
        return _png(fig)


def per_class_f1(runs: list[ModelResult], labels: list[str]) -> bytes:
    """Heatmap of per-class F1: models (rows) × `labels` (columns)."""
    ok = [r for r in runs if r.ok]
    grid = np.array(
        [[r.metrics["per_class"].get(lab, {}).get("f1", np.nan) for lab in labels] for r in ok], dtype=float
    )
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(max(5.0, 0.42 * len(labels) + 2.5), 0.45 * len(ok) + 1.8))
        ax = fig.add_subplot()
        im = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
        ax.grid(False)
        ax.set_xticks(range(len(labels)), _names(labels), rotation=90, fontsize=7)
        ax.set_yticks(range(len(ok)), [r.model for r in ok])
        ax.set_title("per-class F1 on test")
        if grid.size <= 600:
            for (i, j), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.03)
        return _png(fig)


def cost(runs: list[ModelResult]) -> bytes | None:
    """Accuracy vs training time (log x); marker area ∝ parameter count. None without cost data."""
    ok = [r for r in runs if r.ok and _num(r.metrics.get("train_time_s")) and _num(r.metrics.get("num_params"))]
    if not ok:
        return None
    biggest = max(float(r.metrics["num_params"]) for r in ok)
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(6.5, 4.2))
        ax = fig.add_subplot()
        for i, r in enumerate(ok):
            x, y = float(r.metrics["train_time_s"]), float(r.metrics["accuracy"])
            ax.scatter(
                [x],
                [y],
                s=40 + 900 * float(r.metrics["num_params"]) / biggest,
                color=COLORS[i % 10],
                alpha=0.6,
                edgecolors="black",
                linewidths=0.5,
            )
            ax.annotate(r.model, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xscale("log")
        _plain_ticks(ax.xaxis)
        ax.set_xlabel("training time (s, log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_title("accuracy vs cost (marker area ∝ parameters)")
        ax.margins(0.15)
        return _png(fig)


def curves(runs: list[ModelResult]) -> bytes | None:
    """Dev macro-F1 and train/dev loss against the optimizer step, one colour per model."""
    with_curves = [(i, r) for i, r in enumerate(runs) if r.ok and r.curves is not None and not r.curves.empty]
    if not with_curves:
        return None
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(11, 3.8))
        f1_ax, loss_ax = fig.subplots(1, 2)
        for i, r in with_curves:
            c: pd.DataFrame = r.curves  # type: ignore[assignment]
            color = COLORS[i % 10]
            if "dev_macro_f1" in c:
                f1_ax.plot(c["step"], c["dev_macro_f1"], color=color, label=r.model, marker=".", markersize=3)
            if "dev_loss" in c:
                loss_ax.plot(c["step"], c["dev_loss"], color=color, label=f"{r.model} dev")
            if "train_loss" in c:
                loss_ax.plot(c["step"], c["train_loss"], color=color, linestyle=":", alpha=0.8)
        f1_ax.set(xlabel="step", ylabel="dev macro-F1", title="dev macro-F1")
        loss_ax.set(xlabel="step", ylabel="loss", title="loss (solid: dev, dotted: train)")
        loss_ax.set_yscale("log")
        _plain_ticks(loss_ax.yaxis)
        f1_ax.legend(fontsize=7, loc="lower right")
        return _png(fig)


def reliability(runs: list[ModelResult]) -> bytes:
    """Reliability diagram of the runs' test probabilities (after temperature scaling, as predict gives
    them): per ECE bin (pipeline/evaluate.py), accuracy against mean confidence, marker area ∝ the bin's
    share of predictions; the diagonal is perfect calibration."""
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(4.8, 4.4))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        for i, r in enumerate(runs):
            conf, acc, count = evaluate.reliability(*evaluate.hits(r.targets()[0], r.probs()))
            full = count > 0
            color = COLORS[i % 10]
            ece = r.metrics["calibration"]["after"]["ece"]
            ax.plot(conf[full], acc[full], color=color, label=f"{r.model} (ECE {ece:.3f})")
            ax.scatter(conf[full], acc[full], s=8 + 200 * count[full] / count.sum(), color=color, alpha=0.7)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title="reliability (test)")
        ax.legend(fontsize=7, loc="upper left")
        return _png(fig)


def _plain_ticks(axis: matplotlib.axis.Axis) -> None:
    """Log-axis tick labels as 20, 50, 100 instead of 2×10¹."""
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def _num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def learning(points: list[Point], metric: str) -> bytes:
    """Learning curves: test `metric` against train documents (log axis), one colour per model, the
    bootstrap band shaded."""
    with matplotlib.rc_context(_style()):
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        for i, model in enumerate(dict.fromkeys(p.model for p in points)):
            mine = [p for p in points if p.model == model]
            x = [p.train_docs for p in mine]
            color = COLORS[i % 10]
            ax.plot(x, [p.f1 for p in mine], color=color, marker="o", markersize=3, label=model)
            ax.fill_between(x, [p.lo for p in mine], [p.hi for p in mine], color=color, alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        _plain_ticks(ax.xaxis)
        label = metric.replace("_", "-").replace("f1", "F1")
        ax.set(xlabel="train documents", ylabel=f"test {label}", title=f"learning curves (test {label})")
        ax.legend(fontsize=7, loc="lower right")
        return _png(fig)
