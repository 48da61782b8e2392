"""Hostile and careless inputs (issue 23): each refused in one line, or handled, never a traceback or a hole."""

import io
import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO_PARAMS, write_prediction_log
from PIL import Image
from skimage import data as skdata
from test_serving import _serving

from fer.cli import main
from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.core.params import load_params, parse_params
from fer.core.preflight import check_everything
from fer.core.profiles import apply_profile
from fer.data.photos import decode_image
from fer.data.sources.local import read_local
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.face_detector import face_detector
from fer.serve.api import create_app
from fer.serve.drift import drift_report
from fer.serve.predict import Predictor
from fer.serve.prediction_log import PredictionLog

ROOT = Path(__file__).resolve().parents[1]
REQUEST_SECONDS = 2


def torch_sees_cuda() -> bool:
    return torch.cuda.is_available()


# 1. Script injection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(document.domain)>", "tab\there", "x" * 65, "a\u202eb"])
def test_a_class_folder_whose_name_is_not_plain_text_is_refused_at_fetch(tmp_path, name):
    for folder in ("happy", name):
        (tmp_path / folder).mkdir()
        Image.new("L", (48, 48), 100).save(tmp_path / folder / "0.png")
    with pytest.raises(FerError, match="expected plain printable text") as refused:
        read_local(tmp_path, "folder", REPO_PARAMS.data.max_side)
    assert "\n" not in str(refused.value)


def test_the_upload_page_never_parses_data_as_html():
    script = (ROOT / "fer/serve/static/index.html").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


# 2. Request smuggling and slow senders ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_server(tiny_checkpoint, tmp_path_factory):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["predict"]["request_seconds"] = REQUEST_SECONDS
    root = tmp_path_factory.mktemp("guarded")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with _serving(tiny_checkpoint, root / "params.yaml", root / "log.sqlite", root / "no-champion.json") as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _everything_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_content_length_with_transfer_encoding_is_400_and_nothing_is_smuggled(guarded_server):
    smuggled = b"0\r\n\r\nGET /model HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(guarded_server, timeout=20) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled
        )
        answer = _everything_until_closed(connection)  # the server closes the connection after its answer
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert answer.count(b"HTTP/1.1 ") == 1 and b"Transfer-Encoding" in answer


def test_connections_sending_a_byte_a_second_are_dropped(guarded_server):
    def trickle(_) -> tuple[float, bytes]:
        start = time.monotonic()
        with socket.create_connection(guarded_server, timeout=30) as connection:
            try:
                for byte in b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 100:
                    connection.sendall(bytes([byte]))
                    time.sleep(0.5)
                    if connection.recv(65536, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
                        break
            except (BlockingIOError, OSError):
                pass
            try:
                answer = _everything_until_closed(connection)
            except ConnectionResetError:
                answer = b""
        return time.monotonic() - start, answer

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(trickle, range(10)))
    for seconds, answer in results:
        assert seconds < REQUEST_SECONDS + 5, seconds
        assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer
    # A request sent at once is still answered.
    with socket.create_connection(guarded_server, timeout=20) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _everything_until_closed(connection).startswith(b"HTTP/1.1 200")


# 3. validate checks what every stage will use -----------------------------------------------------------------


