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


class Params(_Section):
    seed: int = 42
    data: DataParams = DataParams()
    synthetic: SyntheticParams = SyntheticParams()
    align: AlignParams = AlignParams()
    split: SplitParams = SplitParams()

    @model_validator(mode="after")
    def _split_leaves_training_data(self):
        if self.split.val + self.split.test >= 0.9:
            raise ValueError("split.val + split.test must leave at least 10% for training")
        return self


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = f" (got {first['input']!r})" if first["type"] != "extra_forbidden" and "input" in first else ""
    more = f" [+{len(err.errors()) - 1} more]" if len(err.errors()) > 1 else ""
    return f"{source}: {key}: {msg}{got}{more}"


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
