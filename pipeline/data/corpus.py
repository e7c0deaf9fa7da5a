"""What every corpus reader returns: documents with an optional given split, plus reader stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class Doc:
    """One document; `split` is train/dev/test when the source fixes it, else None."""

    id: str
    text: str
    label: str
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Corpus:
    """A reader's output: documents in a stable order, counts for card.json, extra column types."""

    docs: list[Doc]
    stats: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, pa.DataType] = field(default_factory=dict)
