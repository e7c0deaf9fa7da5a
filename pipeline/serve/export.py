"""Fast CPU inference artefacts for a trained model (`textbench export`), checked against fp32 torch.

Writes under `models/<ds>/<model>/export/`:
    hf/                 BERT family (`save_pretrained`): for `bert` (a [CLS] linear head on a BERT encoder) a
                        `BertForSequenceClassification` with id2label that `pipeline("text-classification",
                        model=hf, truncation=True)` loads with textbench's predictions; for the other heads the
                        fine-tuned encoder alone (`AutoModel`). Its tokenizer cleans text as textbench does
                        (NFKC, controls to spaces) and its model_max_length is the trained max_len.
    README.md           model card (also hf/README.md): dataset, test metrics with CIs, training settings
    model.onnx          ONNX graph with dynamic batch and sequence axes (legacy TorchScript exporter)
    model.int8.onnx     onnxruntime dynamic int8 quantization of model.onnx (with --int8)
    source.json         the sha256 of the model.safetensors it was built from (artifacts.ExportSource): a retrain
                        keeps export/, and `predict/serve --variant onnx` refuse it once the weights changed
    report.json         per runtime: test accuracy, its change vs fp32, ms per document, speed-up,
                        and the largest logit difference to fp32 torch
    onnx-skipped.txt    why `--onnx` wrote no model.onnx (what `predict --variant onnx` then says)
The evaluation data is checked against the model first (`eval_split`), then export/ is built in a
staging dir and swapped in whole (`atomic_dir`); export/ must not be a symbolic link (`paths.inside`).
Torch int8 (dynamic quantization) and bf16 are applied at load time (`Predictor(variant=...)`,
`textbench predict/serve --variant`), so they are measured here but not written as files.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline import paths
from pipeline.artifacts import ExportSource, TokenizedMeta
from pipeline.device import native_bf16
from pipeline.errors import TextbenchError
from pipeline.extras import require
from pipeline.io import atomic_dir, atomic_path, write_json
from pipeline.serve.card import write_card
from pipeline.serve.predictor import ONNX_MIN_LEN, Predictor, onnx_session, onnx_unsupported

ONNX_OPSET = 17


def export(
    model_dir: str | Path,
    onnx: bool = True,
    int8: bool = False,
    bf16: bool = False,
    eval_file: str | Path | None = None,
    max_docs: int = 1000,
) -> dict:
    """Write the artefacts, evaluate every runtime on the test split, and return (and save) the report.

    Everything is checked first (the model, the evaluation data, `export/` itself: no symbolic link on
    the way), then built in a staging dir that replaces `export/` whole: a failure leaves the old one."""
    if onnx:
        require("onnx", "onnxruntime")
    model_dir = Path(model_dir)
    base = Predictor.load(model_dir, device="cpu")
    source = ExportSource.of(model_dir)  # the weights just loaded: what export/ is built from
    if base.multi:
        raise TextbenchError(
            f"{base.name}: export measures single-label accuracy; multi-label models cannot be exported yet"
        )
    ids, gold = eval_split(base, eval_file, max_docs)
    out = paths.inside(model_dir, paths.export_dir(model_dir))
    report: dict = {"model": base.name, "runtimes": {}, "notes": [], "eval_docs": len(ids)}
    with atomic_dir(out) as stage:
        source.write(stage / paths.EXPORT_SOURCE)
        if base.config.scheme == "subword":
            hf = report["hf"] = {"dir": str(out / "hf"), **save_hf(base, stage / "hf")}
            if "note" in hf:
                report["notes"].append(hf["note"])
        write_card(base, stage, report.get("hf"))
        variants = ["fp32"]
        if onnx:
            try:
                export_onnx(base, stage / paths.ONNX_FILES["onnx"])
                variants.append("onnx")
                if int8:
                    quantize_onnx(stage / paths.ONNX_FILES["onnx"], stage / paths.ONNX_FILES["onnx-int8"])
                    variants.append("onnx-int8")
            except TextbenchError as e:
                report["notes"].append(f"onnx skipped: {e}")
                (stage / paths.ONNX_SKIPPED).write_text(
                    f"{e}\n", encoding="utf-8"
                )  # what `predict --variant onnx` says
        if int8:
            variants.append("int8")
        if bf16:
            if native_bf16(torch.device("cpu")):
                variants.append("bf16")
            else:
                report["notes"].append("bf16 skipped: this CPU has no native bfloat16 (AVX512-BF16/AMX)")
        reference = None
        for variant in variants:
            predictor = base if variant == "fp32" else staged(base, variant, stage)
            row, logits = measure(predictor, ids, gold)
            reference = logits if reference is None else reference
            row["max_abs_logit_diff"] = float(np.abs(logits - reference).max())
            report["runtimes"][variant] = row
        fp32 = report["runtimes"]["fp32"]
        for row in report["runtimes"].values():
            row["accuracy_delta"] = row["accuracy"] - fp32["accuracy"]
            row["speedup"] = fp32["ms_per_doc"] / row["ms_per_doc"] if row["ms_per_doc"] else 0.0
        write_json(stage / "report.json", report)
    return report


def staged(base: Predictor, variant: str, stage: Path) -> Predictor:
    """`base`'s weights and tokenizer under another runtime, the ONNX ones read from the staging dir."""
    return Predictor(
        base.model, base.encoder, base.config, base.meta, variant, base.batch_size, "cpu", base.model_dir, stage
    )


