"""Tokenize stage (prepared text → Parquet token ids) and its public API for training and prediction.

    enc = load_encoder("data/tokenized/reuters/subword")   # or models/<ds>/<model>/tokenizer
    enc.encode(["Oil prices rose."])  ->  [[101, 3514, 7597, 3123, 1012, 102]]
    enc.tokens([101, 3514])           ->  ["[CLS]", "oil"]

The stage itself lives in `pipeline.tokenize.stage` (imported lazily: it pulls in pyarrow).
"""

from pipeline.tokenize.encoder import TextEncoder
from pipeline.tokenize.loader import load_encoder

__all__ = ["TextEncoder", "load_encoder"]
