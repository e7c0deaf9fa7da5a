"""One device/precision policy and one padding for training and inference (pipeline/device.py,
pipeline/train/data.collate used by the Predictor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.device import native_bf16, pick_device, pick_precision
from pipeline.errors import TextbenchError
from pipeline.serve.predictor import Predictor
from pipeline.train.data import Split


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_an_error_naming_where_it_was_asked_for() -> None:
    with pytest.raises(TextbenchError, match=r"^train\.device: 'cuda:1' requested but no CUDA"):
        pick_device("cuda:1")
    with pytest.raises(TextbenchError, match=r"^device: 'gpu' is not a device"):
        pick_device("gpu", None, "device")


def test_auto_precision_follows_native_bf16() -> None:
    cpu = torch.device("cpu")
    assert pick_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert pick_precision("fp32", cpu) == "fp32" and pick_precision("bf16", cpu) == "bf16"


def test_predictor_pads_like_training_batches() -> None:
    """Before: serving gave an empty document an all-zero mask, training one real position."""
    predictor = Predictor.__new__(Predictor)
    predictor.pad_id = 7
    rows = [[], [3, 4, 5], [9]]
    want_ids, want_mask = Split.from_seqs([np.asarray(r, np.int64) for r in rows]).collate(np.arange(3), pad_id=7)
    ids, mask = predictor.pad(rows)
    np.testing.assert_array_equal(ids, want_ids.numpy())
    np.testing.assert_array_equal(mask, want_mask.numpy())
    assert mask[0].tolist() == [1, 0, 0]
    wide_ids, wide_mask = predictor.pad(rows, min_len=5)  # ONNX graphs: padded, never more real positions
    assert wide_ids.shape == (3, 5) and wide_mask.sum() == mask.sum() and (wide_ids[:, 3:] == 7).all()
