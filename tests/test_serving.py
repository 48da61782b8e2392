"""Using the champion: fer predict, the real API server on 127.0.0.1, the upload page in Chromium, drift."""

import contextlib
import io
import json
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO_PARAMS, train_params, with_weights, write_prediction_log
from PIL import Image
from skimage import data as skdata

from fer.cli import main
from fer.core.emotions import EMOTIONS
from fer.core.labels import FER2013
from fer.core.params import ModelParams, load_params
from fer.data.datasets import load_split
from fer.data.image_stats import image_stats, laplacian_variance
from fer.data.photos import BadPhoto, decode_photo, read_photo
from fer.evaluate.champion import promote_champion
from fer.evaluate.evaluation import evaluate_checkpoint
from fer.evaluate.leaderboard import build_leaderboard
from fer.serve.drift import drift_report
from fer.serve.predict import FacePrediction, Predictor
from fer.serve.prediction_log import COLUMNS, PredictionLog
from fer.tools.bench_faces import grace_hopper, group_photo
from fer.train.job import TrainJob
from fer.train.trainer import train_model

ROOT = Path(__file__).resolve().parents[1]
UPLOAD_LIMIT_MB = 1
PIXEL_LIMIT_MP = 4


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "astronaut.jpg").write_bytes(_jpeg(skdata.astronaut()))
    (root / "astronaut256.jpg").write_bytes(_jpeg(np.asarray(Image.fromarray(skdata.astronaut()).resize((256, 256)))))
    (root / "blank.jpg").write_bytes(_jpeg(np.full((240, 320), 128, np.uint8)))
    (root / "group.jpg").write_bytes(_jpeg(group_photo()[0]))
    (root / "grace_hopper.jpg").write_bytes(_jpeg(grace_hopper()))
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["predict"].update(max_upload_mb=UPLOAD_LIMIT_MB, max_megapixels=PIXEL_LIMIT_MP)
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _probabilities_of_one_face(faces: list[dict]) -> dict:
    assert len(faces) == 1
    probabilities = faces[0]["probabilities"]
    assert list(probabilities) == list(EMOTIONS)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert faces[0]["emotion"] == max(probabilities, key=probabilities.get)
    return probabilities


def test_predict_finds_the_astronauts_one_face_with_seven_probabilities(tiny_checkpoint, photos, capsys):
    main(["predict", "--json", "--model", str(tiny_checkpoint), str(photos / "astronaut.jpg")])
    [result] = json.loads(capsys.readouterr().out)
    _probabilities_of_one_face(result["faces"])
    x, y, w, h = result["faces"][0]["box"]
    assert 150 < x + w / 2 < 260 and 60 < y + h / 2 < 180  # her face, upper middle of the 512x512 photo


def test_predict_table_and_one_line_per_bad_photo(tiny_checkpoint, photos, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "predict",
                "--model",
                str(tiny_checkpoint),
                *(str(photos / name) for name in ("astronaut.jpg", "blank.jpg", "notes.txt", "missing.jpg")),
            ]
        )
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert "astronaut.jpg  face 1" in out and sum(emotion in out for emotion in EMOTIONS) == 7
    note, *errors = err.strip().splitlines()
    assert note.startswith("note: mlp: trained on 210 synthetic images") and "not meaningful" in note
    assert len(errors) == 3
    assert "blank.jpg: no face found" in errors[0]
    assert "notes.txt: not an image" in errors[1]
    assert "missing.jpg: no such file" in errors[2]


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")  # 9 MP in a few kB
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(BadPhoto, match="3000x3000 pixels is over") as refused:
        decode_photo(buffer.getvalue(), "bomb.png", max_bytes=2**20, max_pixels=4_000_000, max_side=1024)
    assert refused.value.status == 413


