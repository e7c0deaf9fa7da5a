"""Why did the model say that? Token attributions by LIME (any model) or integrated gradients.

- `lime`: `LimeTextExplainer` (seeded) perturbs the text by dropping words (characters for Chinese)
  and fits a local linear model to `predict_proba`; a score per word of the text.
- `ig`: integrated gradients of the target class probability (the predictor's: logits / config.json
  `temperature`) with respect to the input embeddings
  (`model.get_input_embeddings()`), from an all-[PAD] baseline along a straight path (midpoint
  Riemann sum); a score per model token, summing to p(text) − p(baseline). A linear baseline
  (family `linear`) has no embeddings and needs no approximation: it gets method `linear`, the
  exact share of each token in the class's logit (each n-gram's tf-idf × its class weight, split
  evenly between its tokens), summing to the logit minus the class bias.

`error_analysis` lists a model's most confidently wrong test documents with highlighted tokens.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline import paths
from pipeline.errors import TextbenchError
from pipeline.extras import require
from pipeline.families import family_of
from pipeline.serve.predictor import NOTHING, Predictor

METHODS = ("ig", "lime")
SPECIAL = {"[CLS]", "[SEP]", "[PAD]", "<pad>", "<s>", "</s>", "<cls>", "<sep>"}


@dataclass
class Explanation:
    method: str
    label: str  # the class explained (the predicted one unless a target was given)
    confidence: float  # its probability
    tokens: list[str]
    scores: list[float]  # one per token: > 0 pushes towards `label`

    def as_dict(self) -> dict:
        return asdict(self)


def explain(
    predictor: Predictor,
    text: str,
    method: str = "ig",
    target: str | None = None,
    steps: int = 32,
    num_samples: int = 300,
    seed: int = 0,
) -> Explanation:
    """Attribute the prediction for `text` (or for class `target`) to its tokens."""
    if method not in METHODS:
        raise TextbenchError(f"unknown explanation method '{method}': use one of {list(METHODS)}")
    ids, known = predictor.encode_known([text])
    if not known[0]:
        raise TextbenchError(f"nothing to explain: {NOTHING}")
    probs = predictor.proba_from_ids(ids)[0]
    if target is not None and target not in predictor.labels:
        raise TextbenchError(f"unknown class '{target}': the model's classes are {predictor.labels}")
    t = predictor.labels.index(target) if target is not None else int(probs.argmax())
    if method == "lime":
        tokens, scores = lime_scores(predictor, text, t, num_samples, seed)
    elif family_of(predictor.config.model) == "linear":
        method = "linear"
        tokens, scores = linear_scores(predictor, text, t)
    else:
        tokens, scores = integrated_gradients(predictor, text, t, steps)
    return Explanation(method, predictor.labels[t], float(probs[t]), tokens, [float(s) for s in scores])


def integrated_gradients(
    predictor: Predictor, text: str, target: int, steps: int = 32, chunk: int = 16
) -> tuple[list[str], np.ndarray]:
    """(model tokens, IG attribution per token) for class index `target`. Holds the predictor's lock
    throughout: the hook below changes what the shared model computes, so no other forward may run meanwhile."""
    with predictor.lock:
        return _integrated_gradients(predictor, text, target, steps, chunk)


def _integrated_gradients(
    predictor: Predictor, text: str, target: int, steps: int, chunk: int
) -> tuple[list[str], np.ndarray]:
    model = predictor.model.eval()
    device = next(model.parameters()).device
    ids = predictor.encode([text])[0]
    input_ids, mask = (torch.from_numpy(a).to(device) for a in predictor.pad([ids]))
    layer = model.get_input_embeddings()
    with torch.no_grad():
        x = layer(input_ids)
        base = layer(torch.full_like(input_ids, predictor.pad_id))
    alphas = (torch.arange(steps, dtype=torch.float32, device=device) + 0.5) / steps
    grad_sum = torch.zeros_like(x[0])
    path: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, _o: path[0])  # the model sees the path points
    try:
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            for a in alphas.split(chunk):
                points = (base + a[:, None, None] * (x - base)).requires_grad_(True)
                path[:] = [points]
                n = len(a)
                logits = model(input_ids.expand(n, -1), mask.expand(n, -1)).float() / predictor.config.temperature
                probs = torch.sigmoid(logits) if predictor.multi else torch.softmax(logits, dim=-1)
                (grad,) = torch.autograd.grad(probs[:, target].sum(), points)
                grad_sum += grad.sum(0)
    finally:
        hook.remove()
    attr = ((x[0] - base[0]) * grad_sum / steps).sum(-1)[: len(ids)]
    return predictor.encoder.tokens(ids), attr.detach().cpu().numpy()


@torch.no_grad()
def linear_scores(predictor: Predictor, text: str, target: int) -> tuple[list[str], np.ndarray]:
    """(model tokens, each token's exact share of the logit of class index `target`) of a linear baseline."""
    ids = predictor.encode([text])[0]
    input_ids, mask = (torch.from_numpy(a) for a in predictor.pad([ids]))
    with predictor.lock:  # a forward on the shared model, like every other
        model = predictor.model.eval()
        idx, weight = model.embedder.features(input_ids, mask)
    class_weight = model.head.linear.weight[target] / model.head.temperature
    per_ngram = (weight * torch.cat([class_weight, class_weight.new_zeros(1)])[idx]).view(-1, input_ids.size(1))
    scores = torch.zeros(input_ids.size(1), dtype=torch.float64)
    for n, share in enumerate(per_ngram.double()):  # n-grams of n + 1 tokens, by the position they end at
        for k in range(n + 1):  # the token k places before the end gets its 1/(n + 1)
            scores[: scores.numel() - k] += share[k:] / (n + 1)
    return predictor.encoder.tokens(ids), scores[: len(ids)].numpy()


def lime_scores(
    predictor: Predictor, text: str, target: int, num_samples: int = 300, seed: int = 0
) -> tuple[list[str], np.ndarray]:
    """(words of the text in order, LIME weight of each word) for class index `target`."""
    require("lime")
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(
        class_names=predictor.labels, random_state=seed, char_level=predictor.language == "zh"
    )
    exp = explainer.explain_instance(
        text, predictor.predict_proba, labels=(target,), num_features=10_000, num_samples=num_samples
    )
    words = exp.domain_mapper.indexed_string
    weight = {words.word(i): w for i, w in exp.as_map()[target]}
    tokens = [piece for piece in words.as_list if piece in weight and piece.strip()]
    return tokens, np.array([weight[t] for t in tokens], dtype=np.float64)


def highlight_html(tokens: list[str], scores: list[float]) -> str:
    """Tokens as HTML spans shaded by score (green = for the class, red = against), specials dropped."""
    scale = max((abs(s) for t, s in zip(tokens, scores) if t not in SPECIAL), default=0.0) or 1.0
    parts = []
    for token, score in zip(tokens, scores):
        if token in SPECIAL:
            continue
        glue = token.startswith("##") or _is_cjk(token) or (len(token) == 1 and not token.isalnum())
        word = token[2:] if token.startswith("##") else token
        alpha = round(min(1.0, abs(score) / scale) * 0.8, 3)
        rgb = "22,163,74" if score >= 0 else "220,38,38"
        span = (
            f'<span class="tok" title="{score:+.4f}" style="background:rgba({rgb},{alpha})">{html.escape(word)}</span>'
        )
        parts.append(span if glue or not parts else " " + span)
    return "".join(parts)


def _is_cjk(token: str) -> bool:
    return len(token) == 1 and "\u2e80" <= token <= "\u9fff"


def error_analysis(
    model_dir: str | Path,
    predictions_parquet: str | Path,
    k: int = 10,
    method: str = "ig",
    predictor: Predictor | None = None,
) -> list[dict]:
    """The `k` most confidently wrong documents of a predictions.parquet, each with a token-highlight
    `html` explaining the wrong class: [{id, text, label, pred, confidence, html}] (confidence desc)."""
    path = Path(predictions_parquet)
    if not path.is_file():
        raise TextbenchError(f"{path}: predictions file not found; run `textbench train` for this model first")
    table = pq.read_table(path, columns=["id", "text", "label", "pred", "confidence"]).to_pylist()
    wrong = sorted((r for r in table if r["label"] != r["pred"]), key=lambda r: (-r["confidence"], r["id"]))[:k]
    if not wrong:
        return []
    if predictor is None:
        if not (Path(model_dir) / paths.CONFIG).is_file():  # relative name: the report stays byte-stable
            raise TextbenchError(f"{Path(*Path(model_dir).parts[-3:])}: no trained model (config.json missing)")
        predictor = Predictor.load(model_dir)
    out = []
    _, known = predictor.encode_known([row["text"] for row in wrong])
    for row, ok in zip(wrong, known):
        if ok:
            e = explain(predictor, row["text"], method=method, target=row["pred"])
            shown = highlight_html(e.tokens, e.scores)
        else:  # only [UNK] for this model: nothing to attribute (explain refuses it), the text as it is
            shown = html.escape(row["text"])
        out.append({**row, "confidence": float(row["confidence"]), "html": shown})
    return out
