"""Every served prediction in SQLite, with the input statistics that drift detection compares."""

import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd

from fer.core.errors import FerError, one_line
from fer.data.image_stats import DETECTION_STATS, IMAGE_STATS

COLUMNS = ("time", "model", "emotion", "confidence", *IMAGE_STATS, *DETECTION_STATS)


class PredictionLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's worker threads, serialised by a lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY, time REAL, model TEXT, "
                "emotion TEXT, confidence REAL, brightness REAL, contrast REAL, sharpness REAL, "
                "face_size REAL, detector_score REAL)"
            )

    def record(self, model: str, faces: list[dict]) -> None:
        """faces: one row per face with emotion, confidence and the input statistics (FacePrediction.log_row)."""
        now = time.time()
        rows = [(now, model, *(face[column] for column in COLUMNS[2:])) for face in faces]
        with self._lock, self._db:
            self._db.executemany(f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(COLUMNS))})", rows)

    def frame(self) -> pd.DataFrame:
        with self._lock:
            return _select(self._db)


def read_log(path: str | Path) -> pd.DataFrame:
    """Every logged prediction, read without writing: a reader must never turn a stray file into a database."""
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        db.execute("SELECT 1 FROM predictions LIMIT 1")
    except sqlite3.DatabaseError as err:
        db.close()
        raise FerError(f"{path}: not a prediction log ({one_line(err)}); expected the SQLite file that "
                       "fer serve --log writes") from None
    try:
        return _select(db)
    finally:
        db.close()


def _select(db: sqlite3.Connection) -> pd.DataFrame:
    return pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM predictions ORDER BY id", db)
