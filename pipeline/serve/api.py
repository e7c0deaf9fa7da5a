"""HTTP API and web page over every trained model under a models root (`textbench serve`).

    GET  /            the page: paste text, pick a model, see probabilities and highlighted tokens
    GET  /healthz     liveness
    GET  /models      every trained model dir (<ds>/<model>) with labels and test metrics if present (`default`:
                      the report's best model of the first dataset, which the page opens on); a dir
                      that /predict cannot load (config.json broken, tokenizer/meta.json disagreeing with it)
                      is listed with `error` (and answers /predict with it)
    POST /predict     {"model": "<ds>/<model>", "texts": [...]} or {"text": "..."} → labels + probabilities
                      (a multi-label model's predictions also list `labels`: every label >= its `threshold`)
    POST /explain     {"model": ..., "text": ..., "method": "ig"|"lime"} → token attributions
    GET  /docs        OpenAPI UI (FastAPI default)

Bad input gets a 4xx JSON `{"detail": "..."}` naming the problem (oversized, empty, not UTF-8, not
JSON, unknown model, too many texts); a model dir that cannot be loaded gets a 500 JSON `detail` naming the
file and what to do, and so does any unexpected failure; the server keeps serving. Models load on first use
and stay cached (least recently used evicted beyond `cache_size`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pipeline import paths
from pipeline.artifacts import HEADLINE, ModelConfig, RunMetrics
from pipeline.errors import TextbenchError
from pipeline.io import check_text
from pipeline.report.compare import rank
from pipeline.serve.explain import explain, highlight_html
from pipeline.serve.predictor import NOTHING, Predictor, tokenizer_meta

PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_texts: int = 256
    max_chars: int = 20_000
    max_lime_samples: int = 1000


def _text(value: str) -> str:
    """pipeline.io's text rule for request strings: a JSON `\\ud800` escape decodes to no text."""
    try:
        return check_text(value, "value")
    except TextbenchError as e:
        raise ValueError(str(e)) from None


