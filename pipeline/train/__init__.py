"""Train stage: `stage.train` (tokenized data → models/<ds>/<model>/ + reports/<ds>/<model>/), the loop,
checkpoints, frozen-encoder features and the split reader."""
