"""The typed configuration: params.yaml → `Config`, validated, with errors that name the bad key.

params.yaml is the one file a user edits. Every stage receives a `Config` (or a section of it);
nothing else reads params.yaml. Unknown keys are errors, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from pipeline import paths
from pipeline.archs import resolve_arch
from pipeline.errors import TextbenchError, describe_invalid
from pipeline.families import FAMILIES, FAMILY, MODELS, TRAIN_KEYS, describe_families, family_of, known_models, members
from pipeline.io import decode_utf8


class Section(BaseModel):
    """Base of every config section: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(Section):
    """One corpus: where it comes from, how it is cleaned and split, and its tokenization length."""

    kind: Literal["reuters", "thucnews", "local"] = Field(description="parser to use")
    language: Literal["en", "zh"] = Field("en", description="drives the word/char tokenizer")
    url: str = Field("", description="canonical download URL (empty for local corpora)")
    filename: str = Field("", description="archive name under data/raw/ and on the mirror")
    sha256: str = Field("", description="expected sha256 of the archive; empty skips the check")
    # kind: local (exactly one of path, files, class_files)
    path: str = Field(
        "",
        description="local corpus: a CSV/TSV/JSONL/Parquet/fastText file, or a document tree "
        "([<split>/]<label>/*.txt) as a folder or a .tar.gz/.tgz/.zip archive",
    )
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "fasttext", "folder"] = "auto"
    text_column: str | Annotated[list[str], Field(min_length=1)] = Field(
        "text", description="the text column, or several joined in order (e.g. [title, description])"
    )
    label_column: str = "label"
    columns: list[str] = Field(default_factory=list, description="a headerless CSV/TSV's field names, in order")
    classes: list[str] = Field(
        default_factory=list, description="only these classes (a tree: only these class folders); empty = all"
    )
    missing_labels: Literal["error", "drop"] = Field(
        "error", description="a document whose label is missing (empty, NaN, NA, null, None...): error or drop"
    )
    label_delimiter: str = Field(
        "",
        description="label_mode multi: separator of the labels in a text label "
        "column (e.g. '|' for CSV/TSV); empty = the column holds a list (JSONL/Parquet)",
    )
    split_column: str = Field("", description="column holding train/dev/test; empty = no given split")
    files: dict[str, str] = Field(default_factory=dict, description="one file per split: {train: .., test: ..}")
    class_files: dict[str, str] = Field(
        default_factory=dict, description="one file per class, one document a line: {label: file} (MR/SST/Subj style)"
    )
    encoding: str = Field("utf-8", description="text encoding of the corpus files (Parquet is always UTF-8)")
    encoding_fallback: str = Field(
        "",
        description="encoding for a file that is not valid `encoding` (counted "
        "in card.json); empty = such a file is an error",
    )
    # kind: reuters
    split: Literal["modapte", "random"] = "modapte"
    # every kind but thucnews
    label_mode: Literal["single", "multi"] = Field(
        "single",
        description="single: one label a document; multi: "
        "a set (Reuters: all its topics; local: a list or delimited column)",
    )
    threshold: Annotated[float, Field(gt=0, lt=1)] | Literal["dev"] = Field(
        0.5,
        description="multi: probability from which a label is predicted, or `dev`: the one of 0.05..0.95 "
        "with the best dev micro-F1 (chosen after training)",
    )
    # kind: thucnews
    categories: list[str] = Field(default_factory=list)
    per_class: int = Field(0, ge=0, description="documents sampled per category; 0 = all")
    # every kind
    min_docs_per_class: int = Field(1, ge=1, description="classes with fewer documents are dropped")
    classes_without_train: Literal["error", "drop"] = Field(
        "error", description="a class with dev/test but no train documents: error, or drop it (listed in card.json)"
    )
    ratios: tuple[float, float, float] = Field((0.9, 0.05, 0.05), description="train/dev/test for random splits")
    dev_ratio: float = Field(0.1, gt=0, lt=1, description="share of train carved off as dev when no dev is given")
    max_len: int | None = Field(
        None,
        ge=8,
        description="tokens kept per document; empty = chosen from the train lengths (tokenize.max_len_auto)",
    )
    encoder: str = Field("minilm", description="HF name, local checkpoint dir, or 'minilm' (packaged, offline)")
    bag_max_len: int = Field(
        8192,
        ge=0,
        description="vocab ids the bags of n-grams (tfidf_svm, tfidf_lr, fasttext) read; 0 or at most max_len: max_len",
    )

    @field_validator("filename")
    @classmethod
    def _plain_filename(cls, v: str) -> str:
        if v and (problem := paths.plain_name_problem(v)):
            raise ValueError(f"{problem}: it is the archive's name under data/raw/<ds>/")
        return v

    @field_validator("encoding", "encoding_fallback")
    @classmethod
    def _text_codec(cls, v: str) -> str:
        try:
            b"\n\n\n\n".decode(v or "utf-8")  # not b"": empty input skips the codec lookup
        except LookupError:
            raise ValueError(f"'{v}' is not a text encoding Python knows (e.g. utf-8, latin-1, cp1252)") from None
        return v

    @model_validator(mode="after")
    def _one_local_source(self) -> DatasetConfig:
        if self.label_mode == "multi" and self.kind == "thucnews":
            raise ValueError("label_mode: THUCNews files hold one category each; use single")
        if self.label_delimiter and self.label_mode != "multi":
            raise ValueError("label_delimiter: splits label sets, so it needs label_mode: multi")
        if self.kind != "local":
            return self
        given = [k for k in ("path", "files", "class_files") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"a local corpus needs exactly one of path, files, class_files (given: {given or 'none'})")
        if unknown := set(self.files) - {"train", "dev", "test"}:
            raise ValueError(f"files: unknown split(s) {sorted(unknown)}; use train/dev/test")
        if self.files and not {"train", "test"} <= set(self.files):
            raise ValueError("files needs at least `train` and `test` (dev is carved from train)")
        if self.class_files and self.format != "auto":
            raise ValueError("class_files are read one document a line; leave `format` at auto")
        for key in ("columns", "classes"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ValueError(f"{key}: {getattr(self, key)} names one more than once")
        return self

    def text_columns(self) -> list[str]:
        """`text_column` as a list (its columns are joined in this order)."""
        return [self.text_column] if isinstance(self.text_column, str) else list(self.text_column)

    def local_sources(self) -> list[str]:
        """The files or folder a local corpus is read from, as params give them."""
        return [self.path] if self.path else [*self.files.values(), *self.class_files.values()]

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r <= 0 for r in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(
                f"train/dev/test ratios {list(v)} must each be above 0 (every split needs documents) and sum to 1"
            )
        return v


class VocabConfig(Section):
    """Word/char vocabulary for the classic models, built from the train split only."""

    max_size: int = Field(50000, ge=2)
    min_freq: int = Field(1, ge=1)
    zh_mode: Literal["char", "jieba"] = "char"
    embeddings: str = Field("", description=".npz (with a vocab file) or word2vec .txt; empty = random init")
    embeddings_vocab: str = Field("", description="vocabulary file (txt, one token a line, or JSON) for .npz")


class MaxLenAutoConfig(Section):
    """A dataset without `max_len` gets the train length (in each scheme's tokens, specials included) that
    covers `quantile` of its documents, rounded up to a multiple of 8, clamped to [min, max]."""

    STEP: ClassVar[int] = 8  # a chosen max_len is a multiple of this (before clamping)
    quantile: float = Field(0.9, gt=0, le=1, description="share of train documents kept whole")
    min: int = Field(32, ge=8)
    max: int = Field(256, ge=8)

    @model_validator(mode="after")
    def _ordered(self) -> MaxLenAutoConfig:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class TokenizeConfig(Section):
    """How prepared text becomes token ids (pipeline/tokenize); vocab settings apply to the vocab scheme."""

    truncation: Literal["head", "head+tail"] = Field("head", description="head, or head+tail (first k + last rest)")
    batch_size: int = Field(1000, ge=1, description="documents per record batch")
    workers: int = Field(2, ge=1, description="processes for jieba segmentation")
    vocab: VocabConfig = VocabConfig()
    max_len_auto: MaxLenAutoConfig = MaxLenAutoConfig()


class TrainConfig(Section):
    """Training settings shared by all models; each model may override any of them."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    grad_clip: float = Field(1.0, ge=0)
    grad_accum: int = Field(1, ge=1)
    batch_tokens: int = Field(
        0,
        ge=0,
        description="cap on real tokens per batch: batch_size shrinks to batch_tokens / the mean train "
        "length (at least 8), so long documents take more, smaller steps; 0 = batch_size as given",
    )
    class_weights: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_every: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        0,
        description="optimizer steps (= batches unless grad_accum > 1) between dev "
        "evaluations; 0 = at the end of each epoch; auto = each epoch, or more often when an epoch "
        "holds more than EVAL_BATCHES x batch_tokens real tokens (pipeline/train/loop.py resolve_budget)",
    )
    patience: int = Field(
        5,
        ge=0,
        description="stop after this many dev evaluations without a gain, spanning at least one epoch "
        "since the best (a plateau); 0 = never",
    )
    select_metric: Literal["accuracy", "macro_f1", "loss"] = Field(
        "accuracy", description="dev metric picking the best checkpoint"
    )
    max_steps: int = Field(0, ge=0, description="cap on optimizer steps; 0 = no cap")
    time_budget_s: float = Field(
        0, ge=0, description="cap on training wall seconds (dev evaluations included); 0 = none"
    )
    max_train_samples: int = Field(0, ge=0, description="subsample train for quick runs; 0 = all")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    threads: int = Field(0, ge=0, description="CPU threads; 0 = all cores")

    RUNTIME_KEYS: ClassVar[tuple[str, ...]] = ("device", "threads")  # where a run happens, not what it learns

    def identity(self, family: str) -> dict[str, Any]:
        """The settings that change a `family` model's results (all but RUNTIME_KEYS, and for families whose
        training reads only some keys, those: families.TRAIN_KEYS): what a run's fingerprint hashes."""
        keys = TRAIN_KEYS[family]
        return {
            k: v
            for k, v in self.model_dump(mode="json").items()
            if k not in self.RUNTIME_KEYS and (keys is None or k in keys)
        }