def save_hf(predictor: Predictor, target: Path) -> dict:
    """`target` (in export's staging dir) as `save_pretrained` writes it: a sequence classifier where
    `bert`'s head is expressible as one (checked against textbench's logits), else the encoder; returns
    what was written."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from pipeline.tokenize.encoder import clean_normalizer

    # tokenizer.json as is (a BertTokenizer class would rebuild its own normalizer on load)
    backend = Tokenizer.from_str(predictor.encoder.backend.to_str())
    backend.normalizer = clean_normalizer(backend.normalizer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=predictor.encoder.max_len, **predictor.encoder.hf.special_tokens_map
    )
    classifier = sequence_classifier(predictor)
    tokenizer.save_pretrained(str(target))
    if classifier is None:
        predictor.model.embedder.encoder.save_pretrained(str(target))
        return {
            "loads_with": "AutoModel",
            "note": f"hf/ holds the encoder only: the {predictor.config.model} head has no transformers class",
        }
    diff = check_hf(predictor, classifier)
    classifier.save_pretrained(str(target))
    return {"loads_with": "AutoModelForSequenceClassification", "max_abs_logit_diff": diff}


POOLER_SCALE = 1e-5  # tanh(εx)/ε = x·(1 − (εx)²/3): below float32 rounding for |x| < 30


def sequence_classifier(predictor: Predictor):
    """textbench's [CLS] → dropout → linear head on a BERT encoder as `BertForSequenceClassification`, or None.

    BERT's classifier reads the pooler (dense + tanh), which textbench's head skips; the pooler is set
    to tanh(εx) and the classifier's weights scaled by 1/ε, so the logits are textbench's within
    float32 rounding (`check_hf` verifies it). Fine-tuning the export further should re-initialise the pooler.
    """
    from transformers import AutoModelForSequenceClassification

    from pipeline.models.heads import PoolHead

    config, encoder, head = predictor.config, predictor.model.embedder.encoder, predictor.model.head
    if (
        not isinstance(head, PoolHead)
        or head.pooling != "cls"
        or len(head.mlp) != 2
        or encoder.config.model_type != "bert"
        or encoder.pooler is None
    ):
        return None
    linear = head.mlp[-1]
    hf_config = encoder.config.__class__.from_dict(
        {
            **encoder.config.to_dict(),
            "num_labels": config.num_labels,
            "id2label": dict(enumerate(config.labels)),
            "label2id": {label: i for i, label in enumerate(config.labels)},
        }
    )
    model = AutoModelForSequenceClassification.from_config(hf_config).eval()
    model.bert.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        model.bert.pooler.dense.weight.copy_(torch.eye(linear.in_features) * POOLER_SCALE)
        model.bert.pooler.dense.bias.zero_()
        model.classifier.weight.copy_(linear.weight / POOLER_SCALE)
        model.classifier.bias.copy_(linear.bias)
    return model


def check_hf(predictor: Predictor, model, atol: float = 1e-4) -> float:
    """Largest |exported − textbench| logit on a few texts (one longer than max_len); an error above `atol`."""
    texts = ["check", "a much longer check sentence with more words than the model reads " * 8, "third text"]
    ids, mask = predictor.pad(predictor.encode(texts))
    with torch.inference_mode():
        args = torch.from_numpy(ids), torch.from_numpy(mask)
        diff = float((model(input_ids=args[0], attention_mask=args[1]).logits - predictor.model(*args)).abs().max())
    if diff > atol:
        raise TextbenchError(
            f"{predictor.name}: the transformers export's logits differ by {diff:.2e} (> {atol}); "
            f"the encoder's hidden states are too large for the pooler rewrite"
        )
    return diff


def export_onnx(predictor: Predictor, path: Path) -> None:
    """torch → ONNX (dynamic batch/sequence), then check onnxruntime's logits against torch's."""
    if reason := onnx_unsupported(predictor.config):
        raise TextbenchError(f"{predictor.name}: {reason}")
    model = predictor.model.eval()
    ids, mask = predictor.pad(
        predictor.encode(["onnx export sample text", "a second, longer sample text"]), ONNX_MIN_LEN
    )
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; faithfulness is checked below instead
        try:
            torch.onnx.export(
                model,
                args,
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        except Exception as e:  # the exporter raises many types for unsupported ops
            raise TextbenchError(
                f"{predictor.name}: ONNX export failed ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:300]}); use the torch runtimes (--int8/--bf16)"
            ) from None
        check_onnx(predictor, tmp)


def check_onnx(predictor: Predictor, path: Path, atol: float = 1e-3) -> float:
    """Largest |onnxruntime − torch| logit over batches of other sizes and lengths; an error above `atol`."""
    session = onnx_session(path)
    texts = [
        "check",
        "a much longer check sentence with more words than the export sample had in it " * 8,
        "third text of middling size",
    ]
    diff = 0.0
    for batch in ([texts[0]], [texts[1]], texts):
        ids, mask = predictor.pad(predictor.encode(batch), ONNX_MIN_LEN)
        with torch.inference_mode():
            expected = predictor.model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        try:
            got = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        except Exception as e:  # onnxruntime raises its own types when a traced shape was baked in
            raise TextbenchError(
                f"{predictor.name}: the ONNX graph fails on another input shape "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from None
        diff = max(diff, float(np.abs(got - expected).max()))
    if diff > atol:
        raise TextbenchError(
            f"{predictor.name}: ONNX logits differ from torch by {diff:.2e} (> {atol}); "
            f"the graph is not faithful, do not use it"
        )
    return diff


def quantize_onnx(src: Path, dst: Path) -> None:
    """onnxruntime dynamic int8 quantization (MatMul/Gemm weights int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(dst) as tmp:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)


