"""Every data source yields the same RawDataset; `load_source` picks one from params."""

from pathlib import Path

from fer.core.params import Params
from fer.data.rawdata import RawDataset


def load_source(params: Params, root: Path = Path(".")) -> RawDataset:
    data = params.data
    if data.source == "synthetic":
        from fer.data.sources import synthetic

        s = params.synthetic
        if params.task == "attributes":
            return synthetic.generate_attributes(s.n_images, s.image_size, params.seed)
        return synthetic.generate(s.n_images, s.image_size, params.seed, s.photo, s.photo_size)
    if data.source == "kaggle":
        from fer.data.sources.kaggle import fetch_kaggle

        return fetch_kaggle(data.kaggle_dataset, data.max_side)
    from fer.data.sources.local import read_local

    return read_local(root / data.path, data.source, data.max_side)
