"""The JSON files textbench writes and reads back: one typed model and one reader each.

    data/prepared/<ds>/card.json              DatasetCard    written by prepare
    data/audit/<ds>/audit.json                DataAudit      written by audit (duplicates, near-duplicates, label errors)
    data/tokenized/<ds>/<scheme>/meta.json    TokenizedMeta  written by tokenize; copied to models/<ds>/<model>/tokenizer/
    <tokenizer dir>/vocab.json                read_vocab     written by tokenize (scheme vocab)
    models/<ds>/<model>/config.json           ModelConfig    written by train
    models/<ds>/<model>/export/source.json    ExportSource   written by export; checked by every reader of export/
    reports/<ds>/<model>/metrics.json         RunMetrics     written by train
    reports/<ds>/.status/<model>/<seed>.json  RunStatus      written by the flow (paths.job_status)
    reports/metrics.json                      read_scores    written by report (scores + CIs per dataset, model)
    reports/outcomes.json                     Outcomes       written by report (test predictions, for `textbench diff`)
    reports/environment.json                  Environments   written by report (where each run ran: RunEnv)
    reports/learning/<ds>/points.json         LearningPoints written by curves (learning curves: sizes, test decisions)

Each model checks the keys its readers rely on (types, ranges, agreement between keys) and lets
the rest through, so a writer can add fields without breaking readers. Every command reads these
files only through `<Model>.read` (or `read_if_present`): a missing, non-JSON, truncated or
wrong-typed file is one TextbenchError naming the file, the key and what to do, whichever command
meets it. Writers write them through the same models (`<Model>(...).write(path)`), so a writer
cannot write what its readers refuse; the bytes are write_json's (sorted keys, indented).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from pipeline import paths
from pipeline.errors import TextbenchError, describe_invalid
from pipeline.families import SCHEME_OF_MODEL, WHOLE_DOCUMENT
from pipeline.io import sha256_file, write_json

A = TypeVar("A", bound="Artifact")
V = TypeVar("V")

Count = Annotated[int, Field(strict=True, ge=0)]
Positive = Annotated[int, Field(strict=True, ge=1)]
Rate = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]  # a share or a score: no NaN, string or bool


def _unique(labels: list[str]) -> list[str]:
    if len(set(labels)) != len(labels):
        raise ValueError(f"class names repeat: {sorted({x for x in labels if labels.count(x) > 1})}")
    return labels


def _file_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"'{name}' is not a file name (a file beside this one, never a path)")
    return name


FileName = Annotated[str, AfterValidator(_file_name)]
Labels = Annotated[list[str], Field(min_length=2), AfterValidator(_unique)]  # a classifier's classes, in id order


def _load(path: Path, fix: str, validate: Callable[[Any], V]) -> V:
    """JSON at `path` through `validate`; any failure is one TextbenchError ending in `fix`."""
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; {fix}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as e:  # ValueError covers UnicodeDecodeError
        raise TextbenchError(f"{path}: not valid JSON ({str(e).splitlines()[0][:120]}); {fix}") from None
    return _parse(text, str(path), fix, validate)


def _parse(text: str, where: str, fix: str, validate: Callable[[Any], V]) -> V:
    """JSON `text` (of the file named `where`) through `validate`; any failure is one TextbenchError."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError covers JSONDecodeError
        raise TextbenchError(f"{where}: not valid JSON ({str(e).splitlines()[0][:120]}); {fix}") from None
    try:
        return validate(raw)
    except ValidationError as e:
        raise TextbenchError(f"{where}: {describe_invalid(e)}; {fix}") from None


class Artifact(BaseModel):
    """Base of every artifact: the checked keys are typed, any other key is kept as written."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def read(cls: type[A], path: str | Path, fix: str) -> A:
        """The artifact at `path`; `fix` says what rewrites it (e.g. "rerun `textbench tokenize -d X`")."""
        return _load(Path(path), fix, cls.model_validate)

    @classmethod
    def read_if_present(cls: type[A], path: str | Path, fix: str) -> A | None:
        """As `read`, but None when the file does not exist (a stage that has not run yet)."""
        return cls.read(path, fix) if Path(path).exists() else None

    @classmethod
    def parse(cls: type[A], text: str, where: str, fix: str) -> A:
        """As `read`, from the file's text (e.g. `git show REV:path`); `where` names it in errors."""
        return _parse(text, where, fix, cls.model_validate)

    def as_dict(self) -> dict[str, Any]:
        """The keys as written (no defaults filled in), for readers that pass the record on."""
        return self.model_dump(exclude_unset=True)

    def write(self, path: str | Path) -> None:
        """The one writer of the artifact: the keys given (as `as_dict`), as sorted, indented JSON
        (`io.write_json`), so what is written is what its reader checks."""
        write_json(path, self.as_dict())


