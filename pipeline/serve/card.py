"""The model card (`README.md`, Hugging Face's format: YAML front matter + Markdown) of an export."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline import paths
from pipeline.artifacts import SCORES, RunMetrics, read_scores


def test_scores(dataset: str, model: str, fingerprint: str | None) -> dict[str, float]:
    """Test scores of this very run (reports/<ds>/<model>/metrics.json with the model's fingerprint), with
    the CIs of reports/metrics.json when its row is that run's; {} when the project holds no such report."""
    run = RunMetrics.of(paths.report_dir(dataset, model))
    if run is None or run.fingerprint != fingerprint:
        return {}
    scores = {k: getattr(run, k) for k in SCORES}
    row = read_scores().get(dataset, {}).get(model, {})
    return row if row.get("accuracy") == round(run.accuracy, 4) else scores


def card(predictor, hf: dict | None) -> str:
    """README.md text for `predictor`'s export."""
    cfg = predictor.config
    raw = cfg.as_dict()  # config.json as written, read once through its typed reader by Predictor.load
    scores = test_scores(cfg.dataset, cfg.model, raw.get("fingerprint"))
    classifier = bool(hf) and hf["loads_with"] == "AutoModelForSequenceClassification"
    front = {
        "library_name": "transformers" if hf else "pytorch",
        "pipeline_tag": "text-classification",
        "tags": ["textbench", cfg.model] + ([str(cfg.encoder)] if cfg.encoder else []),
        "datasets": [cfg.dataset],
        "metrics": [k for k in SCORES if k in scores],
    }
    rows = [
        f"| {k} | {scores[k]:.4f} | "
        + (f"{scores[k + '_ci_low']:.4f} – {scores[k + '_ci_high']:.4f}" if k + "_ci_low" in scores else "n/a")
        + " |"
        for k in SCORES
        if k in scores
    ]
    if classifier:
        use = (
            "```python\nfrom transformers import pipeline\n"
            'clf = pipeline("text-classification", model="path/to/hf", truncation=True, top_k=None)\n```\n'
            "`truncation=True` cuts to the trained max_len as textbench does; without it longer texts get other "
            "probabilities (and past 512 tokens fail)."
        )
    else:
        where = f"models/{cfg.dataset}/{cfg.model}"
        use = (
            (
                f"`hf/` holds the fine-tuned encoder (`AutoModel.from_pretrained`), not the {cfg.model} head. "
                if hf
                else ""
            )
            + f"Load the model directory ({where}) with textbench:\n\n```python\n"
            f"from pipeline.serve.predictor import Predictor\n"
            f'Predictor.load("{where}").predict(["some text"])\n```\n\n'
            f"or `textbench predict {where} texts.txt` / `textbench serve`."
        )
    head_tail = predictor.meta.truncation != "head"
    limits = [
        f"Trained on {cfg.dataset} only ({len(cfg.labels)} classes); other domains and label sets are out of scope.",
        f"Reads at most {predictor.encoder.max_len} tokens ({predictor.meta.truncation} truncation).",
    ]
    if classifier and head_tail:
        limits.append(
            "transformers truncates only the end: on longer texts its probabilities differ from "
            "textbench's head+tail truncation."
        )
    if classifier:
        limits.append(
            "The pooler is a near-identity rewrite of textbench's [CLS] head; re-initialise it before "
            "fine-tuning further."
        )
    body = [
        f"# {cfg.dataset}/{cfg.model}",
        "",
        f"A `{cfg.model}` text classifier trained by textbench on **{cfg.dataset}**"
        + (f" from the encoder `{cfg.encoder}`." if cfg.encoder else "."),
        "",
        "## Labels",
        "",
        ", ".join(f"`{label}`" for label in cfg.labels),
        "",
        "## Test metrics",
        "",
        *(
            ["| metric | value | 95% CI |", "|---|---|---|", *rows]
            if rows
            else [f"No test report of this run under {paths.reports_root()} (export from the project root)."]
        ),
        "",
        "## Training settings",
        "",
        "```yaml",
        yaml.safe_dump(
            {
                "max_len": cfg.max_len,
                "truncation": predictor.meta.truncation,
                "arch": cfg.arch,
                "train": raw.get("train", {}),
            },
            sort_keys=True,
        ).rstrip(),
        "```",
        "",
        "## Intended use",
        "",
        use,
        "",
        "## Limitations",
        "",
        *(f"- {x}" for x in limits),
    ]
    return f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n" + "\n".join(body) + "\n"


def write_card(predictor, out: Path, hf: dict | None) -> None:
    """`out/README.md`, and the same card in hf/ when there is one."""
    text = card(predictor, hf)
    (out / "README.md").write_text(text, encoding="utf-8")
    if hf:
        (out / "hf" / "README.md").write_text(text, encoding="utf-8")
