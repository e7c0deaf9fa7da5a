"""Load a trained model directory and turn texts into class probabilities, exactly as trained.

`Predictor.load(models/<ds>/<model>)` rebuilds the model (`pipeline.models.load.load_trained`) and its
tokenizer (`pipeline.tokenize.load_encoder(<dir>/tokenizer)`), so the text goes through the same
cleaning, tokenization and truncation as the training data. Texts are sorted by length before
batching (less padding), and results come back in input order.

A multi-label model (config.json `label_mode: multi`) gives per-label sigmoid probabilities, and
`predict` lists every label whose probability reaches config.json's `threshold` (0.5, or the one tuned on dev).
Logits are divided by config.json's `temperature` (fitted on dev by the trainer; 1 in older model dirs)
before the softmax or sigmoid, so every variant's confidences are the calibrated ones.

Variants (same weights, different runtimes): `fp32` (torch), `int8` (torch dynamic quantization of
Linear/LSTM/GRU layers, CPU), `bf16` (bfloat16 autocast, as the trainer evaluates with precision
bf16), `onnx` / `onnx-int8` (onnxruntime on the files `textbench export` writes under `<dir>/export/`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pipeline import paths
from pipeline.artifacts import ExportSource, ModelConfig, TokenizedMeta, retrain
from pipeline.device import autocast, pick_device
from pipeline.errors import TextbenchError
from pipeline.extras import require
from pipeline.families import family_of
from pipeline.train.data import collate

VARIANTS = ("fp32", "int8", "bf16", "onnx", "onnx-int8")
ONNX_MIN_LEN = 16  # exported graphs are traced on (and fed) at least this many positions

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) int64 [B, T] → logits


def onnx_session(path: Path):
    """An onnxruntime CPU session using as many threads as torch does (fair comparisons)."""
    require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the Linear layers (weights int8, activations fp32). Recurrent layers stay
    fp32: the RNN heads run each direction on the cell's own weights (pipeline/models/heads.py), which a
    quantized LSTM/GRU module does not expose."""
    layers = {torch.nn.Linear}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices: still the stock CPU int8 path in 2.13
        return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8)


