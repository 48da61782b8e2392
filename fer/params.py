"""params.yaml as typed, validated objects: one place that knows every knob and its allowed values."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fer.errors import FerError

PARAMS_FILE = "params.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    source: Literal["synthetic", "kaggle", "csv", "folder", "zip"] = "synthetic"
    path: str = "data"
    kaggle_dataset: str = "msambare/fer2013"
    max_side: int = Field(256, ge=16)


class SyntheticParams(_Section):
    n_images: int = Field(6000, ge=70)
    image_size: int = Field(48, ge=32, le=512)
    photo: bool = False
    photo_size: int = Field(160, ge=64, le=1024)


class AlignParams(_Section):
    method: Literal["resize", "haar"] = "resize"
    size: int = Field(48, ge=16, le=512)
    margin: float = Field(0.15, ge=0.0, le=1.0)
    min_face: int = Field(20, ge=8)
    on_miss: Literal["resize", "drop"] = "resize"
    samples: int = Field(16, ge=1, le=64)


class SplitParams(_Section):
    strategy: Literal["stratified", "original"] = "stratified"
    val: float = Field(0.1, gt=0.0, lt=0.5)
    test: float = Field(0.1, gt=0.0, lt=0.5)


class AugmentParams(_Section):
    flip: bool = True
    degrees: float = Field(10.0, ge=0, le=45)
    translate: float = Field(0.08, ge=0, le=0.3)   # fraction of the image side
    scale: float = Field(0.1, ge=0, le=0.5)        # zoom in [1 - scale, 1 + scale]
    erasing: float = Field(0.25, ge=0, le=1)       # probability of erasing one random patch


class TrainParams(_Section):
    """Training knobs shared by every model; any of them can be overridden inside models.<name>."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=2)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(2e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    class_weights: bool = False
    warmup_epochs: int = Field(1, ge=0)
    patience: int = Field(3, ge=1)   # epochs without a better val accuracy before stopping early
    max_train_images: int = Field(0, ge=0)   # 0 = all; caps per-epoch work for slow models on a CPU
    augment: AugmentParams = AugmentParams()


class ModelParams(BaseModel):
    """One entry of `models`: the architecture, plus any TrainParams key overridden for it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    arch: str
    image_size: int = Field(48, ge=16, le=512)
    pretrained: bool | str = False   # true: the library's weights; a path: local weights
    options: dict = {}

    @model_validator(mode="after")
    def _overrides_are_train_keys(self):
        for key in self.model_extra or {}:
            if key not in TrainParams.model_fields:
                raise ValueError(f"unknown key {key!r}; a model takes arch, image_size, pretrained, options "
                                 f"or a train key ({', '.join(TrainParams.model_fields)})")
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

    lr: FloatRange | None = FloatRange(low=1e-4, high=1e-2, log=True)
    weight_decay: FloatRange | None = FloatRange(low=1e-6, high=1e-2, log=True)
    dropout: FloatRange | None = FloatRange(low=0.0, high=0.5)
    label_smoothing: FloatRange | None = FloatRange(low=0.0, high=0.2)
    batch_size: list[int] | None = [64, 128, 256]


class TuneParams(_Section):
    trials: int = Field(8, ge=1)
    epochs: int = Field(3, ge=1)                  # per trial; the best trial is then retrained fully
    max_train_images: int = Field(0, ge=0)        # per trial epoch; 0 = the model's own setting
    storage: str = ""                             # "" = SQLite inside the stage's output; or an RDB URL
    study_name: str = ""                          # "" = fer-<model>
    pruner_warmup_epochs: int = Field(1, ge=0)
    search_space: SearchSpace = SearchSpace()


class EvaluateParams(_Section):
    tta_flip: bool = False       # average the predictions of each image and its mirror
    calibration_bins: int = Field(15, ge=2)
    latency_images: int = Field(64, ge=1)   # single-image CPU forward passes timed per model


class CompareParams(_Section):
    rank_by: Literal["accuracy", "macro_f1"] = "macro_f1"


class PredictParams(_Section):
    """fer predict / fer serve: photos from users rather than dataset crops."""
    # Faces smaller than this share of the photo's shorter side are not looked for: each halving of the
    # smallest face roughly doubles the cascade's work, and a 256x256 photo must stay under 50 ms.
    min_face_fraction: float = Field(0.15, ge=0.0, le=1.0)
    max_upload_mb: float = Field(10.0, gt=0)
    max_megapixels: float = Field(40.0, gt=0)   # the decompression-bomb limit, checked before decoding


class Params(_Section):
    seed: int = 42
    model: str = "cnn"   # the model that is tuned and promoted
    data: DataParams = DataParams()
    synthetic: SyntheticParams = SyntheticParams()
    align: AlignParams = AlignParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    models: dict[str, ModelParams] = {}
    tune: TuneParams = TuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    compare: CompareParams = CompareParams()
    predict: PredictParams = PredictParams()

    @model_validator(mode="after")
    def _consistent(self):
        if self.split.val + self.split.test >= 0.9:
            raise ValueError("split.val + split.test must leave at least 10% for training")
        if self.models and self.model not in self.models:
            raise ValueError(f"model {self.model!r} is not in models; valid names: {', '.join(self.models)}")
        from fer.models import ARCHS

        for name, entry in self.models.items():
            if entry.arch not in ARCHS:
                raise ValueError(f"models.{name}.arch {entry.arch!r} is unknown; valid: {', '.join(ARCHS)}")
        return self

    def train_config(self, name: str) -> TrainParams:
        """The training knobs of one model: the train section with the model's own overrides."""
        if name not in self.models:
            raise FerError(f"params.yaml: no model {name!r} in models; valid names: {', '.join(self.models)}")
        merged = {**self.train.model_dump(), **(self.models[name].model_extra or {})}
        try:
            return TrainParams.model_validate(merged)
        except ValidationError as err:
            raise FerError(_describe(err, PARAMS_FILE, f"models.{name}")) from None


def _describe(err: ValidationError, source: str, prefix: str = "") -> str:
    """The first validation problem as `source: dotted.key: what is wrong (got value)`."""
    first = err.errors()[0]
    key = ".".join([prefix, *map(str, first["loc"])] if prefix else map(str, first["loc"]))
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "value_error":
        msg = first["msg"].removeprefix("Value error, ")
    else:
        msg = f"{first['msg']} (got {first['input']!r})"
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{source}: {key + ': ' if key else ''}{msg}{more}"


def parse_params(raw: dict, source: str = PARAMS_FILE) -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise FerError(_describe(err, source)) from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: not found; run from the repository root")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise FerError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is not None and not isinstance(raw, dict):
        raise FerError(f"{path}: expected a mapping of sections at the top level")
    return parse_params(raw, str(path))