# --- data -----------------------------------------------------------------------------------


class DroppedClass(Artifact):
    label: str
    docs: Count = 0
    reason: str = ""


class DatasetCard(Artifact):
    """card.json: the classes kept, documents per split and what preparation removed."""

    labels: Annotated[list[str], Field(min_length=1)]
    label_mode: Literal["single", "multi"] = "single"
    counts: dict[str, dict[str, Count]] = {}
    totals: dict[str, Count] = {}
    classes_missing_from_split: dict[str, list[str]] = {}
    dropped_classes: list[DroppedClass] = []
    duplicates_removed: dict[str, Count] = {}
    empty_docs_dropped: Count = 0
    split_origin: dict[str, str] = {}
    reader: dict[str, Any] = {}

    def split_totals(self) -> dict[str, int]:
        """Documents per split (`totals`, else summed from `counts`), in split order."""
        totals = self.totals or {s: sum(c.values()) for s, c in self.counts.items()}
        return {s: totals[s] for s in paths.SPLITS if s in totals}


def read_card(dataset: str) -> DatasetCard | None:
    """data/prepared/<dataset>/card.json, None before the dataset is prepared."""
    return DatasetCard.read_if_present(
        paths.prepared_dir(dataset) / paths.CARD, f"rerun `textbench prepare -d {dataset}`"
    )


class AuditDoc(Artifact):
    """An example document of the audit: its text clipped (pipeline/audit.py CLIP)."""

    id: str
    split: Literal["train", "dev", "test"]
    label: str  # a multi-label set joined by ", "
    text: str


class ExactDuplicates(Artifact):
    groups: dict[str, Count]
    copies: dict[str, Count]
    across_splits: Count
    examples: list[AuditDoc] = []


class LabelConflicts(Artifact):
    groups: Count
    docs: Count
    examples: list[list[AuditDoc]] = []


class NearPair(Artifact):
    similarity: Rate
    a: AuditDoc
    b: AuditDoc


class NearDuplicates(Artifact):
    pairs: dict[str, Count]  # "train-test": pairs of distinct texts, per split pair
    different_labels: Count
    examples: list[NearPair] = []


class TestNearTrain(Artifact):
    count: Count
    ids: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> TestNearTrain:
        if self.count != len(set(self.ids)):
            raise ValueError(f"count: {self.count}, but {len(set(self.ids))} distinct ids")
        return self


class LabelIssue(AuditDoc):
    suggested: str
    p_label: Rate


class LabelIssues(Artifact):
    skipped: str = ""  # why no search ran (multi-label, audit.folds 0)
    folds: Count = 0
    counts: dict[str, Count] = {}
    examples: list[LabelIssue] = []


class AuditParams(Artifact):
    threshold: Annotated[float, Field(gt=0, le=1)]
    num_perm: Positive
    shingle: dict[str, Positive]
    lsh_rows_per_band: Positive
    folds: Count


class DataAudit(Artifact):
    """audit.json: what the audit stage found in a prepared dataset (see pipeline/audit.py for each rule)."""

    label_mode: Literal["single", "multi"]
    params: AuditParams
    docs: dict[str, Count]
    exact_duplicates: ExactDuplicates
    label_conflicts: LabelConflicts
    near_duplicates: NearDuplicates
    test_near_train: TestNearTrain
    label_issues: LabelIssues

    @classmethod
    def of(cls, dataset: str) -> DataAudit | None:
        """data/audit/<dataset>/audit.json, None before the dataset is audited."""
        return cls.read_if_present(paths.audit_json(dataset), f"rerun `textbench audit -d {dataset}`")


class SplitStats(Artifact):
    docs: Count = 0
    unk_rate: Rate
    truncated_share: Rate = 0.0
    length_before_truncation: dict[str, Count] = {}  # p50 … p99, max


class MaxLenAuto(Artifact):
    """meta.json `max_len_auto`, present when max_len was chosen from the train lengths (tokenize.max_len_auto)."""

    chosen: Positive
    train_length_at_quantile: Positive
    quantile: Annotated[float, Field(gt=0, le=1)]
    min: Positive
    max: Positive


