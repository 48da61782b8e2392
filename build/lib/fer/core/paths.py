"""The pipeline's artifact paths, read from the same file that dvc.yaml loads through `vars:`."""

from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import yaml

_LAYOUT = yaml.safe_load(resources.files(__package__).joinpath("paths.yaml").read_text())

PATHS = SimpleNamespace(**{key: Path(value) for key, value in _LAYOUT["paths"].items()})
TUNED_NAME: str = _LAYOUT["tuned_name"]
