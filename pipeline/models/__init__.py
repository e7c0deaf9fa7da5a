"""Model zoo: `registry` (name → embedder + head, `build_model`) and `load` (`load_trained` for model dirs)."""
