"""What every corpus reader returns: documents with an optional given split, plus reader stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class Doc:
    """One document; `split` is train/dev/test when the source fixes it, else None.

    `labels` is the document's label set in source order (multi-label corpora), `(label,)` otherwise;
    `label` is its first label."""

    id: str
    text: str
    label: str
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.labels = self.labels or (self.label,)

    def keep_labels(self, kept: set[str]) -> bool:
        """Narrow the label set to `kept`; False when nothing is left (the document then goes)."""
        self.labels = tuple(lb for lb in self.labels if lb in kept)
        self.label = self.labels[0] if self.labels else ""
        return bool(self.labels)

    @classmethod
    def multi(cls, id: str, text: str, labels: list[str], split: str | None = None, **extra: Any) -> Doc:
        """A multi-label document (repeated labels are kept once)."""
        labels = list(dict.fromkeys(labels))
        return cls(id, text, labels[0], split, dict(extra), tuple(labels))


@dataclass
class Corpus:
    """A reader's output: documents in a stable order, counts for card.json, extra column types."""

    docs: list[Doc]
    stats: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, pa.DataType] = field(default_factory=dict)
