"""Data stages: `download` (archive → data/raw/<ds>/) and `prepare` (→ data/prepared/<ds>/)."""

from pipeline.data.download import download
from pipeline.data.prepare import prepare

__all__ = ["download", "prepare"]