def test_exif_orientation_is_applied():
    image = Image.new("L", (40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    photo = decode_photo(buffer.getvalue(), "phone.jpg", max_bytes=2**20, max_pixels=10**6, max_side=1024)
    assert photo.grey.shape == (40, 20)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_16_bit_photo_is_decoded_by_its_depth_not_clipped_white(tiny_checkpoint, tmp_path, capsys):
    grey = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"), np.uint16)
    (tmp_path / "deep.png").write_bytes(_png(Image.fromarray(grey * 257)))  # 16-bit grey PNG
    main(["predict", "--json", "--model", str(tiny_checkpoint), str(tmp_path / "deep.png")])
    [result] = json.loads(capsys.readouterr().out)
    _probabilities_of_one_face(result["faces"])


def _tiff(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(samples).save(buffer, format="TIFF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "kind, samples",
    [
        ("integer", np.full((64, 64), 70000, np.int32)),  # PIL mode "I"
        ("float", np.full((64, 64), 0.5, np.float32)),
    ],
)  # PIL mode "F"
def test_a_32_bit_photo_is_refused_with_one_line_415(server, kind, samples):
    url, log = server
    before = len(PredictionLog(log).frame())
    response = _upload(url, f"{kind}.tif", _tiff(samples), "image/tiff")
    assert response.status_code == 415
    assert response.json()["detail"] == f"{kind}.tif: 32-bit {kind} pixels; expected 8- or 16-bit samples"
    assert len(PredictionLog(log).frame()) == before


def test_a_large_jpeg_is_decoded_shrunk_and_its_boxes_stay_in_photo_pixels(tiny_checkpoint, tmp_path, capsys):
    big = Image.fromarray(skdata.astronaut()).resize((2048, 2048))
    (tmp_path / "big.jpg").write_bytes(_jpeg(np.asarray(big)))
    photo = decode_photo(
        (tmp_path / "big.jpg").read_bytes(), "big.jpg", max_bytes=2**24, max_pixels=10**7, max_side=512
    )
    assert photo.grey.shape == (512, 512) and photo.scale == 4
    main(["predict", "--json", "--model", str(tiny_checkpoint), str(tmp_path / "big.jpg")])
    [result] = json.loads(capsys.readouterr().out)
    x, y, w, h = result["faces"][0]["box"]
    assert 600 < x + w / 2 < 1040 and 240 < y + h / 2 < 720  # her face, in the 2048-pixel photo's coordinates


def test_a_photo_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(2**40)  # a sparse 1 TB file: reading it whole would never finish
    with pytest.raises(BadPhoto, match="1099511627776 bytes is over") as refused:
        read_photo(huge, max_bytes=2**20, max_pixels=10**6, max_side=1024)
    assert refused.value.status == 413


def test_a_bomb_over_pils_own_limit_is_413_not_415():
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 MP: PIL itself refuses it on open
    with pytest.raises(BadPhoto) as refused:
        decode_photo(buffer.getvalue(), "bomb.png", max_bytes=2**22, max_pixels=10**9, max_side=1024)
    assert refused.value.status == 413


@contextlib.contextmanager
def _serving(checkpoint, params_file, log, champion_record, with_pid=False):
    """The real `fer serve` (uvicorn) on a free port of 127.0.0.1; yields its base URL (and its pid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fer.cli",
            "serve",
            "--port",
            str(port),
            "--model",
            str(checkpoint),
            "--params",
            str(params_file),
            "--log",
            str(log),
            "--champion-record",
            str(champion_record),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "fer serve did not answer /health"
        time.sleep(0.3)
    try:
        yield (url, process.pid) if with_pid else url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tiny_checkpoint, params_file, tmp_path_factory):
    """The tiny mlp served with no champion record; yields (base URL, prediction log path)."""
    root = tmp_path_factory.mktemp("serve")
    with _serving(tiny_checkpoint, params_file, root / "predictions.sqlite", root / "no-champion.json") as url:
        yield url, root / "predictions.sqlite"


@pytest.fixture
def server_with_pid(tiny_checkpoint, params_file, tmp_path):
    """A server of its own, so that its peak memory is this test's alone."""
    with _serving(tiny_checkpoint, params_file, "", tmp_path / "no-champion.json", with_pid=True) as served:
        yield served


def _upload(url: str, name: str, content: bytes, kind: str = "image/jpeg") -> httpx.Response:
    return httpx.post(f"{url}/predict", files={"file": (name, content, kind)}, timeout=30)


def test_server_health_and_model_card(server):
    url, _ = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    card = httpx.get(f"{url}/model").json()
    assert card["name"] == "mlp" and card["arch"] == "mlp" and card["classes"] == list(EMOTIONS)
    assert card["champion"] is False and card["test_metrics"] == {}  # no champion record to take them from
    assert {"sha256", "git_revision"} <= set(card)
    assert card["trained_on"]["source"] == "synthetic" and card["trained_on"]["images"] == 210
    assert "real photos are not meaningful until the pipeline runs on FER2013" in card["training_note"]


def test_parallel_uploads_find_the_same_faces_as_one_at_a_time(server, photos):
    url, _ = server
    names = ["group.jpg", "astronaut256.jpg", "grace_hopper.jpg", "group.jpg"] * 2

    def faces(name):
        response = _upload(url, name, (photos / name).read_bytes())
        assert response.status_code == 200, response.text
        return [(f["box"], f["landmarks"], f["emotion"]) for f in response.json()["faces"]]

    alone = [faces(name) for name in names]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(faces, names))
    assert together == alone
    assert [len(f) for f in alone[:3]] == [5, 1, 1]
    assert all(len(landmarks) == 5 for _, landmarks, _ in alone[0])


def test_a_tuned_champion_is_served_under_its_own_name_with_its_own_metrics(
    tiny_checkpoint, tiny_split, params_file, tmp_path
):
    tuned = tmp_path / "tuned.pt"
    train_model(
        TrainJob(
            "tuned",
            ModelParams(arch="mlp", image_size=48, options={"hidden": [32]}),
            train_params(epochs=2, batch_size=32),
            7,
            tiny_split,
        ),
        tuned,
        tuned_from="mlp",
    )
    test_images, test_labels = load_split(tiny_split, "val")
    untuned, _ = evaluate_checkpoint(
        tiny_checkpoint,
        test_images,
        test_labels,
        FER2013,
        REPO_PARAMS.evaluate,
        predictions_path=tmp_path / "untuned.json",
    )
    tuned_result, _ = evaluate_checkpoint(
        tuned, test_images, test_labels, FER2013, REPO_PARAMS.evaluate, predictions_path=tmp_path / "tuned.json"
    )
    untuned = untuned.record.model_copy(update={"accuracy": 0.0, "macro_f1": 0.0})  # ranks below the tuned one
    tuned_result = tuned_result.record
    evaluations = [untuned, tuned_result]
    leaderboard = build_leaderboard(evaluations, REPO_PARAMS.compare)
    champion, record = tmp_path / "champion.pt", tmp_path / "champion.json"
    promote_champion(leaderboard, evaluations, champion, record)

    with _serving(champion, params_file, tmp_path / "log.sqlite", record) as url:
        assert httpx.get(f"{url}/health").json()["model"] == "tuned"
        card = httpx.get(f"{url}/model").json()
    assert card["name"] == "tuned" and card["tuned_from"] == "mlp" and card["champion"] is True
    assert card["test_metrics"]["accuracy"] == tuned_result.accuracy
    assert card["test_metrics"]["macro_f1"] == tuned_result.macro_f1


def test_server_predicts_a_good_photo_and_logs_it(server, photos):
    url, log = server
    before = len(PredictionLog(log).frame())
    response = _upload(url, "astronaut.jpg", (photos / "astronaut256.jpg").read_bytes())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["width"], answer["height"]) == (256, 256)
    _probabilities_of_one_face(answer["faces"])
    logged = PredictionLog(log).frame()
    assert len(logged) == before + 1
    row = logged.iloc[-1]
    assert row["emotion"] == answer["faces"][0]["emotion"]
    assert 0 < row["brightness"] < 1 and 0 < row["contrast"] < 1 and row["sharpness"] > 0
    assert row["face_size"] == max(answer["faces"][0]["box"][2:]) and row["detector_score"] > 0


@pytest.mark.parametrize(
    "name, content, status, message",
    [
        ("notes.txt", b"just some text", 415, "not an image"),
        ("big.jpg", os.urandom(UPLOAD_LIMIT_MB * 2**20 + 1), 413, "limit"),
        ("bomb.png", None, 413, "pixel limit"),
        ("blank.jpg", _jpeg(np.full((240, 320), 128, np.uint8)), 422, "no face found"),
    ],
    ids=["text", "over-the-size-limit", "pixel-bomb", "no-face"],  # rather than the random megabyte in every node id
)
def test_server_refuses_bad_uploads_with_a_4xx_and_a_message(server, name, content, status, message):
    url, log = server
    if content is None:
        buffer = io.BytesIO()
        Image.new("L", (3000, 3000)).save(buffer, format="PNG")
        content = buffer.getvalue()
    before = len(PredictionLog(log).frame())
    response = _upload(url, name, content)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert len(PredictionLog(log).frame()) == before


def test_a_chunked_upload_is_stopped_at_the_limit_not_read_whole(server):
    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        with contextlib.suppress(OSError):  # the server may close the connection once it has answered
            while sent < 300 * 2**20 and not select.select([connection], [], [], 0)[0]:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        answer = connection.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert sent < 32 * UPLOAD_LIMIT_MB * 2**20  # answered as the limit passed (plus socket buffers), not at 300 MB


def test_a_missing_file_field_is_one_line(server):
    url, _ = server
    response = httpx.post(f"{url}/predict", files={"photo": ("a.jpg", b"x", "image/jpeg")}, timeout=30)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "file" in detail and "\n" not in detail


def _overflowing_on_faces(checkpoint: Path, path: Path) -> Path:
    """The tiny mlp with finite weights whose logits are finite on any uniform image, such as the one
    load_checkpoint probes with, and inf on a face.

    Each hidden unit weighs one pixel by +2^100 and another by -2^100: exact products that cancel on a uniform
    image, while on a face their difference, weighed again by 2^100 in the output layer, overflows.
    """
    huge, pixels, units = 2.0**100, 48 * 48, 32
    first = torch.zeros(units, pixels)
    for unit, (plus, minus) in enumerate(np.random.default_rng(0).choice(pixels, (units, 2), replace=False)):
        first[unit, plus], first[unit, minus] = huge, -huge
    identity_batch_norm = {
        "2.weight": torch.ones(units),
        "2.bias": torch.zeros(units),
        "2.running_mean": torch.zeros(units),
        "2.running_var": torch.ones(units),
    }
    return with_weights(
        checkpoint,
        path,
        {"1.weight": first, **identity_batch_norm, "5.weight": torch.full((len(EMOTIONS), units), huge)},
    )


def test_outputs_that_overflow_on_a_face_are_a_500_with_one_line_not_nan(
    tiny_checkpoint, params_file, photos, tmp_path
):
    checkpoint = _overflowing_on_faces(tiny_checkpoint, tmp_path / "overflowing.pt")
    log = tmp_path / "log.sqlite"
    with _serving(checkpoint, params_file, log, tmp_path / "no-champion.json") as url:  # it passed the probe
        response = _upload(url, "astronaut.jpg", (photos / "astronaut256.jpg").read_bytes())
    assert response.status_code == 500, response.text
    detail = response.json()["detail"]
    assert "astronaut.jpg" in detail and "NaN or inf probabilities" in detail and "\n" not in detail
    assert len(PredictionLog(log).frame()) == 0  # nothing was logged for it


def _memory_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status: VmHWM (peak resident), VmRSS (resident now)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def test_concurrent_near_limit_pngs_do_not_pin_memory(server_with_pid):
    url, pid = server_with_pid
    # Flat RGBA PNGs of a few kB, each just under the 4-megapixel limit: ~16 MB each once decoded.
    png = _png(Image.new("RGBA", (1990, 1990), (120, 130, 140, 255)))
    _upload(url, "warmup.png", png, "image/png")
    peak, resident = _memory_mb(pid, "VmHWM"), _memory_mb(pid, "VmRSS")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: _upload(url, f"{i}.png", png, "image/png").status_code, range(8)))
    assert statuses == [422] * 8  # decoded, no face in them
    assert _memory_mb(pid, "VmHWM") - peak < 80  # at most max_decodes (2) full decodes at once
    # ... and handed back once the burst is over: less than one decoded image is left resident.
    assert _memory_mb(pid, "VmRSS") - resident < 16