Text = Annotated[str, AfterValidator(_text)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Text | None = Field(None, description="'<dataset>/<model>'; may be omitted when only one model is served")
    texts: list[Text] | None = Field(None, description="a batch of texts")
    text: Text | None = Field(None, description="a single text (instead of `texts`)")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Text | None = Field(None, description="'<dataset>/<model>'")
    text: Text = Field(description="the text to explain")
    method: Literal["ig", "lime"] = Field(
        "ig",
        description="integrated gradients (fast; linear baselines: exact shares, method `linear`) or LIME (model-agnostic)",
    )
    target: Text | None = Field(None, description="class to explain; default: the predicted one")
    num_samples: int = Field(300, ge=10, description="LIME perturbations")


class Registry:
    """Trained model dirs under a root, loaded on first use and kept in a small LRU cache."""

    def __init__(self, models_root: Path, variant: str = "fp32", cache_size: int = 4):
        self.root, self.variant, self.cache_size = Path(models_root), variant, cache_size
        self._cache: OrderedDict[str, Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def available(self) -> dict[str, Path]:
        """{"<ds>/<model>": dir} for every dir holding config.json and model.safetensors."""
        found = sorted(p.parent for p in self.root.glob(f"*/*/{paths.CONFIG}") if (p.parent / paths.WEIGHTS).is_file())
        return {f"{d.parent.name}/{d.name}": d for d in found}

    def resolve(self, name: str | None) -> str:
        models = self.available()
        if not models:
            raise HTTPException(404, f"no trained models under {self.root}; run `textbench train` first")
        if name is None:
            if len(models) == 1:
                return next(iter(models))
            raise HTTPException(422, f"several models are served; name one in 'model': {sorted(models)}")
        if name not in models:
            raise HTTPException(404, f"unknown model '{name}'; available: {sorted(models)}")
        return name

    def get(self, name: str | None) -> Predictor:
        name = self.resolve(name)
        with self._lock:
            if name not in self._cache:
                self._cache[name] = Predictor.load(self.available()[name], variant=self.variant)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(name)
            return self._cache[name]

    def describe(self) -> list[dict]:
        """One entry per model dir; `error` says why a dir cannot serve, `metrics_error` why its test
        metrics are not shown (None when fine); `default` marks the one the page opens on: of the first
        dataset (by name, as listed) with a servable, comparable run that has test metrics, the one the
        report ranks first (`compare.rank`: best macro-F1)."""
        entries = [self._describe(name, d) for name, d in self.available().items()]
        ranked = [e for e in entries if e["metrics"] is not None and e["comparable"]]
        first = [e for e in ranked if e["name"].split("/")[0] == ranked[0]["name"].split("/")[0]]
        best = max(first, key=lambda e: rank(e["metrics"]), default=None)  # max keeps the first of equal names
        return [e | {"default": e is best} for e in entries]

    def _describe(self, name: str, d: Path) -> dict:
        entry: dict = {
            "name": name,
            "dataset": None,
            "model": None,
            "scheme": None,
            "labels": None,
            "metrics": None,
            "comparable": None,  # False: the report neither ranks nor tests this run (metrics.json `not_comparable`)
            "loaded": name in self._cache,
            "error": None,
            "metrics_error": None,
        }
        try:
            config = ModelConfig.of(d)
            tokenizer_meta(d, config)
        except TextbenchError as e:
            return entry | {"error": str(e)}
        entry |= {"dataset": config.dataset, "model": config.model, "scheme": config.scheme, "labels": config.labels}
        try:
            m = RunMetrics.of(paths.report_dir_of(d))
        except TextbenchError as e:
            return entry | {"metrics_error": str(e)}
        if m is not None:
            shown = dict.fromkeys([*HEADLINE["single"], *HEADLINE[m.label_mode], "infer_samples_per_s"])
            entry["metrics"] = {k: getattr(m, k, None) for k in shown}
            entry["comparable"] = not getattr(m, "not_comparable", None)
        return entry


class BodyGuard:
    """ASGI middleware: reject bodies over `max_bytes` (413) or not valid UTF-8 (400) before parsing."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(scope, receive, send, 413, self._too_big())
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._reject(scope, receive, send, 413, self._too_big())
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return await self._reject(
                scope, receive, send, 400, f"request body is not valid UTF-8 (bad byte at offset {e.start})"
            )
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_big(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes; send fewer or shorter texts"

    @staticmethod
    async def _reject(scope, receive, send, status: int, detail: str):
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


def create_app(models_root: str | Path = "models", limits: Limits = Limits(), variant: str = "fp32") -> FastAPI:
    """The FastAPI app serving every trained model under `models_root`."""
    registry = Registry(Path(models_root), variant)
    app = FastAPI(title="textbench", description="Classify text with the benchmark's trained models.", version="1")
    app.add_middleware(BodyGuard, max_bytes=limits.max_body_bytes)
    app.state.registry = registry

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            reason = first.get("ctx", {}).get("error", "")
            detail = f"request body is not valid JSON ({reason} at character {first['loc'][-1]})"
        else:
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
            detail = f"{where}: {first.get('msg')}"
        return JSONResponse(_writable({"detail": detail, "errors": jsonable_encoder(exc.errors())}), status_code=422)

    @app.exception_handler(TextbenchError)
    async def _broken(_request: Request, exc: TextbenchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(Exception)
    async def _crashed(_request: Request, exc: Exception) -> JSONResponse:  # a bug: still a JSON detail, not plain text
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict:
        return {"status": "ok", "models": len(registry.available())}

    @app.get("/models", summary="Trained models with labels and test metrics")
    def models() -> list[dict]:
        return registry.describe()

    @app.post("/predict", summary="Classify one text or a batch")
    def predict(req: PredictRequest) -> dict:
        texts = _texts(req, limits)
        predictor = registry.get(req.model)
        ids, known = predictor.encode_known(texts)  # encoded once: the no-text check, then the forward
        _classifiable(known, "texts" if req.texts is not None else "text")
        return {
            "model": predictor.name,
            "labels": predictor.labels,
            "label_mode": predictor.config.label_mode,
            **({"threshold": predictor.threshold} if predictor.multi else {}),
            "predictions": predictor.rows(predictor.proba_from_ids(ids)),
        }

    @app.post("/explain", summary="Token attributions for one text")
    def explain_text(req: ExplainRequest) -> dict:
        _check_text(req.text, limits, "text")
        if req.num_samples > limits.max_lime_samples:
            raise HTTPException(422, f"num_samples: at most {limits.max_lime_samples}")
        predictor = registry.get(req.model)
        _classifiable(predictor.encode_known([req.text])[1], "text")
        if req.target is not None and req.target not in predictor.labels:
            raise HTTPException(422, f"target: unknown class '{req.target}'; classes: {predictor.labels}")
        e = explain(predictor, req.text, method=req.method, target=req.target, num_samples=req.num_samples)
        return {"model": predictor.name, **e.as_dict(), "html": highlight_html(e.tokens, e.scores)}

    return app


def _writable(obj):
    """`obj` with what a client sent that JSON cannot write back (echoed as an error's input) made
    text: non-finite floats (`1e99999`, `NaN`) as their names, lone surrogates as `\\udXXX` escapes;
    failing to write the 422 would make it a 500."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_writable(k): _writable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_writable(v) for v in obj]
    return obj


def _texts(req: PredictRequest, limits: Limits) -> list[str]:
    if (req.texts is None) == (req.text is None):
        raise HTTPException(422, "send exactly one of 'text' (a string) or 'texts' (a list of strings)")
    texts = req.texts if req.texts is not None else [req.text]
    if not texts:
        raise HTTPException(422, "texts: empty list; send at least one text")
    if len(texts) > limits.max_texts:
        raise HTTPException(413, f"texts: {len(texts)} texts, at most {limits.max_texts} per request")
    for i, t in enumerate(texts):
        _check_text(t, limits, f"texts[{i}]" if req.texts is not None else "text")
    return texts


def _classifiable(mask: np.ndarray, name: str) -> None:
    """422 for the first text with nothing to classify (`Predictor.encode_known`'s mask: the one rule,
    `EncodedBatch.classifiable`)."""
    known = mask.tolist()
    if False in known:
        where = f"{name}[{known.index(False)}]" if name == "texts" else name
        raise HTTPException(422, f"{where}: empty text, nothing to classify: {NOTHING}")


def _check_text(text: str, limits: Limits, where: str) -> None:
    if len(text) > limits.max_chars:
        raise HTTPException(413, f"{where}: {len(text)} characters, at most {limits.max_chars}")
