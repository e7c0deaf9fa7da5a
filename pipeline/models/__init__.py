"""Model zoo: `registry` (name → embedder + head, `build_model`), the embedders and heads (`classic`,
`bert`, `linear`: the TF-IDF baselines, `heads`) and `load` (`load_trained` for model dirs)."""