def _chromium_driver(tmp_path, *flags: str):
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        if os.environ.get("FER_REQUIRE_BROWSER"):
            pytest.fail("FER_REQUIRE_BROWSER is set but Debian's chromium and chromium-driver are not installed")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={tmp_path / 'chromium'}",
        *flags,
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def test_upload_page_in_headless_chromium_draws_probability_bars(server, photos, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    url, _ = server
    driver = _chromium_driver(tmp_path)
    try:
        driver.get(url)
        driver.find_element(By.ID, "photo").send_keys(str(photos / "astronaut256.jpg"))
        bars = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".prob-bar"))
        assert sorted(bar.get_attribute("data-emotion") for bar in bars) == sorted(EMOTIONS)
        widths = [float(bar.get_attribute("style").split("width:")[1].split("%")[0]) for bar in bars]
        assert sum(widths) == pytest.approx(100, abs=0.5)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "canvas").is_displayed())
        assert driver.find_element(By.ID, "error").text == ""
        assert "not meaningful until the pipeline runs on FER2013" in driver.find_element(By.ID, "note").text
        (face,) = _upload(url, "astronaut256.jpg", (photos / "astronaut256.jpg").read_bytes()).json()["faces"]
        for x, y in face["landmarks"]:  # each of the five drawn as a dot of the landmark colour
            pixel = driver.execute_script(
                "return Array.from(document.getElementById('canvas').getContext('2d')"
                ".getImageData(arguments[0], arguments[1], 1, 1).data)",
                round(x),
                round(y),
            )
            assert pixel[:3] == [0x2C, 0xC3, 0xE0]
        driver.find_element(By.ID, "photo").send_keys(str(photos / "blank.jpg"))
        WebDriverWait(driver, 30).until(lambda d: "no face found" in d.find_element(By.ID, "error").text)
    finally:
        driver.quit()