def eval_split(predictor: Predictor, eval_file: str | Path | None, max_docs: int) -> tuple[list[list[int]], np.ndarray]:
    """(token ids, gold label ids) of the first `max_docs` (>= 1) test documents, checked to match the model.

    Default: the tokenized test split the model was trained with; `eval_file`: any Parquet with
    `input_ids` + `label` (class ids; its meta.json beside it, tokenized as the model's tokenizer) or
    `text` + `label` (the model's class names) columns. Anything else is one error naming the file.
    """
    if max_docs < 1:
        raise TextbenchError(f"--max-docs must be at least 1, got {max_docs}")
    config = predictor.config
    path = (
        Path(eval_file) if eval_file else paths.split_file(paths.tokenized_dir(config.dataset, config.scheme), "test")
    )
    if not path.is_file():
        raise TextbenchError(f"{path}: evaluation data not found; run `textbench tokenize` or pass --eval FILE")
    try:
        table = pq.read_table(path).slice(0, max_docs)
    except (pa.ArrowException, OSError) as e:
        raise TextbenchError(f"{path}: not a readable Parquet file ({e})") from None
    if not table.num_rows:
        raise TextbenchError(f"{path}: holds no documents to evaluate on")
    names = set(table.column_names)
    if {"input_ids", "label"} <= names:
        same_tokenizer(predictor, path)
        ids = "input_ids" if predictor.meta.reads(config.model) == predictor.meta.max_len else "bag_ids"
        if ids not in names:
            raise TextbenchError(
                f"{path}: has no '{ids}' column, which {config.model} reads; rerun `textbench tokenize`"
            )
        return table.column(ids).to_pylist(), class_ids(predictor, path, table.column("label"))
    if {"text", "label"} <= names:
        texts, labels = table.column("text"), table.column("label")
        for column, name, needs in ((texts, "text", "texts"), (labels, "label", "the model's class names")):
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                raise TextbenchError(
                    f"{path}: column '{name}' holds {column.type} values; text+label data needs {needs} "
                    f"(classes: {shortened(predictor.labels)})"
                )
        index = {label: i for i, label in enumerate(predictor.labels)}
        if unknown := sorted({str(x) for x in labels.to_pylist() if x not in index}):
            raise TextbenchError(
                f"{path}: labels {shortened(unknown)} are not classes of {predictor.name} "
                f"({shortened(predictor.labels)}); evaluate on data labelled as it was trained"
            )
        return predictor.encode([t or "" for t in texts.to_pylist()]), np.asarray(
            [index[x] for x in labels.to_pylist()]
        )
    raise TextbenchError(f"{path}: needs columns input_ids+label or text+label, has {table.column_names}")


