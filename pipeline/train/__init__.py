"""Train stage: `stage.train` (tokenized data → models/<ds>/<model>/ + reports/<ds>/<model>/), the loop,
the scikit-learn fit of the linear baselines (`linear`), checkpoints, frozen-encoder features and the split reader."""
