"""Does a tokenizer cover the corpus? The unknown-token threshold and what it means for a BERT-family row.

MiniLM knows ~244 CJK characters, so THUCNews through it is ~67 % [UNK]: a model trained on that measures
the vocabulary, not the method. Above UNK_WARN the tokenize stage warns, the flow skips BERT-family jobs
(`benchmark.uncovered: skip`) and a trained row is flagged not comparable (kept out of ranking and tests).
"""

from __future__ import annotations

from typing import Any

UNK_WARN = 0.10  # share of unknown tokens above which a split is flagged


def uncovered_reason(meta: dict[str, Any], dataset: str) -> str:
    """Why rows trained on this subword tokenization are not comparable ('' when they are)."""
    if meta.get("scheme") != "subword":
        return ""
    rates = {name: float(st["unk_rate"]) for name, st in meta.get("splits", {}).items()}
    worst = max(rates, key=lambda name: rates[name], default=None)
    if worst is None or rates[worst] <= UNK_WARN:
        return ""
    hint = " (e.g. bert-base-chinese)" if meta.get("language") == "zh" else ""
    return (f"encoder '{meta.get('encoder')}' leaves {100 * rates[worst]:.0f}% of {worst} tokens as [UNK]; set "
            f"datasets.{dataset}.encoder to a checkpoint that covers this language{hint}")
