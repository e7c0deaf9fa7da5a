"""Does a tokenizer cover the corpus? The unknown-token threshold and what it means for a BERT-family row.

MiniLM knows ~244 CJK characters, so THUCNews through it is ~67 % [UNK]: a model trained on that measures
the vocabulary, not the method. Above UNK_WARN the tokenize stage warns, the flow skips BERT-family jobs
(`benchmark.uncovered: skip`) and a trained row is flagged not comparable (kept out of ranking and tests).
"""

from __future__ import annotations

from pipeline.artifacts import TokenizedMeta

UNK_WARN = 0.10  # share of unknown tokens above which a split is flagged


def over_unk_warn(rates: dict[str, float]) -> bool:
    """Whether any split's unknown-token share exceeds UNK_WARN."""
    return max(rates.values(), default=0.0) > UNK_WARN


def uncovered_reason(meta: TokenizedMeta, dataset: str) -> str:
    """Why rows trained on this subword tokenization are not comparable ('' when they are)."""
    rates = meta.unk_rates()
    if meta.scheme != "subword" or not over_unk_warn(rates):
        return ""
    worst = max(rates, key=lambda name: rates[name])
    hint = " (e.g. bert-base-chinese)" if meta.language == "zh" else ""
    return (
        f"encoder '{meta.encoder}' leaves {100 * rates[worst]:.0f}% of {worst} tokens as [UNK]; set "
        f"datasets.{dataset}.encoder to a checkpoint that covers this language{hint}"
    )