def _params_with(override: str) -> dict:
    """The repository's params with one `-S key=value` override (value parsed as YAML, as DVC does)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    key, value = override.lstrip("+").split("=", 1)
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = yaml.safe_load(value)
    return raw


@pytest.mark.parametrize(
    "override, problem",
    [
        ("+models.cnn.lr=-1", "models.cnn.lr: Input should be greater than 0"),
        ("+models.mlp.epochs=0", "models.mlp.epochs"),
        ("+models.cnn.epochs=ten", "models.cnn.epochs: Input should be a valid integer"),
        ("+models.mlp.weight_decay=.inf", "models.mlp.weight_decay: Input should be a finite number"),
        ("models.cnn.options.widths=[]", "models.cnn: option widths must be a non-empty list"),
        ("models.vit.options.patch_size=7", "models.vit: option patch_size 7 does not divide image_size 48"),
        ("models.vit.options.depth=7", "models.vit: unknown option 'depth'"),
        ("+models.cnn.pretrained=/etc/passwd", "models.cnn: pretrained: /etc/passwd is outside the repository"),
        ("+models.cnn.pretrained=params.yaml", "models.cnn: there are no pretrained weights for cnn"),
        (
            "+models.resnet18.pretrained=weights/none.pt",
            "models.resnet18: pretrained weights file weights/none.pt not found",
        ),
        ("data.classes=[joy]", "data.classes: 'joy' is not a class of the synthetic faces"),
        ("seed=-1", "seed: Input should be greater than or equal to 0"),
        ("seeds=[1, 4294967296]", "seeds.1: Input should be less than 4294967296"),
        (
            "tune.search_space.batch_size=[0]",
            "tune.search_space.batch_size: Input should be greater than or equal to 2",
        ),
        ("tune.search_space.batch_size=[]", "tune.search_space.batch_size: List should have at least 1 item"),
        ("tune.search_space.dropout.high=5", "tune.search_space.dropout: Input should be less than 1"),
        ("train.lr=true", "train.lr: Input should be a valid number (got True)"),
        ("train.epochs=2.0", "train.epochs: Input should be a valid integer"),
        ("train.class_weights=1", "train.class_weights: Input should be a valid boolean"),
    ],
)
def test_validate_refuses_what_a_later_stage_would(override, problem):
    with pytest.raises(FerError) as refused:
        check_everything(parse_params(_params_with(override)), ROOT)
    assert str(refused.value).startswith(f"params.yaml: {problem}"), str(refused.value)


@pytest.mark.parametrize(
    "source, path, problem",
    [("folder", "data/none", "data.path: data/none is not a folder"), ("csv", "data", "data.path: data is not a file")],
)
def test_validate_refuses_a_data_path_that_is_not_there(tmp_path, source, path, problem):
    (tmp_path / "data").mkdir()
    raw = _params_with(f"data.source={source}")
    raw["data"]["path"] = path
    with pytest.raises(FerError, match=problem):
        check_everything(parse_params(raw), tmp_path)


@pytest.mark.skipif(torch_sees_cuda(), reason="this machine has CUDA")
def test_validate_refuses_cuda_on_a_machine_without_it():
    with pytest.raises(FerError, match="models.mlp.device .*cuda was asked for but torch sees no CUDA GPU"):
        check_everything(parse_params(_params_with("+models.mlp.device=cuda")), ROOT)


def test_the_validate_stage_runs_the_checks_without_torch(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params_with("models.cnn.options.widths=[]")))
    probe = (
        "import runpy, sys; sys.argv = ['validate', '--out', 'mark']\n"
        f"try:\n    runpy.run_path({str(ROOT / 'stages/validate.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n    print('exit', exit.code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == "exit 2 False", result.stdout + result.stderr
    assert (
        result.stderr.strip() == "error: params.yaml: models.cnn: option widths must be a non-empty list of "
        "positive integers (got [])"
    )


# 4. commands write only their own files -------------------------------------------------------------------------


def test_drift_out_keeps_the_other_files_of_its_folder(tmp_path, tiny_split):
    out = tmp_path / "plots"
    (out / "confusion").mkdir(parents=True)
    (out / "confusion" / "cnn.json").write_text("{}")
    (out / "leaderboard.json").write_text("[]")
    drift_report(write_prediction_log(tmp_path / "log.sqlite"), tiny_split, out)
    assert (out / "confusion" / "cnn.json").read_text() == "{}" and (out / "leaderboard.json").read_text() == "[]"
    assert {"drift.json", "drift.md", "brightness.png"} <= {p.name for p in out.iterdir()}


def test_profile_keeps_the_comments_and_order_of_params_yaml(tmp_path):
    target = tmp_path / "params.yaml"
    before = (ROOT / "params.yaml").read_text()
    target.write_text(before)
    main(["profile", str(ROOT / "params-fer2013-gpu.yaml"), "--params", str(target)])
    after = target.read_text()
    comments = [line.partition("#")[2] for line in before.splitlines() if "#" in line]
    assert [line.partition("#")[2] for line in after.splitlines() if "#" in line] == comments
    assert [line.split(":")[0] for line in after.splitlines() if line and not line[0].isspace()] == [
        line.split(":")[0] for line in before.splitlines() if line and not line[0].isspace()
    ]
    assert load_params(target) == apply_profile(ROOT / "params.yaml", ROOT / "params-fer2013-gpu.yaml")[1]


# 5. one line, never a traceback ---------------------------------------------------------------------------------


def _one_line_exit(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def _drift(log, split, out, *options) -> list[str]:
    """`fer drift`'s arguments: the log against the split, its report to out."""
    return ["drift", "--log", str(log), "--split", str(split), "--out", str(out), *options]