def _astronaut_frames(n: int) -> list[np.ndarray]:
    """n 256x256 BGR frames of skimage's astronaut, panned a little at each."""
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    return [cv2.resize(photo[:400, 6 * i : 400 + 6 * i], (256, 256), interpolation=cv2.INTER_AREA) for i in range(n)]


def test_upload_page_scores_a_webcam_snapshot_and_a_short_video(server, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    frames = _astronaut_frames(10)
    camera = tmp_path / "camera.y4m"  # what Chromium's fake webcam shows, in the raw format it reads
    with camera.open("wb") as out:
        out.write(b"YUV4MPEG2 W256 H256 F10:1 Ip A1:1 C420jpeg\n")
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    clip = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"VP80"), 10.0, (256, 256))
    for i, frame in enumerate(frames):
        writer.write(np.full_like(frame, 128) if i >= 5 else frame)  # its second half shows no face
    writer.release()
    monkeypatch.setenv("SE_OFFLINE", "true")
    url, _ = server
    driver = _chromium_driver(
        tmp_path,
        "--use-fake-ui-for-media-stream",  # grants the camera without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    )
    try:
        driver.get(url)
        driver.find_element(By.ID, "camera").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.getElementById('preview').videoWidth")
        )
        driver.find_element(By.ID, "snap").click()
        bars = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".prob-bar"))
        assert sorted(bar.get_attribute("data-emotion") for bar in bars) == sorted(EMOTIONS)
        assert driver.find_element(By.ID, "webcam").is_displayed() is False  # the camera is released
        driver.find_element(By.ID, "video").send_keys(str(clip))
        rows = WebDriverWait(driver, 60).until(
            lambda d: (items := d.find_elements(By.CSS_SELECTOR, "#timeline li")) and len(items) == 8 and items
        )
        texts = [row.text for row in rows]
        assert all(" face 1 " in text for text in texts[:4]), texts  # 8 frames spread over 1 s: 4 in each half
        assert all("no face found" in text for text in texts[4:]), texts
        assert driver.find_element(By.ID, "error").text == ""
    finally:
        driver.quit()


