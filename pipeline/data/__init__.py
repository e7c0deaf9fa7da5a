"""Data stages: `download.download` (archive → data/raw/<ds>/) and `prepare.prepare` (→ data/prepared/<ds>/)."""
