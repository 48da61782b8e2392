"""Download a FER dataset from Kaggle (kagglehub caches it) and read it like a local folder."""

from pathlib import Path

from fer.core.errors import FerError, one_line
from fer.data.rawdata import RawDataset
from fer.data.sources.local import read_local

KAGGLE_API = "https://api.kaggle.com"
# kagglehub's API calls carry no timeout, so behind a firewall that drops packets they hang for
# minutes; a short probe first makes being offline fail fast.
PROBE_TIMEOUT_S = 5


def fetch_kaggle(dataset: str = "msambare/fer2013", max_side: int = 256) -> RawDataset:
    """The Kaggle dataset (msambare-style folders, or a folder holding fer2013.csv) as a RawDataset."""
    return read_local(download(dataset), "folder", max_side)


def download(dataset: str) -> Path:
    try:
        import kagglehub
        import requests

        requests.head(KAGGLE_API, timeout=PROBE_TIMEOUT_S)
        return Path(kagglehub.dataset_download(dataset))
    # Whatever went wrong (no network, no credentials, no such dataset, kagglehub missing), the user
    # gets the same choices, so every failure becomes one actionable line.
    except Exception as err:
        raise FerError(
            f"kaggle dataset {dataset!r}: download failed ({type(err).__name__}: {one_line(err)}); "
            "set KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json, check the internet connection, "
            "or download the dataset yourself into data/ and set data.source to folder, csv or zip"
        ) from None