class TokenizedMeta(Artifact):
    """meta.json of a tokenized scheme (and of a model's tokenizer/): how text became ids."""

    scheme: Literal["subword", "vocab"]
    labels: Labels
    label_mode: Literal["single", "multi"] = "single"
    language: Literal["en", "zh"] = "en"
    max_len: Positive
    truncation: Literal["head", "head+tail"] = "head"
    vocab_size: Positive
    pad_id: Count
    fingerprint: str
    tokenizer_sha256: str = ""  # scheme subword: the tokenizer files beside it must hash to this
    encoder: str | None = None  # scheme subword
    zh_mode: Literal["char", "jieba"] | None = None  # scheme vocab, Chinese
    vocab_file: FileName | None = None  # scheme vocab
    embeddings_file: FileName | None = None
    splits: dict[str, SplitStats] = {}
    warnings: list[str] = []
    max_len_auto: MaxLenAuto | None = None  # None: max_len was given in params.yaml
    bag_max_len: Positive | None = None  # scheme vocab: the `bag_ids` column's cap, when above max_len

    @model_validator(mode="after")
    def _consistent(self) -> TokenizedMeta:
        if self.scheme == "subword" and not self.encoder:
            raise ValueError("encoder: required for scheme subword")
        if self.scheme == "vocab" and not self.vocab_file:
            raise ValueError("vocab_file: required for scheme vocab")
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"pad_id: {self.pad_id} is outside the vocabulary of {self.vocab_size}")
        if self.bag_max_len is not None and self.bag_max_len <= self.max_len:
            raise ValueError(f"bag_max_len: {self.bag_max_len} is not above max_len {self.max_len}")
        if self.max_len_auto is not None and self.max_len_auto.chosen != self.max_len:
            raise ValueError(f"max_len_auto: chose {self.max_len_auto.chosen}, but max_len is {self.max_len}")
        return self

    def reads(self, model: str) -> int:
        """How many ids `model` reads: a bag of n-grams reads `bag_max_len` where that column was written."""
        return self.bag_max_len if model in WHOLE_DOCUMENT and self.bag_max_len is not None else self.max_len

    @classmethod
    def of(cls, directory: str | Path) -> TokenizedMeta:
        """`directory`/meta.json: data/tokenized/<ds>/<scheme>/ or a model's tokenizer/."""
        return cls.read(Path(directory) / paths.META, tokenizer_fix(directory))

    def unk_rates(self) -> dict[str, float]:
        return {name: st.unk_rate for name, st in self.splits.items()}


def tokenizer_fix(directory: str | Path) -> str:
    """What rewrites a tokenizer dir: retraining for a model's tokenizer/, else the tokenize stage."""
    d = Path(directory)
    return retrain(d.parent) if d.name == paths.TOKENIZER else f"run `textbench tokenize -d {d.parent.name}`"


def read_vocab(path: Path, fix: str) -> list[str]:
    """vocab.json: the id → token list of scheme vocab."""
    return _load(path, fix, TypeAdapter(Annotated[list[str], Field(min_length=2)]).validate_python)


# --- training outputs ------------------------------------------------------------------------


def retrain(run_dir: str | Path) -> str:
    """What rewrites a model or report dir: the train command for models|reports/<ds>/<model>."""
    d = Path(run_dir)
    if d.parent.name == paths.SEEDS:  # an extra seed of the flow
        return f"retrain it (textbench benchmark -d {d.parents[2].name} -m {d.parents[1].name})"
    return f"retrain it (textbench train -d {d.parent.name} -m {d.name})"