class ModelSpec(Section):
    """`models.<name>` or `families.<family>`: architecture kwargs and overrides of `train`."""

    arch: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


_NO_SPEC = ModelSpec()


class _Invalid(ValueError):
    """A params layer that does not validate; the message starts with the key at fault."""


SeedList = Annotated[list[int], Field(min_length=1)]


class SeedsBy(Section):
    """`benchmark.seeds`: a model's own list (`models`), else its family's (`families`), else `default`."""

    default: SeedList
    families: dict[str, SeedList] = {}
    models: dict[str, SeedList] = {}

    @model_validator(mode="after")
    def _one_primary(self) -> SeedsBy:
        for key, known in (("families", FAMILIES), ("models", tuple(FAMILY))):
            unknown = sorted(set(getattr(self, key)) - set(known))
            if unknown:
                raise ValueError(f"{key}: {unknown} not among {', '.join(known)}")
        lists = {"default": self.default}
        lists |= {
            f"{key}.{name}": seeds for key in ("families", "models") for name, seeds in getattr(self, key).items()
        }
        for name, seeds in lists.items():
            if len(set(seeds)) != len(seeds):
                raise ValueError(f"{name}: seeds {seeds} repeat a value")
        firsts = {name: seeds[0] for name, seeds in lists.items()}
        if len(set(firsts.values())) > 1:
            raise ValueError(
                "every list must start with the same primary seed (it fills models|reports/<ds>/<model>/ and "
                f"is the run the report compares models on): first seeds {firsts}"
            )
        return self

    def of(self, model: str) -> list[int]:
        return self.models.get(model) or self.families.get(family_of(model)) or self.default


