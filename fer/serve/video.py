"""Emotions over time in a video file or a webcam: sampled frames, faces tracked by box overlap, one row per
sampled frame and face (a frame without a face has one row saying so), optionally smoothed per track."""

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer.core.errors import FerError
from fer.core.storage import atomic_path
from fer.data.photos import BadPhoto
from fer.serve.predict import Predictor

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
NO_FACE = "no face"
# Boxes of one face in consecutive sampled frames overlap at least this much (intersection over union).
MIN_TRACK_IOU = 0.3


def is_video(source: str) -> bool:
    """A video file by its suffix, or a webcam by its index ("0")."""
    return source.isdigit() or Path(source).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class Sampling:
    """Which frames are analysed; fer predict's options (--every, --fps, --max-frames) hold the defaults."""

    every: int  # every Nth frame
    per_second: float  # or this many frames per second of video (0: use every)
    max_frames: int  # sampled frames to stop after (0: the whole video; a webcam needs it)


def sampled_frames(source: str, sampling: Sampling) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in s, grey frame) of each sampled frame."""
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise FerError(f"{source}: cannot be opened as a video (a file OpenCV reads: mp4, avi, ...; or a webcam index)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0  # webcams may not say; 30 is what most deliver
    step = max(1, round(fps / sampling.per_second)) if sampling.per_second > 0 else max(1, sampling.every)
    index = sampled = 0
    try:
        while not sampling.max_frames or sampled < sampling.max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                sampled += 1
                yield index, index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            index += 1
    finally:
        capture.release()
    if not sampled:
        raise FerError(f"{source}: no frame could be read; expected a video OpenCV decodes")


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, width) * max(0, height)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


class Tracker:
    """Track ids by box overlap: each face takes the id of the unclaimed track whose last box it overlaps most (at
    least MIN_TRACK_IOU), otherwise a new one. A track survives `patience` sampled frames without a face of its
    own (a missed detection, a turned head) before its id is retired."""

    def __init__(self, patience: int):
        self.patience = patience
        self.live: dict[int, tuple[tuple[int, ...], int]] = {}  # id -> (last box, sampled frames missed since)
        self.next_id = 1

    def ids(self, boxes: list[tuple[int, ...]]) -> list[int]:
        free, assigned = {track: box for track, (box, _) in self.live.items()}, []
        for box in boxes:
            best = max(free, key=lambda track: iou(free[track], box), default=None)
            if best is None or iou(free[best], box) < MIN_TRACK_IOU:
                best, self.next_id = self.next_id, self.next_id + 1
            else:
                del free[best]
            assigned.append(best)
        missed = {track: (box, self.live[track][1] + 1) for track, box in free.items()}
        self.live = {track: kept for track, kept in missed.items() if kept[1] <= self.patience}
        self.live.update({track: (box, 0) for track, box in zip(assigned, boxes)})
        return assigned


def analyse_video(predictor: Predictor, source: str, sampling: Sampling, smooth: int) -> pd.DataFrame:
    """One row per sampled frame and face: frame, time_s, track, x, y, w, h, label and each class's
    probability (averaged over the track's last `smooth` sampled frames); a frame without a face has one row
    with label NO_FACE and no track."""
    tracker, history, rows = Tracker(predictor.settings.track_patience), {}, []
    classes = predictor.record.classes
    for index, seconds, grey in sampled_frames(source, sampling):
        try:
            faces = predictor.predict(grey, f"{source} frame {index}")
        except BadPhoto:  # this frame has no face
            faces = []
        if not faces:
            tracker.ids([])
            rows.append({"frame": index, "time_s": round(seconds, 3), "track": None, "label": NO_FACE})
            continue
        for track, face in zip(tracker.ids([face.box for face in faces]), faces):
            recent = history.setdefault(track, deque(maxlen=smooth))
            recent.append([face.probabilities[name] for name in classes])
            probabilities = dict(zip(classes, np.mean(recent, axis=0).round(6)))
            label = face.label if smooth == 1 else max(probabilities, key=probabilities.get)
            rows.append(
                {
                    "frame": index,
                    "time_s": round(seconds, 3),
                    "track": track,
                    **dict(zip("xywh", face.box)),
                    "label": label,
                    **probabilities,
                }
            )
    table = pd.DataFrame(rows, columns=["frame", "time_s", "track", *"xywh", "label", *classes])
    return table.astype({"track": "Int64", **{c: "Int64" for c in "xywh"}})


def write_rows(table: pd.DataFrame, path: str | Path) -> None:
    """CSV, or JSON records when the path ends in .json."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".json"):
            table.to_json(tmp, orient="records", indent=2)
        else:
            table.to_csv(tmp, index=False)


def plot_over_time(table: pd.DataFrame, classes: list[str], path: str | Path) -> None:
    """Each class's probability against time, a line per track, as a PNG (Vega-Lite, drawn offline)."""
    import vl_convert

    faces = table.dropna(subset=["track"]).melt(
        id_vars=["time_s", "track"], value_vars=classes, var_name="class", value_name="probability"
    )
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 480,
        "height": 200,
        "data": {"values": faces.astype({"track": int}).to_dict("records")},
        "mark": "line",
        "encoding": {
            "x": {"field": "time_s", "type": "quantitative", "title": "time (s)"},
            "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]}},
            "color": {"field": "class", "type": "nominal"},
            "strokeDash": {"field": "track", "type": "nominal"},
        },
    }
    with atomic_path(path) as tmp:
        tmp.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))


def write_annotated(source: str, table: pd.DataFrame, sampling: Sampling, path: str | Path) -> None:
    """The sampled frames as an mp4, each face boxed with its track and label."""
    by_frame = table.groupby("frame")
    with atomic_path(path) as tmp:
        writer = None
        for index, _, grey in sampled_frames(source, sampling):
            frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            if writer is None:
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, frame.shape[1::-1])
            for row in by_frame.get_group(index).itertuples() if index in by_frame.groups else ():
                if row.label != NO_FACE:
                    cv2.rectangle(frame, (row.x, row.y), (row.x + row.w, row.y + row.h), (0, 255, 0), 2)
                    cv2.putText(
                        frame,
                        f"#{row.track} {row.label}",
                        (row.x, max(12, row.y - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX,
                        0.5,
                        (0, 255, 0),
                        1,
                    )
            writer.write(frame)
        if writer is not None:
            writer.release()
