"""Every data source yields the same RawDataset; `load_source` picks one from params."""

from pathlib import Path

from fer.core.params import Params
from fer.data.rawdata import RawDataset


def load_source(params: Params, scratch: Path | None = None, root: Path = Path(".")) -> RawDataset:
    """The images params.data names; decoded image files wait on disk in `scratch` (None: the system's temp)."""
    data = params.data
    if data.source == "synthetic":
        from fer.data.sources import synthetic

        s = params.synthetic
        if params.task == "attributes":
            return synthetic.generate_attributes(s.n_images, s.image_size, params.seed)
        return synthetic.generate(s.n_images, s.photo_size if s.photo else s.image_size, params.seed, s.photo)
    if data.source == "kaggle":
        from fer.data.sources.kaggle import fetch_kaggle

        return fetch_kaggle(data.kaggle_dataset, data.max_side, scratch)
    from fer.data.sources.local import read_local

    return read_local(root / data.path, data.source, data.max_side, scratch)
