"""Bounded types for the arch keywords of the model classes (`models.<name>.arch.<key>`).

Every keyword argument an embedder or head takes from params is annotated with one of these (or a
Literal / bool), and `resolve_arch` (pipeline/archs.py) validates params and a trained model's config.json
against those annotations, so a value that cannot build a model (`kernel_sizes: []`, `embed_dim: 0`,
a negative size, dropout 1.5) is one error naming the key, at params load and at model build alike.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Size = Annotated[int, Field(strict=True, ge=1)]  # widths, counts of layers/filters/heads, kernel widths
Sizes = Annotated[tuple[Size, ...], Field(min_length=1)]  # at least one (e.g. TextCNN's kernel widths)
Count = Annotated[int, Field(strict=True, ge=0)]  # 0 = off (e.g. n-gram buckets)
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]
Decay = Annotated[float, Field(gt=0.0, le=1.0)]  # a multiplier in (0, 1]
NgramMax = Annotated[int, Field(strict=True, ge=1, le=3)]  # longest n-gram of a TF-IDF model
Costs = Annotated[tuple[Annotated[float, Field(gt=0.0)], ...], Field(min_length=1)]  # a grid of C values