def test_the_prediction_log_table_has_the_declared_columns_and_a_face_row_fills_them(tmp_path):
    log = PredictionLog(tmp_path / "log.sqlite")
    with sqlite3.connect(tmp_path / "log.sqlite") as db:
        table = [(name, kind) for _, name, kind, *_ in db.execute("PRAGMA table_info(predictions)")]
    assert table == [("id", "INTEGER"), *COLUMNS.items()]
    face = FacePrediction(
        (0, 0, 48, 48),
        0.9,
        {"happy": 0.7, "sad": 0.3},
        FER2013.head,
        {"brightness": 0.5, "contrast": 0.2, "sharpness": 3.0},
    )
    log.record("mlp", [face.log_row()])
    row = log.frame().iloc[0]
    assert list(row.index) == list(COLUMNS) and row["emotion"] == "happy" and row["face_size"] == 48


def test_drift_flags_a_statistic_that_moved_and_not_one_that_did_not(tiny_checkpoint, tiny_split, tmp_path, capsys):
    params = load_params(ROOT / "params.yaml")
    predictor = Predictor(tiny_checkpoint, params.align, params.predict)
    photo = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"))
    log = PredictionLog(tmp_path / "log.sqlite")
    for gain in np.linspace(1.0, 1.6, 25):  # ever brighter photos of the same face
        faces = predictor.predict(np.clip(photo * gain, 0, 255).astype(np.uint8))
        log.record(predictor.name, [face.log_row() for face in faces])
    main(["drift", "--log", str(tmp_path / "log.sqlite"), "--split", str(tiny_split), "--out", str(tmp_path / "drift")])
    assert "25 served faces" in capsys.readouterr().out
    report = json.loads((tmp_path / "drift" / "drift.json").read_text())
    assert report["served_faces"] == 25 and "brightness" in report["drifted"]
    assert set(report["ks_tests"]) == {"brightness", "contrast", "sharpness"}
    for stat in report["ks_tests"]:
        with Image.open(tmp_path / "drift" / f"{stat}.png") as plot:
            assert plot.format == "PNG"
    assert "| brightness |" in (tmp_path / "drift" / "drift.md").read_text()

    # Faces from the training split itself have not drifted.
    same = PredictionLog(tmp_path / "same.sqlite")
    faces, _ = load_split(tiny_split, "val")
    stats = image_stats(faces)
    same.record(
        "mlp",
        [
            FacePrediction(
                (0, 0, 48, 48), 1.0, {"happy": 1.0}, FER2013.head, {k: float(v[i]) for k, v in stats.items()}
            ).log_row()
            for i in range(len(faces))
        ],
    )
    assert drift_report(tmp_path / "same.sqlite", tiny_split, tmp_path / "same")["drifted"] == []


