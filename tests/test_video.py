"""fer predict on a video: sampled frames, one row per frame and face, track ids, smoothing, plot and annotation."""

import json

import cv2
import numpy as np
import pytest
from conftest import REPO_PARAMS
from skimage import data as skdata

from fer.cli import main
from fer.core.emotions import EMOTIONS
from fer.serve.predict import Predictor
from fer.serve.video import NO_FACE, Sampling, Tracker, analyse_video, sampled_frames

SIDE = 256
FPS = 10.0
BLANK_FRAME = 4  # a grey frame without a face, between two runs of the panning astronaut
ALL_FRAMES = Sampling(every=1, per_second=0, max_frames=0)
FIRST_THREE = Sampling(every=1, per_second=0, max_frames=3)


def _astronaut_frame(step: int) -> np.ndarray:
    """skimage's astronaut (a real photo), panned right and zoomed in a little more at each step."""
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    side = 400 - 12 * step
    x0, y0 = 40 + 6 * step, 0
    return cv2.resize(photo[y0 : y0 + side, x0 : x0 + side], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIDE, SIDE))
    for i in range(8):
        writer.write(np.full((SIDE, SIDE, 3), 128, np.uint8) if i == BLANK_FRAME else _astronaut_frame(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, REPO_PARAMS.align, REPO_PARAMS.predict)


def test_frames_are_sampled_every_nth_or_per_second(clip):
    assert [i for i, _, _ in sampled_frames(str(clip), Sampling(every=3, per_second=0, max_frames=0))] == [0, 3, 6]
    assert [(i, t) for i, t, _ in sampled_frames(str(clip), Sampling(every=1, per_second=5, max_frames=0))] == [
        (0, 0.0),
        (2, 0.2),
        (4, 0.4),
        (6, 0.6),
    ]
    assert len(list(sampled_frames(str(clip), Sampling(every=1, per_second=0, max_frames=2)))) == 2


def test_video_rows_one_per_frame_and_face_with_stable_tracks_and_the_blank_frame_reported(
    tiny_checkpoint, clip, tmp_path, capsys
):
    rows, plot, annotated = tmp_path / "rows.json", tmp_path / "plot.png", tmp_path / "annotated.mp4"
    main(
        [
            "predict",
            str(clip),
            "--model",
            str(tiny_checkpoint),
            "--champion-record",
            str(tmp_path / "none.json"),
            "--rows",
            str(rows),
            "--plot",
            str(plot),
            "--annotate",
            str(annotated),
        ]
    )
    table = json.loads(rows.read_text())
    assert [row["frame"] for row in table] == list(range(8))  # one face per frame, one row for the blank one
    blank = table[BLANK_FRAME]
    assert blank["label"] == NO_FACE and blank["track"] is None
    before, after = table[:BLANK_FRAME], table[BLANK_FRAME + 1 :]
    assert {row["track"] for row in before + after} == {1}  # the face keeps its id across the face-less frame
    for row in before + after:
        probabilities = {k: row[k] for k in EMOTIONS}
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert row["label"] == max(probabilities, key=probabilities.get)
        assert row["w"] > 50 and 0 <= row["x"] < SIDE  # the astronaut's face, in frame pixels
    assert [row["time_s"] for row in table] == pytest.approx([i / FPS for i in range(8)])
    assert "8 sampled frames, 7 faces in 1 tracks, 1 frames without a face" in capsys.readouterr().err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(sampled_frames(str(annotated), ALL_FRAMES))) == 8


def test_a_track_outlives_patience_frames_without_its_face_and_no_more():
    face, other = (10, 10, 50, 50), (200, 10, 50, 50)
    for patience in (0, 1, 2):
        for gap in range(4):
            tracker = Tracker(patience)
            assert tracker.ids([face]) == [1]
            for _ in range(gap):
                assert tracker.ids([other]) == [2]  # a face elsewhere does not take the missing one's id
            assert tracker.ids([face, other]) == [1 if gap <= patience else 3, 2], (patience, gap)


def test_smoothing_averages_a_tracks_probabilities_over_the_window(predictor, clip):
    raw = analyse_video(predictor, str(clip), FIRST_THREE, smooth=1)
    smoothed = analyse_video(predictor, str(clip), FIRST_THREE, smooth=2)
    classes = list(predictor.record.classes)
    np.testing.assert_allclose(smoothed[classes].iloc[0], raw[classes].iloc[0], atol=1e-6)
    np.testing.assert_allclose(smoothed[classes].iloc[2], raw[classes].iloc[1:3].mean(), atol=1e-5)


def test_a_file_that_is_not_a_video_is_one_line(tiny_checkpoint, tmp_path, capsys):
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video")
    with pytest.raises(SystemExit):
        main(["predict", str(fake), "--model", str(tiny_checkpoint)])
    assert "clip.mp4: " in capsys.readouterr().err