class ModelConfig(Artifact):
    """config.json of a trained model: what rebuilds it offline, and its classes in output order."""

    model: str
    dataset: str
    scheme: Literal["subword", "vocab"]
    arch: dict[str, Any]
    labels: Labels
    num_labels: Annotated[int, Field(strict=True, ge=2)]
    label_mode: Literal["single", "multi"] = "single"  # multi: sigmoid outputs, every label >= threshold
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    temperature: Annotated[float, Field(strict=True, gt=0)] = 1.0  # probabilities: softmax/sigmoid(logits / T)
    vocab_size: Positive
    pad_id: Count
    max_len: Positive
    encoder: str | None = None
    encoder_config: dict[str, Any] | None = None  # scheme subword: the AutoConfig that rebuilds the encoder

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.model not in SCHEME_OF_MODEL:
            raise ValueError(f"model: unknown model '{self.model}'")
        if SCHEME_OF_MODEL[self.model] != self.scheme:
            raise ValueError(f"scheme: '{self.scheme}', but model '{self.model}' uses '{SCHEME_OF_MODEL[self.model]}'")
        if len(self.labels) != self.num_labels:
            raise ValueError(f"labels: {len(self.labels)} classes, but num_labels is {self.num_labels}")
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"pad_id: {self.pad_id} is outside the vocabulary of {self.vocab_size}")
        if self.scheme == "subword" and not isinstance((self.encoder_config or {}).get("model_type"), str):
            raise ValueError("encoder_config: scheme subword needs the encoder's AutoConfig (with model_type)")
        return self

    @classmethod
    def of(cls, model_dir: str | Path) -> ModelConfig:
        """models/<ds>/<model>/config.json."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir() or not (model_dir / paths.CONFIG).exists():
            raise TextbenchError(
                f"{model_dir}: not a trained model directory (no config.json); run `textbench train` first"
            )
        return cls.read(model_dir / paths.CONFIG, retrain(model_dir))


class ExportSource(Artifact):
    """export/source.json (paths.EXPORT_SOURCE): which weights `textbench export` built export/ from.
    A retrain keeps export/ (paths.KEPT_BY_RETRAIN), so every reader of it checks this first (`check`)."""

    weights_sha256: str

    @classmethod
    def of(cls, model_dir: str | Path) -> ExportSource:
        return cls(weights_sha256=sha256_file(Path(model_dir) / paths.WEIGHTS))

    @classmethod
    def check(cls, export_dir: Path, model_dir: Path, fix: str) -> None:
        """A TextbenchError ending in `fix` unless `export_dir` was built from `model_dir`'s current weights."""
        source = export_dir / paths.EXPORT_SOURCE
        if not source.is_file():
            raise TextbenchError(f"{export_dir}: no {paths.EXPORT_SOURCE} (exported by an older textbench); {fix}")
        if cls.read(source, fix).weights_sha256 != cls.of(model_dir).weights_sha256:
            raise TextbenchError(
                f"{export_dir}: stale, built from other weights than {Path(model_dir) / paths.WEIGHTS} "
                f"(the model was retrained since); {fix}"
            )


class ClassScores(Artifact):
    precision: Rate
    recall: Rate
    f1: Rate
    support: Count


class RunEnv(Artifact):
    """Where a run ran (pipeline/device.py `describe`): what can move its scores between machines."""

    device: str
    device_name: str = ""  # the GPU's name (CUDA runs)
    cpu: str
    isa: list[str]
    precision: str
    threads: Positive
    torch: str
    transformers: str

    def line(self) -> str:
        """One line: `cpu: Intel Xeon (avx2, avx512f) · fp32 · 2 threads · torch 2.3 · transformers 4.4`."""
        where = self.device_name if self.device == "cuda" else f"{self.cpu} ({', '.join(self.isa) or 'no AVX2'})"
        return (
            f"{self.device}: {where} · {self.precision} · {self.threads} thread{'s' * (self.threads != 1)} · "
            f"torch {self.torch} · transformers {self.transformers}"
        )


Loss = Annotated[float, Field(strict=True, ge=0.0)]  # a Brier score or NLL: no NaN, string or bool


class Calibrated(Artifact):
    ece: Rate
    brier: Loss
    nll: Loss


class Calibration(Artifact):
    """metrics.json `calibration`: the dev-fitted temperature and the test calibration before/after it."""

    temperature: Annotated[float, Field(strict=True, gt=0)]
    before: Calibrated
    after: Calibrated


