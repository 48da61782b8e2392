"""Every served prediction in SQLite, with the input statistics that drift detection compares."""

import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd

from fer.core.errors import FerError, one_line
from fer.data.image_stats import DETECTION_STATS, IMAGE_STATS

# Every column with its SQLite type: the table, the inserts and the reads are all made from these. A request
# gives the time and model; each face's FacePrediction.log_row the rest.
REQUEST_COLUMNS = {"time": "REAL", "model": "TEXT"}
FACE_COLUMNS = {"emotion": "TEXT", "confidence": "REAL", **dict.fromkeys((*IMAGE_STATS, *DETECTION_STATS), "REAL")}
COLUMNS = {**REQUEST_COLUMNS, **FACE_COLUMNS}


class PredictionLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's worker threads, serialised by a lock.
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            with self._lock, self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY, "
                    f"{', '.join(f'{name} {kind}' for name, kind in COLUMNS.items())})"
                )
        except sqlite3.Error as err:
            raise FerError(
                f"{path}: cannot open the prediction log ({one_line(err)}); give another --log, or "
                "--log '' to log nothing"
            ) from None

    def record(self, model: str, faces: list[dict]) -> None:
        """faces: one row per face with emotion, confidence and the input statistics (FacePrediction.log_row)."""
        now = time.time()
        rows = [(now, model, *(face[column] for column in FACE_COLUMNS)) for face in faces]
        with self._lock, self._db:
            self._db.executemany(
                f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows
            )

    def frame(self) -> pd.DataFrame:
        with self._lock:
            return _select(self._db)


def read_log(path: str | Path) -> pd.DataFrame:
    """Every logged prediction, read without writing: a reader must never turn a stray file into a database."""
    db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return _select(db)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as err:  # not SQLite, no table, a column missing
        # pandas wraps SQLite's words in the whole query; SQLite's own error is its cause
        raise FerError(
            f"{path}: not a prediction log ({one_line(err.__cause__ or err)}); expected the SQLite file "
            "that fer serve --log writes"
        ) from None
    finally:
        db.close()


def _select(db: sqlite3.Connection) -> pd.DataFrame:
    return pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM predictions ORDER BY id", db)