class BenchmarkConfig(Section):
    """What `textbench benchmark` trains: every dataset × model × seed (the first seed fills models|reports/<ds>/<model>/)."""

    datasets: list[str]
    models: list[str]
    seeds: SeedsBy = Field(
        SeedsBy(default=[42]),
        description="a list (the seeds of every model), or {default: [...], families: {<family>: [...]}, "
        "models: {<model>: [...]}} (a model's own list, else its family's, else default); every list starts "
        "with the same primary seed (models|reports/<ds>/<model>/), extra seeds go to .../<model>/seeds/<seed>/",
    )
    uncovered: Literal["skip", "train"] = Field(
        "skip",
        description="BERT-family jobs whose encoder reads > 10% of tokens as [UNK]: skip them (the report "
        "says why) or train them anyway (flagged not comparable)",
    )

    @field_validator("seeds", mode="before")
    @classmethod
    def _one_list(cls, v: Any) -> Any:
        return {"default": v} if isinstance(v, list) else v

    def seeds_for(self, model: str) -> list[int]:
        """The seeds `model` trains with; the first is the primary seed, the same for every model."""
        return self.seeds.of(model)

    @property
    def primary_seed(self) -> int:
        """The first seed of every model: its run fills models|reports/<ds>/<model>/."""
        return self.seeds.default[0]

    def describe_seeds(self) -> str:
        """`42, 7` or `42; family linear: 42, 7, 1; fasttext: 42, 7, 1` (the report's header)."""
        lists = [(f"family {k}", v) for k, v in self.seeds.families.items()] + list(self.seeds.models.items())
        return "; ".join(
            [", ".join(map(str, self.seeds.default))] + [f"{k}: {', '.join(map(str, v))}" for k, v in lists]
        )


