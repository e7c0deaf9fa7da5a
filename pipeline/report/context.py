"""What a reader must know before trusting a table: the dataset card and tokenizer warnings.

Reads `data/prepared/<ds>/card.json` and `data/tokenized/<ds>/<scheme>/meta.json` (when present)
through their typed artifacts and turns their fields into short lines.
"""

from __future__ import annotations

from pipeline import paths
from pipeline.artifacts import DroppedClass, TokenizedMeta, read_card, tokenizer_fix
from pipeline.config import MaxLenAutoConfig
from pipeline.families import SCHEMES, WHOLE_DOCUMENT
from pipeline.tokenize.coverage import UNK_WARN, over_unk_warn


def card_lines(dataset: str) -> list[str]:
    """Summary of card.json: classes, documents per split, what was dropped or deduplicated."""
    card = read_card(dataset)
    if card is None:
        return [f"no dataset card (data/prepared/{dataset}/card.json not found)"]
    lines = [f"{len(card.labels)} classes kept"]
    lines += [f"{split}: {total:,} documents" for split, total in card.split_totals().items()]
    missing = {s: labels for s, labels in card.classes_missing_from_split.items() if labels}
    lines += [f"classes_missing_from_split.{s}: {_short(labels)}" for s, labels in sorted(missing.items())]
    if card.dropped_classes:
        lines.append(f"dropped_classes: {_dropped(card.dropped_classes)}")
    if any(card.duplicates_removed.values()):
        lines.append("duplicates_removed: " + _short([f"{s} ({n})" for s, n in card.duplicates_removed.items()]))
    if card.empty_docs_dropped:
        lines.append(f"empty_docs_dropped: {card.empty_docs_dropped}")
    counters = {k: v for k, v in card.reader.items() if isinstance(v, int) and not isinstance(v, bool) and v}
    if counters:
        lines.append("reader: " + _short([f"{k} {v:,}" for k, v in sorted(counters.items())]))
    return lines


def tokenizer_lines(dataset: str) -> list[tuple[str, bool]]:
    """(line, is_warning) per scheme: [UNK] rate and truncated share by split, and any warnings."""
    out: list[tuple[str, bool]] = []
    for scheme in SCHEMES:
        directory = paths.tokenized_dir(dataset, scheme)
        meta = TokenizedMeta.read_if_present(directory / paths.META, tokenizer_fix(directory))
        if meta is None:
            continue
        who = f"{scheme} ({meta.encoder or meta.zh_mode or meta.language})"
        out += [(f"{who}: {w}", True) for w in meta.warnings if w]
        splits = [(s, meta.splits[s]) for s in paths.SPLITS if s in meta.splits]
        if not splits:
            continue
        bad = over_unk_warn(meta.unk_rates())
        note = (
            f" — above {UNK_WARN:.0%}: the encoder does not cover this language; do not trust these scores"
            if bad
            else ""
        )
        out.append(
            (f"{who}: [UNK] share of tokens: {', '.join(f'{s} {st.unk_rate:.1%}' for s, st in splits)}{note}", bad)
        )
        out.append(
            (
                f"{who}: max_len {meta.max_len} ({max_len_origin(meta)}); documents truncated to it: "
                f"{', '.join(f'{s} {st.truncated_share:.1%}' for s, st in splits)}",
                False,
            )
        )
        if meta.bag_max_len is not None:
            longest = max(st.length_before_truncation.get("max", 0) for _, st in splits)
            out.append(
                (
                    f"{who}: {', '.join(WHOLE_DOCUMENT)} read whole documents: up to bag_max_len "
                    f"{meta.bag_max_len} tokens (longest document: {longest:,})",
                    False,
                )
            )
    return out


def max_len_origin(meta: TokenizedMeta) -> str:
    """How the scheme's max_len came about: params.yaml, or chosen from the train lengths."""
    auto = meta.max_len_auto
    if auto is None:
        return "set in params.yaml"
    return (
        f"chosen from the data: {auto.quantile:.0%} of train documents have at most {auto.train_length_at_quantile} "
        f"tokens, rounded up to a multiple of {MaxLenAutoConfig.STEP} within tokenize.max_len_auto [{auto.min}, {auto.max}]"
    )


def _dropped(records: list[DroppedClass]) -> str:
    """`label (docs)` per dropped class, plus their reason when they share one."""
    reasons = {r.reason for r in records}
    common = f" — {reasons.pop()}" if len(reasons) == 1 and "" not in reasons else ""
    return _short([f"{r.label} ({r.docs})" for r in records]) + common


def _short(values: list[str], limit: int = 12) -> str:
    more = f" … (+{len(values) - limit})" if len(values) > limit else ""
    return (", ".join(values[:limit]) or "none") + more