class Predictor:
    """A trained model + its tokenizer: `predict_proba(texts) -> [N, C]` probabilities in input order."""

    def __init__(
        self,
        model: torch.nn.Module,
        encoder,
        config: ModelConfig,
        meta: TokenizedMeta,
        variant: str = "fp32",
        batch_size: int = 64,
        device: str = "auto",
        model_dir: Path | None = None,
        export_dir: Path | None = None,
    ):
        if variant not in VARIANTS:
            raise TextbenchError(f"unknown variant '{variant}': use one of {list(VARIANTS)}")
        if batch_size < 1:
            raise TextbenchError(f"batch size must be at least 1, got {batch_size}")
        self.model, self.encoder, self.config = model, encoder, config
        self.labels: list[str] = list(config.labels)
        self.multi, self.threshold = config.label_mode == "multi", config.threshold
        self.meta, self.pad_id, self.language = meta, meta.pad_id, meta.language
        self.variant, self.batch_size = variant, batch_size
        self.model_dir = model_dir
        self.export_dir = export_dir or paths.export_dir(model_dir or Path("."))  # where the ONNX files are read
        self.device = pick_device(device, None, "device") if variant in ("fp32", "bf16") else torch.device("cpu")
        self.min_len = ONNX_MIN_LEN if variant.startswith("onnx") else 1  # ONNX graphs were traced this wide
        # every use of the shared model (predict's forwards, explain's hooked IG passes) holds this lock, so
        # no request sees another's hook or mode; concurrent CPU forwards would only fight for cores anyway
        self.lock = threading.Lock()
        self._run = self._make_runner()

    @classmethod
    def load(
        cls, model_dir: str | Path, variant: str = "fp32", batch_size: int = 64, device: str = "auto"
    ) -> Predictor:
        """Rebuild a predictor from `models/<ds>/<model>/` (no data/ directory needed)."""
        from pipeline.models.load import load_trained
        from pipeline.tokenize import load_encoder

        model_dir = Path(model_dir)
        model, config = load_trained(model_dir)
        meta = tokenizer_meta(model_dir, config)
        encoder = load_encoder(model_dir / paths.TOKENIZER, meta)
        encoder.set_max_len(config.max_len)  # a bag of n-grams was trained on bag_max_len ids, not max_len
        return cls(model, encoder, config, meta, variant, batch_size, device, model_dir)

    @property
    def name(self) -> str:
        return f"{self.config.dataset}/{self.config.model}"

    def _make_runner(self) -> Runner:
        if self.variant.startswith("onnx"):
            return self._onnx_runner()
        model = self.model.eval()
        if self.variant == "int8":
            model = quantize_int8(model)
        model = model.to(self.device)
        precision = "bf16" if self.variant == "bf16" else "fp32"

        @torch.inference_mode()
        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            ids_t = torch.from_numpy(ids).to(self.device)
            mask_t = torch.from_numpy(mask).to(self.device)
            with autocast(self.device, precision):
                return model(ids_t, mask_t).float().cpu().numpy()

        return run

    def _onnx_runner(self) -> Runner:
        if reason := onnx_unsupported(self.config):
            raise TextbenchError(f"{self.name}: {reason}")
        path = self.export_dir / paths.ONNX_FILES[self.variant]
        flags = "--onnx --int8" if self.variant == "onnx-int8" else "--onnx"
        if self.export_dir.is_dir() and self.model_dir is not None:
            fix = f"rerun `textbench export {self.model_dir} {flags}`"
            ExportSource.check(self.export_dir, self.model_dir, fix)
        if not path.is_file() and (skipped := self.export_dir / paths.ONNX_SKIPPED).is_file():
            reason = skipped.read_text(encoding="utf-8", errors="replace").strip()
            raise TextbenchError(f"{path}: not found; `textbench export --onnx` could not write it: {reason}")
        if not path.is_file():
            raise TextbenchError(f"{path}: not found; run `textbench export {self.model_dir} {flags}` first")
        session = onnx_session(path)

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

        return run

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids exactly as the training data was tokenized."""
        return self.encoder.encode(list(texts))

    def encode_known(self, texts: list[str | None]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids, and per text whether it has anything to classify (`EncodedBatch.classifiable`: a
        token the model knows; a missing text has none)."""
        batch = self.encoder.encode_batch([t or "" for t in texts])
        return batch.ids, np.array(batch.classifiable, dtype=bool)

    def pad(self, ids: list[list[int]], min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) int64 [B, T], padded exactly as training batches are
        (pipeline.train.data.collate: an empty document keeps one real position), at least `min_len` wide."""
        inputs, mask = (t.numpy() for t in collate([np.asarray(x, dtype=np.int64) for x in ids], self.pad_id))
        if inputs.shape[1] < min_len:
            inputs, mask = (
                np.pad(a, ((0, 0), (0, min_len - a.shape[1])), constant_values=v)
                for a, v in ((inputs, self.pad_id), (mask, 0))
            )
        return inputs, mask

    def logits_from_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Logits [N, C] for token id lists, batched by similar length, in input order."""
        logits = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch_ids, mask = self.pad([ids[i] for i in idx], self.min_len)
            with self.lock:
                logits[idx] = self._run(batch_ids, mask)
        return logits

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities [N, C] (softmax of the logits; multi-label: per-label sigmoid), rows in input order."""
        return self.proba_from_ids(self.encode(texts) if len(texts) else [])

    def proba_from_ids(self, ids: list[list[int]]) -> np.ndarray:
        """`predict_proba` of already encoded texts (logits / config.json `temperature`)."""
        if not ids:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.logits_from_ids(ids) / self.config.temperature
        return sigmoid(logits) if self.multi else softmax(logits)

    def above_threshold(self, p: np.ndarray) -> list[str]:
        """Multi-label: the labels of one probability row that reach the threshold, most probable first."""
        return [self.labels[j] for j in np.argsort(-p, kind="stable") if p[j] >= self.threshold]

    def predict(self, texts: list[str]) -> list[dict]:
        """Per text: `label` (the most probable class), `confidence` (its probability) and the full `probs`
        dict {class: probability}; a multi-label model adds `labels`, every label >= threshold (may be empty)."""
        return self.rows(self.predict_proba(texts))

    def rows(self, probs: np.ndarray) -> list[dict]:
        """`predict`'s answer for probabilities already computed (`proba_from_ids`)."""
        out = []
        for p in probs:
            row = {"label": self.labels[int(p.argmax())], "confidence": float(p.max())}
            if self.multi:
                row["labels"] = self.above_threshold(p)
            out.append(row | {"probs": {label: float(v) for label, v in zip(self.labels, p)}})
        return out


NOTHING = "the text has no token the model knows (only whitespace, control or format characters, or [UNK])"
SHARED_KEYS = ("scheme", "labels", "label_mode", "vocab_size", "pad_id", "max_len")  # in config.json and meta.json


def tokenizer_meta(model_dir: Path, config: ModelConfig) -> TokenizedMeta:
    """A model dir's tokenizer/meta.json, checked against its config.json (the trainer copies these keys from
    it): what `Predictor.load` relies on and `GET /models` reports, so a dir listed healthy also loads."""
    meta = TokenizedMeta.of(model_dir / paths.TOKENIZER)
    for key in SHARED_KEYS:
        if (meta.reads(config.model) if key == "max_len" else getattr(meta, key)) != getattr(config, key):
            raise TextbenchError(
                f"{model_dir}: tokenizer/meta.json {key} differs from config.json's; {retrain(model_dir)}"
            )
    return meta


def onnx_unsupported(config: ModelConfig) -> str:
    """Why `config`'s model has no ONNX graph; '' when it can have one."""
    if family_of(config.model) == "linear":
        return (
            "a linear baseline has no ONNX graph (torch.onnx cannot export its torch.searchsorted n-gram "
            "lookup); use the torch variants fp32, int8 or bf16"
        )
    return ""


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
