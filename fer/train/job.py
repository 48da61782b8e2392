"""TrainJob: one model to train, built once from params and handed whole to training and tuning."""

from dataclasses import dataclass
from pathlib import Path

from fer.core.params import ModelParams, Params, TrainParams


@dataclass(frozen=True)
class TrainJob:
    name: str  # the checkpoint's identity: its leaderboard row, the served model's name
    spec: ModelParams  # the `models` entry: architecture, input size, options
    cfg: TrainParams  # its training knobs: the train section with the entry's own overrides
    seed: int  # of its initial weights and batch order
    split_dir: Path  # the split folder whose train and val parts it learns from

    @classmethod
    def from_params(cls, params: Params, name: str, seed: int, split_dir: str | Path) -> "TrainJob":
        """The job of the `models` entry `name` as params.yaml defines it."""
        cfg = params.train_config(name)  # first: it names an unknown entry in one line
        return cls(name, params.models[name], cfg, seed, Path(split_dir))
