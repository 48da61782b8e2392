"""Using the champion: fer predict, the real API server on 127.0.0.1, the upload page in Chromium, drift."""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml
from PIL import Image
from skimage import data as skdata

from fer.cli import main
from fer.datasets import load_split
from fer.drift import drift_report
from fer.input_stats import image_stats, laplacian_variance
from fer.labels import EMOTIONS
from fer.params import load_params
from fer.photos import BadPhoto, decode_photo
from fer.predict import FacePrediction, Predictor
from fer.prediction_log import PredictionLog

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
        main(["predict", "--model", str(tiny_checkpoint),
              *(str(photos / name) for name in ("astronaut.jpg", "blank.jpg", "notes.txt", "missing.jpg"))])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert "astronaut.jpg  face 1" in out and sum(emotion in out for emotion in EMOTIONS) == 7
    errors = err.strip().splitlines()
    assert len(errors) == 3
    assert "blank.jpg: no face found" in errors[0]
    assert "notes.txt: not an image" in errors[1]
    assert "missing.jpg: no such file" in errors[2]


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")  # 9 MP in a few kB
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(BadPhoto, match="3000x3000 pixels is over") as refused:
        decode_photo(buffer.getvalue(), "bomb.png", max_bytes=2**20, max_pixels=4_000_000)
    assert refused.value.status == 413


def test_exif_orientation_is_applied():
    image = Image.new("L", (40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert decode_photo(buffer.getvalue(), "phone.jpg", max_bytes=2**20, max_pixels=10**6).shape == (40, 20)


@pytest.fixture(scope="module")
def server(tiny_checkpoint, params_file, tmp_path_factory):
    """The real `fer serve` (uvicorn) on a free port of 127.0.0.1; yields (base URL, prediction log path)."""
    log = tmp_path_factory.mktemp("serve") / "predictions.sqlite"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "fer.cli", "serve", "--port", str(port), "--model", str(tiny_checkpoint),
         "--params", str(params_file), "--log", str(log)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
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
    yield url, log
    process.terminate()
    process.wait(timeout=10)


def _upload(url: str, name: str, content: bytes, kind: str = "image/jpeg") -> httpx.Response:
    return httpx.post(f"{url}/predict", files={"file": (name, content, kind)}, timeout=30)


def test_server_health_and_model_card(server):
    url, _ = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    card = httpx.get(f"{url}/model").json()
    assert card["name"] == "mlp" and card["arch"] == "mlp" and card["classes"] == list(EMOTIONS)
    assert {"test_metrics", "git_revision", "dvc_md5"} <= set(card)


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


@pytest.mark.parametrize("name, content, status, message", [
    ("notes.txt", b"just some text", 415, "not an image"),
    ("big.jpg", os.urandom(UPLOAD_LIMIT_MB * 2**20 + 1), 413, "limit"),
    ("bomb.png", None, 413, "pixel limit"),
    ("blank.jpg", _jpeg(np.full((240, 320), 128, np.uint8)), 422, "no face found"),
])
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


def _chromium_driver(tmp_path):
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
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", f"--user-data-dir={tmp_path / 'chromium'}"):
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
        assert driver.find_element(By.ID, "canvas").is_displayed()
        assert driver.find_element(By.ID, "error").text == ""
        driver.find_element(By.ID, "photo").send_keys(str(photos / "blank.jpg"))
        WebDriverWait(driver, 30).until(lambda d: "no face found" in d.find_element(By.ID, "error").text)
    finally:
        driver.quit()


def test_drift_flags_a_statistic_that_moved_and_not_one_that_did_not(tiny_checkpoint, tiny_split, tmp_path, capsys):
    params = load_params(ROOT / "params.yaml")
    predictor = Predictor(tiny_checkpoint, params.align, params.predict)
    photo = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"))
    log = PredictionLog(tmp_path / "log.sqlite")
    for gain in np.linspace(1.0, 1.6, 25):  # ever brighter photos of the same face
        log.record(predictor.name, predictor.predict(np.clip(photo * gain, 0, 255).astype(np.uint8)))
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
    same.record("mlp", [FacePrediction((0, 0, 48, 48), 1.0, {"happy": 1.0}, {k: float(v[i]) for k, v in stats.items()})
                        for i in range(len(faces))])
    assert drift_report(tmp_path / "same.sqlite", tiny_split, tmp_path / "same")["drifted"] == []


def test_drift_without_a_log_is_one_clear_line(tmp_path, tiny_split, capsys):
    with pytest.raises(SystemExit):
        main(["drift", "--log", str(tmp_path / "none.sqlite"), "--split", str(tiny_split)])
    assert "none.sqlite: no prediction log" in capsys.readouterr().err


def test_batched_sharpness_matches_opencvs_laplacian():
    faces = np.random.default_rng(0).integers(0, 256, size=(5, 48, 40), dtype=np.uint8)
    expected = [cv2.Laplacian(face, cv2.CV_64F).var() for face in faces]
    np.testing.assert_allclose(laplacian_variance(faces), expected, rtol=1e-12)