class OrchestrationConfig(Section):
    """How the Prefect flow runs the training tasks (flows/benchmark.py)."""

    task_runner: Literal["local", "dask", "ray"] = "local"
    dask_address: str = Field("", description="existing Dask scheduler address; empty = LocalCluster")
    ray_address: str = Field("", description="existing Ray cluster address; empty = a temporary local Ray")
    retries: int = Field(0, ge=0, description="extra attempts of a failed training before it is marked failed")
    gpus: str = Field("auto", description="auto | none | comma-separated device ids; one training per GPU")
    cpu_slots: int = Field(
        0,
        ge=0,
        description="without GPUs: trainings at a time, each with cores/cpu_slots "
        "threads; 0 = auto (one per core, at most 4)",
    )


class ReportConfig(Section):
    """`textbench report`: confidence intervals, significance level and error examples."""

    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of the test predictions; 0 = no CIs")
    confidence: float = Field(0.95, gt=0, lt=1, description="CI level; tests are significant at 1 - confidence")
    error_examples: int = Field(10, ge=0, description="most confidently wrong test documents shown; 0 = none")


class AuditConfig(Section):
    """`textbench audit` (pipeline/audit.py): duplicates, near-duplicates and suspected label errors per dataset."""

    threshold: float = Field(
        0.8, gt=0, le=1, description="near-duplicates: estimated Jaccard similarity of shingles from this on"
    )
    shingle: dict[Literal["en", "zh"], Annotated[int, Field(ge=1)]] = Field(
        {"en": 2, "zh": 2}, description="shingle length by dataset language: words (en) or characters (zh)"
    )
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (signature length)")
    folds: int = Field(5, ge=0, description="cross-validation folds of the label-error search; 0 = no search")
    examples: int = Field(5, ge=0, description="examples listed per finding in audit.json and the report")


