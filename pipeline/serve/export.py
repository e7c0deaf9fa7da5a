"""Fast CPU inference artefacts for a trained model (`textbench export`), checked against fp32 torch.

Writes under `models/<ds>/<model>/export/`:
    hf/                 the BERT family's fine-tuned encoder + tokenizer (`save_pretrained`), loadable
                        by `AutoModel.from_pretrained` in any transformers project
    model.onnx          ONNX graph with dynamic batch and sequence axes (legacy TorchScript exporter)
    model.int8.onnx     onnxruntime dynamic int8 quantization of model.onnx (with --int8)
    report.json         per runtime: test accuracy, its change vs fp32, ms per document, speed-up,
                        and the largest logit difference to fp32 torch
Torch int8 (dynamic quantization) and bf16 are applied at load time (`Predictor(variant=...)`,
`textbench predict/serve --variant`), so they are measured here but not written as files.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.extras import require
from pipeline.io import atomic_path, write_json
from pipeline.serve.predictor import ONNX_MIN_LEN, Predictor, bf16_supported, onnx_session

ONNX_OPSET = 17


def export(model_dir: str | Path, onnx: bool = True, int8: bool = False, bf16: bool = False,
           eval_file: str | Path | None = None, max_docs: int = 1000) -> dict:
    """Write the artefacts, evaluate every runtime on the test split, and return (and save) the report."""
    if onnx:
        require("onnx", "onnxruntime")
    model_dir = Path(model_dir)
    base = Predictor.load(model_dir, device="cpu")
    out = model_dir / "export"
    out.mkdir(exist_ok=True)
    report: dict = {"model": base.name, "runtimes": {}, "notes": []}
    if base.config.scheme == "subword":
        save_hf(base, model_dir, out / "hf")
        report["hf_dir"] = str(out / "hf")
    ids, gold = eval_split(base, eval_file, max_docs)
    report["eval_docs"] = len(ids)
    variants = ["fp32"]
    if onnx:
        try:
            export_onnx(base, out / "model.onnx")
            variants.append("onnx")
            if int8:
                quantize_onnx(out / "model.onnx", out / "model.int8.onnx")
                variants.append("onnx-int8")
        except TextbenchError as e:
            report["notes"].append(f"onnx skipped: {e}")
    if int8:
        variants.append("int8")
    if bf16:
        if bf16_supported():
            variants.append("bf16")
        else:
            report["notes"].append("bf16 skipped: this CPU has no native bfloat16 (AVX512-BF16/AMX)")
    reference = None
    for variant in variants:
        predictor = base if variant == "fp32" else Predictor.load(model_dir, variant=variant, device="cpu")
        row, logits = measure(predictor, ids, gold)
        reference = logits if reference is None else reference
        row["max_abs_logit_diff"] = float(np.abs(logits - reference).max()) if len(ids) else 0.0
        report["runtimes"][variant] = row
    fp32 = report["runtimes"]["fp32"]
    for row in report["runtimes"].values():
        row["accuracy_delta"] = row["accuracy"] - fp32["accuracy"]
        row["speedup"] = fp32["ms_per_doc"] / row["ms_per_doc"] if row["ms_per_doc"] else 0.0
    write_json(out / "report.json", report)
    return report


def save_hf(predictor: Predictor, model_dir: Path, target: Path) -> None:
    """The fine-tuned HF encoder and its tokenizer files, via `save_pretrained` (atomic dir)."""
    from pipeline.io import atomic_dir

    encoder = predictor.model.embedder.encoder
    with atomic_dir(target) as tmp:
        encoder.save_pretrained(tmp)
        for f in (model_dir / "tokenizer").iterdir():
            if f.is_file() and f.name not in ("meta.json", "vocab.json"):
                shutil.copy2(f, tmp / f.name)


def export_onnx(predictor: Predictor, path: Path) -> None:
    """torch → ONNX (dynamic batch/sequence), then check onnxruntime's logits against torch's."""
    model = predictor.model.eval()
    ids, mask = predictor.pad(predictor.encode(["onnx export sample text", "a second, longer sample text"]), ONNX_MIN_LEN)
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; faithfulness is checked below instead
        try:
            torch.onnx.export(model, args, str(tmp), input_names=["input_ids", "attention_mask"],
                              output_names=["logits"], dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
        except Exception as e:  # the exporter raises many types for unsupported ops
            raise TextbenchError(f"{predictor.name}: ONNX export failed ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0][:300]}); use the torch runtimes (--int8/--bf16)") from None
        check_onnx(predictor, tmp)


def check_onnx(predictor: Predictor, path: Path, atol: float = 1e-3) -> float:
    """Largest |onnxruntime − torch| logit over batches of other sizes and lengths; an error above `atol`."""
    session = onnx_session(path)
    texts = ["check", "a much longer check sentence with more words than the export sample had in it " * 8,
             "third text of middling size"]
    diff = 0.0
    for batch in ([texts[0]], [texts[1]], texts):
        ids, mask = predictor.pad(predictor.encode(batch), ONNX_MIN_LEN)
        with torch.inference_mode():
            expected = predictor.model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        try:
            got = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        except Exception as e:  # onnxruntime raises its own types when a traced shape was baked in
            raise TextbenchError(f"{predictor.name}: the ONNX graph fails on another input shape "
                                 f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        diff = max(diff, float(np.abs(got - expected).max()))
    if diff > atol:
        raise TextbenchError(f"{predictor.name}: ONNX logits differ from torch by {diff:.2e} (> {atol}); "
                             f"the graph is not faithful, do not use it")
    return diff


def quantize_onnx(src: Path, dst: Path) -> None:
    """onnxruntime dynamic int8 quantization (MatMul/Gemm weights int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(dst) as tmp:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)