# The test scores of a run (metrics.json keys), in the order every table shows them: what the report,
# reports/metrics.json and the model card read. A multi-label run adds MULTI_SCORES (its `accuracy` is
# subset accuracy). HEADLINE: the few a one-line summary shows per label mode (CLI, API, the flow's rows).
SCORES = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
)
MULTI_SCORES = ("micro_f1", "hamming_loss")
HEADLINE: dict[str, dict[str, str]] = {  # label mode → {score: its name in a summary line}
    "single": {"accuracy": "accuracy", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1"},
    "multi": {"micro_f1": "micro-F1", "macro_f1": "macro-F1", "accuracy": "subset accuracy"},
}
SUMMARY = tuple(dict.fromkeys(k for scores in HEADLINE.values() for k in scores))  # every headline score


class RunMetrics(Artifact):
    """metrics.json of one training run: test scores, per class and the confusion matrix (single-label;
    multi-label runs have micro/samples scores and Hamming loss instead, and `accuracy` is subset accuracy)."""

    label_mode: Literal["single", "multi"] = "single"
    accuracy: Rate
    macro_precision: Rate
    macro_recall: Rate
    macro_f1: Rate
    weighted_precision: Rate
    weighted_recall: Rate
    weighted_f1: Rate
    labels: Labels
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[Count]] = []
    micro_f1: Rate | None = None
    hamming_loss: Rate | None = None
    seed: int | None = None
    fingerprint: str | None = None
    env: RunEnv | None = None  # None: trained before textbench recorded it
    calibration: Calibration | None = None  # absent in runs trained before calibration existed

    @model_validator(mode="after")
    def _consistent(self) -> RunMetrics:
        n = len(self.labels)
        if self.label_mode == "multi":
            if self.micro_f1 is None or self.hamming_loss is None:
                raise ValueError("micro_f1: a multi-label run needs micro_f1 and hamming_loss")
        elif len(self.confusion_matrix) != n or any(len(row) != n for row in self.confusion_matrix):
            raise ValueError(f"confusion_matrix: not {n} x {n} (one row and column per label)")
        if set(self.per_class) != set(self.labels):
            raise ValueError("per_class: classes differ from labels")
        return self

    @classmethod
    def of(cls, report_dir: str | Path) -> RunMetrics | None:
        """reports/<ds>/<model>/metrics.json, None when the run has not written one."""
        return cls.read_if_present(Path(report_dir) / paths.METRICS, retrain(report_dir))


class RunStatus(Artifact):
    """status.json the flow writes per job (see flows/benchmark.py for the meaning of each state)."""

    status: Literal["ok", "failed", "skipped", "not_comparable", "running"]
    error: str = ""
    fingerprint: str | None = None
    job_fingerprint: str | None = None
    wall_time_s: Annotated[float, Field(ge=0)] = 0.0
    started_at: float | None = None

    @classmethod
    def of(cls, dataset: str, model: str, seed: int) -> RunStatus | None:
        """The job's status (paths.job_status), None when no flow ran the job."""
        return cls.read_if_present(
            paths.job_status(dataset, model, seed),
            "delete it and rerun `textbench benchmark` (it rewrites the job's status)",
        )


# --- report ---------------------------------------------------------------------------------

_SCORES = TypeAdapter(dict[str, dict[str, dict[str, Annotated[float, Field(strict=True)]]]])


def read_scores() -> dict[str, dict[str, dict[str, float]]]:
    """reports/metrics.json: {dataset: {model: {score: value}}}; {} before the first report."""
    path = paths.metrics_json()
    return _load(path, "rerun `textbench report`", _SCORES.validate_python) if path.exists() else {}


class Environments(Artifact):
    """reports/environment.json: the distinct RunEnv of the report's runs, and which one each run had."""

    environments: list[RunEnv] = []
    runs: dict[str, dict[str, Count]] = {}  # dataset → model → index into environments

    @model_validator(mode="after")
    def _consistent(self) -> Environments:
        bad = sorted(f"{d}.{m}" for d, ms in self.runs.items() for m, i in ms.items() if i >= len(self.environments))
        if bad:
            raise ValueError(f"runs: {bad[:5]} point past the {len(self.environments)} environments")
        return self

    def of(self, dataset: str, model: str) -> RunEnv | None:
        i = self.runs.get(dataset, {}).get(model)
        return None if i is None else self.environments[i]


def encode_classes(classes: np.ndarray, n_classes: int) -> str:
    """Class indices [n] as base64 of little-endian uint8 (uint16 above 256 classes): compact in git."""
    return base64.b64encode(np.asarray(classes, _class_dtype(n_classes)).tobytes()).decode("ascii")


def _class_dtype(n_classes: int) -> str:
    return "<u1" if n_classes <= 256 else "<u2"


class SeedScores(Artifact):
    accuracy: Rate
    macro_f1: Rate