TOKENIZATION = ("scheme", "tokenizer_sha256", "max_len", "truncation", "labels")  # what token ids + label ids mean


def same_tokenizer(predictor: Predictor, path: Path) -> None:
    """Token ids are only the model's if tokenized as its tokenizer/ (meta.json beside `path`)."""
    if not (path.parent / paths.META).is_file():
        raise TextbenchError(
            f"{path}: token ids without a meta.json beside them cannot be checked against the model's "
            "tokenizer; pass the tokenized dir's split, or text+label data"
        )
    theirs, ours = TokenizedMeta.of(path.parent), predictor.meta
    if diff := [k for k in TOKENIZATION if getattr(theirs, k) != getattr(ours, k)]:
        shown = "; ".join(f"{k} {shortened(getattr(theirs, k))} vs {shortened(getattr(ours, k))}" for k in diff)
        raise TextbenchError(
            f"{path}: tokenized differently from {predictor.name} ({path.parent / paths.META} vs the model's "
            f"tokenizer/meta.json: {shown}); evaluate on that model's tokenized data, or on text+label data"
        )


def class_ids(predictor: Predictor, path: Path, labels: pa.ChunkedArray) -> np.ndarray:
    """The `label` column of tokenized data: integer class ids of the model."""
    if not pa.types.is_integer(labels.type):
        raise TextbenchError(f"{path}: column 'label' holds {labels.type} values, not class ids")
    gold = np.asarray(labels.fill_null(-1).to_pylist())
    if bad := sorted({int(x) for x in gold if not 0 <= x < len(predictor.labels)}):
        raise TextbenchError(
            f"{path}: label ids {shortened(bad)} are outside the model's {len(predictor.labels)} classes"
        )
    return gold


def shortened(value: object, width: int = 60) -> str:
    """`value` for an error line: its repr, cut to `width` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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
    lines = [
        f"{report['model']}: {report['eval_docs']} test documents",
        f"{'runtime':<10} {'accuracy':>9} {'Δacc':>8} {'ms/doc':>8} {'speed-up':>9} {'max|Δlogit|':>12}",
    ]
    for name, r in report["runtimes"].items():
        lines.append(
            f"{name:<10} {r['accuracy']:>9.4f} {r['accuracy_delta']:>+8.4f} {r['ms_per_doc']:>8.3f} "
            f"{r['speedup']:>8.2f}x {r['max_abs_logit_diff']:>12.2e}"
        )
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
