"""What a reader must know before trusting a table: the dataset card and tokenizer warnings.

Reads `data/prepared/<ds>/card.json` and `data/tokenized/<ds>/<scheme>/meta.json` when present
and turns them into short lines. The files are written by other stages, so only their contract
keys are relied on; everything else is found by key name (`*dropped*`, `*duplicate*`, `*unk*`,
`*truncat*`, `*warning*`) so new fields show up without changes here.
"""

from __future__ import annotations

from typing import Any

from pipeline import paths
from pipeline.report.aggregate import read_json
from pipeline.tokenize.coverage import UNK_WARN


def card_lines(dataset: str) -> list[str]:
    """Summary of card.json: classes, documents per split, what was dropped or deduplicated."""
    card = read_json(paths.prepared_dir(dataset) / "card.json")
    if card is None:
        return [f"no dataset card (data/prepared/{dataset}/card.json not found)"]
    lines = []
    if isinstance(card.get("labels"), list):
        lines.append(f"{len(card['labels'])} classes kept")
    lines += [f"{split}: {total:,} documents" for split, total in _split_totals(card).items()]
    for key, value in sorted(card.items()):
        nested = value.items() if isinstance(value, dict) and not _notable(key) else []
        lines += [f"{key}: {_short(value)}"] if _notable(key) else []
        lines += [f"{key}.{k}: {_short(v)}" for k, v in sorted(nested) if _notable(k)]
    return lines


def _notable(key: str) -> bool:
    return any(w in key.lower() for w in ("dropped", "duplicate", "empty", "no_test", "missing"))


def tokenizer_lines(dataset: str) -> list[tuple[str, bool]]:
    """(line, is_warning) per scheme: [UNK] rate and truncated share by split, and any warnings."""
    out: list[tuple[str, bool]] = []
    for scheme in paths.SCHEMES:
        meta = read_json(paths.tokenized_dir(dataset, scheme) / "meta.json")
        if meta is None:
            continue
        who = f"{scheme} ({meta.get('encoder') or meta.get('zh_mode') or meta.get('language', '')})"
        rates: dict[str, dict[str, float]] = {}  # metric → split → rate
        for key, value in _flatten(meta).items():
            parts = key.split(".")
            metric = next((p for p in parts if "unk" in p.lower() or "truncat" in p.lower()), None)
            if "warning" in key.lower():
                out += [(f"{who}: {w}", True) for w in (value if isinstance(value, list) else [value]) if w]
            elif metric and _is_rate(value):
                split = next((p for p in parts if p in paths.SPLITS), "all")
                rates.setdefault(metric, {})[split] = value
        for metric, by_split in sorted(rates.items(), key=lambda kv: "unk" not in kv[0].lower()):
            values = ", ".join(f"{s} {by_split[s]:.1%}" for s in (*paths.SPLITS, "all") if s in by_split)
            if "unk" in metric.lower():
                bad = max(by_split.values()) > UNK_WARN
                note = f" — above {UNK_WARN:.0%}: the encoder does not cover this language; do not trust these scores" if bad else ""
                out.append((f"{who}: [UNK] share of tokens: {values}{note}", bad))
            else:
                out.append((f"{who}: documents truncated to max_len {meta.get('max_len')}: {values}", False))
    return out


def _split_totals(card: dict[str, Any]) -> dict[str, int]:
    """Documents per split from the first `{split: {class: n}}` or `{split: n}` mapping found."""
    for value in card.values():
        if isinstance(value, dict) and {"train", "test"} <= value.keys():
            totals = {s: _total(value[s]) for s in paths.SPLITS if s in value}
            if all(t is not None for t in totals.values()):
                return {s: int(t) for s, t in totals.items() if t is not None}
    return {}


def _total(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
        return sum(value.values())
    return None


def _flatten(obj: dict[str, Any], prefix: str = "", depth: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth > 1 and value and all(isinstance(v, (dict, int, float)) for v in value.values()):
            out.update(_flatten(value, f"{name}.", depth - 1))
        else:
            out[name] = value
    return out


def _is_rate(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def _short(value: Any, limit: int = 12) -> str:
    """A card value in one line: lists and dicts joined, records as `label (docs)` + their common reason."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        reasons = {str(v.get("reason", "")) for v in value}
        names = [_record(v) for v in value]
        return _short(names, limit) + (f" — {reasons.pop()}" if len(reasons) == 1 and "" not in reasons else "")
    if isinstance(value, dict):
        value = [f"{k} ({_short(v)})" if not isinstance(v, dict) else str(k) for k, v in value.items()]
    if isinstance(value, list):
        more = f" … (+{len(value) - limit})" if len(value) > limit else ""
        return (", ".join(str(v) for v in value[:limit]) or "none") + more
    return str(value)


def _record(rec: dict[str, Any]) -> str:
    name = rec.get("label", rec.get("name", rec.get("class", "?")))
    count = next((v for v in rec.values() if isinstance(v, int) and not isinstance(v, bool)), None)
    return f"{name} ({count})" if count is not None else str(name)