def test_mtcnn_finds_no_face_in_images_too_small_for_one_rather_than_crashing():
    detector = face_detector("mtcnn", 20)
    tiny = [np.zeros((1, 1), np.uint8), np.full((10, 3000), 100, np.uint8), np.full((11, 11), 9, np.uint8)]
    assert detector(tiny) == [[], [], []]
    assert detector([np.zeros((1, 1), np.uint8)], 0.05) == [[]]


def _drop_column(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE predictions DROP COLUMN sharpness")


def _text_stat(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE predictions SET contrast = 'high' WHERE id = 1")


def _null_stat(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE predictions SET brightness = NULL WHERE id = 2")


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (_drop_column, r"not a prediction log \(.*no such column: sharpness"),
        (_text_stat, "column contrast holds text or NULL"),
        (_null_stat, "column brightness holds text or NULL"),
    ],
)
def test_drift_on_a_log_with_missing_or_unusable_columns_is_one_line(tmp_path, tiny_split, spoil, problem, capsys):
    log = write_prediction_log(tmp_path / "log.sqlite")
    spoil(log)
    err = _one_line_exit(_drift(log, tiny_split, tmp_path / "d"), capsys)
    assert re.search(problem, err), err


@pytest.mark.parametrize("out, problem", [("params.yaml", "--out: .*params.yaml is a file"), ("/proc/x", "/proc/x")])
def test_drift_with_an_unusable_out_is_one_line(tmp_path, tiny_split, out, problem, capsys):
    if out == "params.yaml":
        out = str(tmp_path / out)
        Path(out).write_text("seed: 1\n")
    err = _one_line_exit(_drift(write_prediction_log(tmp_path / "log.sqlite"), tiny_split, out), capsys)
    assert re.search(problem, err), err
    if out.endswith("params.yaml"):
        assert Path(out).read_text() == "seed: 1\n"


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["bench", "--images", "0"], "--images: 0; expected at least one batch"),
        (["bench", "--images", "-5"], "--images: -5"),
        (["bench", "--batch-size", "0"], "--batch-size: 0; expected at least 2"),
        (
            ["bench", "--models", "mlp", "--images", "100"],
            r"--images: 100; expected at least one batch \(--batch-size 12",
        ),
        (["report", "--repo", "/nonexistent"], "--repo: /nonexistent is not a DVC repository"),
        (["report", "--repo", str(ROOT), "--render-plots", str(ROOT / "params.yaml")], "--render-plots: .* is a file"),
    ],
)
def test_bad_command_arguments_are_one_line(argv, problem, capsys):
    assert re.search(problem, _one_line_exit(argv, capsys))