def test_drift_without_a_log_is_one_clear_line(tmp_path, tiny_split, capsys):
    with pytest.raises(SystemExit):
        main(["drift", "--log", str(tmp_path / "none.sqlite"), "--split", str(tiny_split)])
    assert "none.sqlite: no prediction log" in capsys.readouterr().err


@pytest.mark.parametrize("content, problem", [(b"not sqlite at all", "file is not a database"), (b"", "no such table")])
def test_drift_on_a_log_that_is_not_one_is_one_line_and_leaves_it_alone(tmp_path, tiny_split, content, problem, capsys):
    log = tmp_path / "log.sqlite"
    log.write_bytes(content)
    with pytest.raises(SystemExit):
        main(["drift", "--log", str(log), "--split", str(tiny_split), "--out", str(tmp_path / "drift")])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{log}: not a prediction log ({problem}" in err
    assert log.read_bytes() == content  # not turned into a database


def test_drift_without_a_split_is_one_line(tmp_path, tiny_split, capsys):
    write_prediction_log(tmp_path / "log.sqlite", faces=1)
    with pytest.raises(SystemExit):
        main(["drift", "--log", str(tmp_path / "log.sqlite"), "--split", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "none/train/images.npy: not found; expected the images of a dataset folder" in err


def test_batched_sharpness_matches_opencvs_laplacian():
    faces = np.random.default_rng(0).integers(0, 256, size=(5, 48, 40), dtype=np.uint8)
    expected = [cv2.Laplacian(face, cv2.CV_64F).var() for face in faces]
    np.testing.assert_allclose(laplacian_variance(faces), expected, rtol=1e-12)
