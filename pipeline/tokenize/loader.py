"""`load_encoder(dir)`: the TextEncoder a tokenized scheme dir or a model's tokenizer/ describes.

Apart from `encoder.py` (the base class both encoders import) so that nothing imports in a circle;
each encoder module is imported only when its scheme is asked for (subword pulls in transformers).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.artifacts import TokenizedMeta
from pipeline.tokenize.encoder import TextEncoder


def load_encoder(directory: str | Path, meta: TokenizedMeta | None = None) -> TextEncoder:
    """The encoder described by `directory/meta.json` (a tokenized scheme dir or a model's tokenizer/);
    `meta`, when the caller has already read it."""
    directory = Path(directory)
    meta = meta or TokenizedMeta.of(directory)
    if meta.scheme == "subword":
        from pipeline.tokenize.subword import SubwordEncoder

        return SubwordEncoder.from_dir(directory, meta)
    from pipeline.tokenize.vocab import VocabEncoder

    return VocabEncoder.from_dir(directory, meta)