class ModelOutcome(Artifact):
    fingerprint: str | None = None
    pred: str  # encode_classes of the test predictions, in the dataset's id order
    # seed (as text) → its test scores, the primary's included; only for a model run with several seeds
    seeds: dict[str, SeedScores] = {}

    def seed_range(self, score: str) -> tuple[float, float] | None:
        """Lowest and highest `score` (accuracy, macro_f1) over its seeds; None with fewer than two."""
        values = [getattr(s, score) for s in self.seeds.values()]
        return (min(values), max(values)) if len(values) > 1 else None


class DatasetOutcomes(Artifact):
    """One single-label dataset's test set (ids hashed, gold classes) and each model's predictions on it."""

    labels: Labels
    n: Count
    ids_sha256: str
    gold: str  # encode_classes, test documents sorted by id
    models: dict[str, ModelOutcome] = {}

    def classes(self, encoded: str) -> np.ndarray:
        return np.frombuffer(base64.b64decode(encoded), _class_dtype(len(self.labels))).astype(np.int64)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetOutcomes:
        for name, encoded in [("gold", self.gold), *((f"models.{m}.pred", o.pred) for m, o in self.models.items())]:
            try:
                values = self.classes(encoded)
            except ValueError:
                raise ValueError(f"{name}: not base64 class indices") from None
            if len(values) != self.n or (len(values) and values.max() >= len(self.labels)):
                raise ValueError(f"{name}: not {self.n} class indices below {len(self.labels)}")
        return self


class Outcomes(Artifact):
    """reports/outcomes.json: every comparable single-label run's test predictions (the primary seed),
    and the test settings the report used, so that `textbench diff` can test two commits' runs."""

    confidence: Annotated[float, Field(gt=0, lt=1)]
    bootstrap: Count
    seed: int
    datasets: dict[str, DatasetOutcomes] = {}
    skipped: dict[str, str] = {}  # dataset → why its predictions are not recorded (multi-label)


# --- learning curves ------------------------------------------------------------------------


def encode_decisions(decisions: np.ndarray, n_classes: int) -> str:
    """Test decisions compactly: class ids [n] as `encode_classes`, or a 0/1 matrix [n, C] (multi-label)
    as base64 of its row-major bits (numpy packbits)."""
    if np.ndim(decisions) == 2:
        return base64.b64encode(np.packbits(np.asarray(decisions, bool).ravel()).tobytes()).decode("ascii")
    return encode_classes(decisions, n_classes)


class LearningPoint(Artifact):
    model: str
    fraction: Annotated[float, Field(gt=0, le=1)]
    train_docs: Positive
    classes_in_train: Count
    fit_s: Annotated[float, Field(ge=0)]
    pred: str  # encode_decisions of the test predictions, documents in id order


class LearningPoints(Artifact):
    """reports/learning/<ds>/points.json (pipeline/curves.py): the test set's gold decisions and every
    (model, train share) fit's size and test decisions; models skipped and why."""

    dataset: str
    seed: int
    labels: Labels
    label_mode: Literal["single", "multi"]
    train_docs: Count
    n: Count
    gold: str
    points: list[LearningPoint] = []
    skipped: dict[str, str] = {}
    total_s: Annotated[float, Field(ge=0)] = 0.0

    def decisions(self, encoded: str) -> np.ndarray:
        """Class ids [n], or the 0/1 matrix [n, C] (multi-label)."""
        raw = base64.b64decode(encoded)
        if self.label_mode == "single":
            return np.frombuffer(raw, _class_dtype(len(self.labels))).astype(np.int64)
        size = self.n * len(self.labels)
        return np.unpackbits(np.frombuffer(raw, np.uint8))[:size].reshape(self.n, len(self.labels)).astype(np.int64)

    @model_validator(mode="after")
    def _consistent(self) -> LearningPoints:
        for name, encoded in [("gold", self.gold), *((f"points.{i}.pred", p.pred) for i, p in enumerate(self.points))]:
            if not self.points and name == "gold":
                continue
            try:
                values = self.decisions(encoded)
            except ValueError:
                raise ValueError(f"{name}: not base64 test decisions") from None
            if len(values) != self.n or (
                self.label_mode == "single" and len(values) and values.max() >= len(self.labels)
            ):
                raise ValueError(f"{name}: not {self.n} test decisions over {len(self.labels)} classes")
        return self

    @classmethod
    def of(cls, dataset: str) -> LearningPoints | None:
        """The dataset's learning curves, or None before the curves stage has run."""
        return cls.read_if_present(paths.learning_points(dataset), f"rerun `textbench curves -d {dataset}`")