def _with_file_size_limit(limit: int):
    """A stand-in for a full disk: writes past `limit` bytes fail with EFBIG, as they would with ENOSPC."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("command", ["profile", "validate"])
def test_a_write_the_disk_refuses_is_one_line_and_leaves_no_temp_files(tmp_path, command):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    argv = (
        [sys.executable, "-m", "fer.cli", "profile", str(ROOT / "params-fer2013-gpu.yaml")]
        if command == "profile"
        else [sys.executable, str(ROOT / "stages/validate.py"), "--out", "outputs/mark"]
    )
    result = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=_with_file_size_limit(8),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert "File too large" in result.stderr
    assert (tmp_path / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_a_prediction_log_that_cannot_be_written_does_not_fail_the_prediction(tiny_checkpoint, tmp_path):
    from fastapi.testclient import TestClient

    params = load_params(ROOT / "params.yaml")
    predictor = Predictor(tiny_checkpoint, params.align, params.predict)
    log = PredictionLog(tmp_path / "log.sqlite")
    with sqlite3.connect(log.path) as other:  # another writer holds the database locked
        other.execute("BEGIN EXCLUSIVE")
        log._db.execute("PRAGMA busy_timeout = 0")
        client = TestClient(create_app(predictor, {"name": "mlp"}, log))
        photo = io.BytesIO()
        Image.fromarray(skdata.astronaut()).resize((256, 256)).save(photo, format="JPEG")
        answer = client.post("/predict", files={"file": ("a.jpg", photo.getvalue(), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["faces"]) == 1


# 6. bounded -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, problem",
    [
        ("synthetic.n_images=1000000000", "synthetic.n_images: 1000000000 images of 48x48 take 2145.8 GiB"),
        (
            "evaluate.calibration_bins=1000000000",
            "evaluate.calibration_bins: Input should be less than or equal to 1000",
        ),
        ("evaluate.latency_images=1000000000", "evaluate.latency_images: Input should be less than or equal to 10000"),
    ],
)
def test_size_params_are_bounded(override, problem):
    with pytest.raises(FerError, match=re.escape(problem)):
        check_everything(parse_params(_params_with(override)), ROOT)


def test_a_fifo_in_the_data_folder_is_refused_by_validate(tmp_path):
    (tmp_path / "data" / "faces" / "happy").mkdir(parents=True)
    os.mkfifo(tmp_path / "data" / "faces" / "happy" / "pipe.png")
    with pytest.raises(FerError, match="pipe.png: not a regular file"):
        check_everything(parse_params(_params_with("seed=1")), tmp_path)


# 7. silently wrong ------------------------------------------------------------------------------------------------


def test_a_checkpoint_with_flipped_bits_is_refused_by_its_own_digest(tiny_checkpoint, tmp_path, capsys):
    content = torch.load(tiny_checkpoint, weights_only=True)
    weight = content["state_dict"]["1.weight"].clone()
    weight.view(torch.int32)[0, 0] ^= 1 << 3  # a low mantissa bit: still finite, still a valid file
    content["state_dict"]["1.weight"] = weight
    flipped = tmp_path / "flipped.pt"
    torch.save(content, flipped)
    with pytest.raises(FerError, match="differ from the digest they were saved with"):
        load_checkpoint(flipped)
    err = _one_line_exit(
        ["predict", str(ROOT / "README.md"), "--model", str(flipped), "--champion-record", str(tmp_path / "none.json")],
        capsys,
    )
    assert "digest" in err


def test_a_symlink_loop_in_a_class_folder_is_refused_by_validate(tmp_path):
    happy = tmp_path / "data" / "faces" / "happy"
    happy.mkdir(parents=True)
    Image.new("L", (48, 48), 100).save(happy / "0.png")
    (happy / "again").symlink_to("..")
    with pytest.raises(FerError, match="again: a symlink to .*, a folder above it"):
        check_everything(parse_params(_params_with("seed=1")), tmp_path)


def test_a_transparent_png_is_seen_as_a_viewer_shows_it():
    hidden = np.zeros((64, 64, 4), np.uint8)
    hidden[..., :3] = skdata.camera()[:64, :64, None]  # a picture under fully transparent pixels
    for mode in ("RGBA", "LA"):
        png = io.BytesIO()
        Image.fromarray(hidden).convert(mode).save(png, format="PNG")
        png.seek(0)
        assert (decode_image(png, "clear.png", 10**6, 256).grey == 255).all()


def test_csv_pixel_rows_that_are_not_a_usable_square_are_refused(tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("emotion,pixels\n" + "".join(f"{k},{10 * k}\n" for k in range(7)))
    with pytest.raises(FerError, match="pixel rows hold 1 values; expected a square image of at least 16x16"):
        read_local(csv, "csv", REPO_PARAMS.data.max_side)


@pytest.mark.parametrize("alpha", ["5", "nan", "0", "1"])
def test_drift_alpha_outside_zero_one_is_refused(tmp_path, tiny_split, alpha, capsys):
    err = _one_line_exit(
        _drift(write_prediction_log(tmp_path / "log.sqlite"), tiny_split, tmp_path / "d", "--alpha", alpha), capsys
    )
    assert "--alpha" in err and not (tmp_path / "d").exists()


def test_report_plots_matching_nothing_says_so(tmp_path, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "p.json").write_text('[{"x": 1, "y": 2}]')
    (repo / "dvc.yaml").write_text("plots:\n  - p.json\n")
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "plots"],
    ):
        subprocess.run(
            cmd,
            cwd=repo,
            check=True,
            capture_output=True,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        )
    err = _one_line_exit(
        [
            "report",
            "--repo",
            str(repo),
            "--rev",
            "HEAD",
            "--render-plots",
            str(tmp_path / "png"),
            "--plots",
            "nomatch*",
        ],
        capsys,
    )
    assert "--plots: no DVC plot matches nomatch*" in err


def test_attributes_mean_f1_leaves_out_attributes_the_test_split_never_shows():
    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1], [0, 0, 1]])  # attribute 1 never shows
    head = LabelSet("attributes", ("Smiling", "Bald", "Eyeglasses")).head
    result = head.test_metrics(labels, labels.astype(float), train_labels=np.zeros((1, 3), int))
    assert result["macro_f1"] == 1.0 and result["attributes_absent_from_test"] == 1