class CurvesConfig(Section):
    """`textbench curves` (the DVC curves stage): test scores of fast models trained on stratified shares of train."""

    fractions: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        [0.01, 0.03, 0.1, 0.3, 1.0], min_length=1, description="shares of the train split, each class kept >= 1 doc"
    )
    models: list[str] = Field(
        ["tfidf_svm", "fasttext", "bert_fnn"], description="any registered models; [] = no learning curves"
    )

    @field_validator("fractions")
    @classmethod
    def _distinct(cls, v: list[float]) -> list[float]:
        if len(set(v)) != len(v):
            raise ValueError(f"fractions {v} repeat a value")
        return sorted(v)

    @field_validator("models")
    @classmethod
    def _registered(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in MODELS:
                raise ValueError(f"'{name}' is not a registered model (known models: {known_models()})")
        if len(set(v)) != len(v):
            raise ValueError(f"models {v} repeat a name")
        return v


class Config(Section):
    seed: int = 42
    mirror: str = Field("", description="directory or base URL tried before canonical sources")
    datasets: dict[str, DatasetConfig]
    tokenize: TokenizeConfig = TokenizeConfig()
    train: TrainConfig = TrainConfig()
    families: dict[str, ModelSpec] = Field(
        default_factory=dict,
        description="classic | linear (scheme vocab) | "
        "bert (scheme subword): arch and train for every model of the family",
    )
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    benchmark: BenchmarkConfig
    orchestration: OrchestrationConfig = OrchestrationConfig()
    report: ReportConfig = ReportConfig()
    audit: AuditConfig = AuditConfig()

    curves: CurvesConfig = CurvesConfig()
    _source: str = PrivateAttr("params.yaml")

    @property
    def source(self) -> str:
        """The params file this config came from: error messages name it, not a fixed params.yaml."""
        return self._source

    @field_validator("datasets")
    @classmethod
    def _plain_dataset_keys(cls, v: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        for key in v:
            problem = paths.plain_name_problem(key) or (f"{key!r} contains '.'" if "." in key else "")
            if not problem and key in paths.REPORTS_OWN:
                problem = f"{key!r} is one of reports/'s own folders {list(paths.REPORTS_OWN)}"
            if problem:
                # a dot would also split the key in DVC's `datasets.${item}` stage params
                raise ValueError(f"key {problem}: a dataset key names its data/, models/ and reports/ folders")
        return v

    @model_validator(mode="after")
    def _benchmark_names_exist(self) -> Config:
        for name in self.benchmark.datasets:
            if name not in self.datasets:
                raise ValueError(f"benchmark.datasets names '{name}', not a key of datasets ({sorted(self.datasets)})")
        for name in self.benchmark.models:
            if name not in MODELS:
                raise ValueError(
                    f"benchmark.models names '{name}', not a registered model (known models: {known_models()})"
                )
        for name in self.models:
            if name not in MODELS:
                raise ValueError(f"models.{name}: unknown model; known models are {known_models()}")
        for name in self.families:
            if name not in FAMILIES:
                raise ValueError(f"families.{name}: unknown family; known families are {describe_families()}")
        return self

    @model_validator(mode="after")
    def _train_overrides_validate(self) -> Config:
        """Every `families.<f>.train` and `models.<name>.train` is checked at load, not when training starts."""
        for model in sorted({*self.models, *(m for f in self.families for m in members(f)[:1])}):
            self._merged_train(model)
        return self

    @model_validator(mode="after")
    def _archs_validate(self) -> Config:
        """Every model's effective arch is checked at load, by every command (pipeline/archs.py, no torch):
        the models params give an arch, and every member of a family given one."""
        given = {*(m for m, spec in self.models.items() if spec.arch)}
        given |= {m for f, spec in self.families.items() if spec.arch for m in members(f)}
        for model in sorted(given):
            try:
                resolve_arch(model, self.arch_for(model))
            except TextbenchError as e:
                raise ValueError(str(e)) from None
        return self

    def dataset(self, name: str) -> DatasetConfig:
        """The named dataset's section, or a clear error listing the known names."""
        if name not in self.datasets:
            raise TextbenchError(f"unknown dataset '{name}': {self.source} datasets has {sorted(self.datasets)}")
        return self.datasets[name]

    def train_for(self, model: str) -> TrainConfig:
        """Effective train settings of `model`, most specific wins: TrainConfig defaults < params `train:`
        < `families.<family>.train` (pipeline/families.py) < `models.<model>.train`.
        Nothing else takes part: the registry holds no train settings (profiles/paper.yaml spells out
        the published ones), so what params.yaml says is what trains."""
        try:
            return self._merged_train(model)
        except _Invalid as e:
            raise TextbenchError(f"{self.source}: {e}") from None

    def _merged_train(self, model: str) -> TrainConfig:
        """train_for's layers, each validated as it is applied so an error names the layer's key."""
        family = family_of(model)  # TextbenchError listing the known models
        merged, tc = self.train.model_dump(), self.train
        for prefix, layer in (
            (f"families.{family}.train", self.families.get(family, _NO_SPEC).train),
            (f"models.{model}.train", self.models.get(model, _NO_SPEC).train),
        ):
            if layer:
                merged = {**merged, **layer}
                try:
                    tc = TrainConfig(**merged)
                except ValidationError as e:
                    raise _Invalid(describe_invalid(e, prefix, UNKNOWN_PARAMS_KEY)) from None
        return tc

    def arch_for(self, model: str) -> dict[str, Any]:
        """The arch kwargs params give `model`, most specific wins: `families.<family>.arch` <
        `models.<model>.arch`. `resolve_arch(model, ...)` lays them over the registry's arch (the
        architecture's identity) and the classes' defaults and validates them. A family arch key
        must fit every model of the family: one that does not is an error naming
        `families.<family>.arch.<key>`. Both are checked when params load (`_archs_validate`)."""
        family = family_of(model)
        family_arch = self.families.get(family, _NO_SPEC).arch
        if family_arch:
            _check_family_arch(family, json.dumps(family_arch, sort_keys=True, default=str))
        return {**family_arch, **self.models.get(model, _NO_SPEC).arch}

    @property
    def effective_mirror(self) -> str:
        """TEXTBENCH_MIRROR wins over the params key."""
        return os.environ.get("TEXTBENCH_MIRROR", "") or self.mirror


@functools.lru_cache(maxsize=64)
def _check_family_arch(family: str, arch_json: str) -> None:
    """Each key of `families.<family>.arch` must be a valid arch kwarg of every member model."""
    for key, value in json.loads(arch_json).items():
        for model in members(family):
            try:
                resolve_arch(model, {key: value})
            except TextbenchError as e:
                detail = str(e).split(": ", 1)[1] if str(e).startswith(f"models.{model}.arch") else str(e)
                if detail.startswith("unknown key"):
                    detail = (
                        f"unknown key for {model}{detail.removeprefix('unknown key')}; a family's arch applies "
                        f"to all of {', '.join(members(family))}: set this key under models.<name>.arch instead"
                    )
                else:
                    detail = f"{detail} (for {model})"
                raise TextbenchError(f"families.{family}.arch.{key}: {detail}") from None


# a key params.yaml does not have, in every params error
UNKNOWN_PARAMS_KEY = "unknown key (check the spelling against params.yaml's documented keys)"


def load_config(path: str | os.PathLike = "params.yaml") -> Config:
    """Read and validate params.yaml; any problem is one TextbenchError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise TextbenchError(f"{path}: not found; run from the project root or pass --params PATH")
    return config_from_dict(read_yaml(path), source=str(path))


class ParamsLoader(yaml.SafeLoader):
    """safe_load for files users edit: a key given twice in one mapping is an error (YAML keeps the last
    silently), and aliases are refused (`*name` copies a node: nested aliases grow a tiny file into gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(f"line {mark.line + 1}: YAML aliases (*name) are not allowed; write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise _Refused(f"duplicate key '{key}' (line {seen[key]} and line {line}); keep one of them")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    """A rule of ParamsLoader broken (the reader adds the file's name)."""


def read_yaml(path: Path, loader: type[ParamsLoader] = ParamsLoader) -> dict[str, Any]:
    """A params-style YAML file as a mapping (empty file: {}): UTF-8, no duplicate keys, no aliases;
    anything else is one TextbenchError naming the file and the line or byte."""
    text = decode_utf8(path.read_bytes(), str(path))
    try:
        raw = yaml.load(text, Loader=loader)
    except _Refused as e:
        raise TextbenchError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise TextbenchError(f"{path}: not valid YAML ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TextbenchError(f"{path}: the top level must be a mapping of params keys, not a {type(raw).__name__}")
    return raw


def config_from_dict(raw: dict[str, Any], source: str = "params.yaml") -> Config:
    """Validate an already-parsed mapping (tests and profiles use this); `source` names it in errors."""
    try:
        cfg = Config(**raw)
    except ValidationError as e:
        raise TextbenchError(f"{source}: {describe_invalid(e, unknown=UNKNOWN_PARAMS_KEY)}") from None
    cfg._source = source
    return cfg