def eval_split(predictor: Predictor, eval_file: str | Path | None, max_docs: int) -> tuple[list[list[int]], np.ndarray]:
    """(token ids, gold label ids) of the first `max_docs` test documents.

    Default: the tokenized test split the model was trained with; `eval_file`: any Parquet with
    `input_ids` + `label` (int) or `text` + `label` (class name) columns.
    """
    config = predictor.config
    path = Path(eval_file) if eval_file else paths.tokenized_dir(config.dataset, config.scheme) / "test.parquet"
    if not path.is_file():
        raise TextbenchError(f"{path}: evaluation data not found; run `textbench tokenize` or pass --eval FILE")
    table = pq.read_table(path).slice(0, max_docs)
    if "input_ids" in table.column_names:
        return table.column("input_ids").to_pylist(), np.asarray(table.column("label").to_pylist())
    if {"text", "label"} <= set(table.column_names):
        index = {label: i for i, label in enumerate(predictor.labels)}
        gold = np.asarray([index.get(label, -1) for label in table.column("label").to_pylist()])
        return predictor.encode(table.column("text").to_pylist()), gold
    raise TextbenchError(f"{path}: needs columns input_ids+label or text+label, has {table.column_names}")


def measure(predictor: Predictor, ids: list[list[int]], gold: np.ndarray) -> tuple[dict, np.ndarray]:
    """Accuracy and ms per document of batched inference (one warm-up batch first)."""
    predictor.logits_from_ids(ids[: predictor.batch_size])
    start = time.perf_counter()
    logits = predictor.logits_from_ids(ids)
    seconds = time.perf_counter() - start
    accuracy = float((logits.argmax(1) == gold).mean()) if len(ids) else 0.0
    return {"accuracy": accuracy, "ms_per_doc": 1000 * seconds / max(1, len(ids))}, logits


def format_report(report: dict) -> str:
    """The report as an aligned text table."""
    lines = [f"{report['model']}: {report['eval_docs']} test documents",
             f"{'runtime':<10} {'accuracy':>9} {'Δacc':>8} {'ms/doc':>8} {'speed-up':>9} {'max|Δlogit|':>12}"]
    for name, r in report["runtimes"].items():
        lines.append(f"{name:<10} {r['accuracy']:>9.4f} {r['accuracy_delta']:>+8.4f} {r['ms_per_doc']:>8.3f} "
                     f"{r['speedup']:>8.2f}x {r['max_abs_logit_diff']:>12.2e}")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)

