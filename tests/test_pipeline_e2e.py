"""The real `dvc repro` on tiny configs, in a throwaway copy of the repository."""

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from conftest import files_and_bytes
from PIL import Image
from skimage import data as skdata

from fer.core.emotions import EMOTIONS
from fer.data.datasets import load_split, split_label_set
from fer.runtime.checkpoint import read_checkpoint
from fer.train.tuning import STUDY_DB

REPO = Path(__file__).resolve().parents[1]
PIPELINE_FILES = ("fer", "stages", "dvc.yaml", "params.yaml", "pyproject.toml")
pytestmark = pytest.mark.e2e


def _run(cmd, cwd, log: Path | None = None):
    """cmd run in cwd with its output captured; written to the file log instead where cmd starts a daemon that
    inherits its output, as capturing that through a pipe would wait for the daemon to exit."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(cwd))
    # Each test repository keeps the bytecode its stages compile (DVC ignores it: .dvcignore), so the later stage
    # processes, and the copies of a built repository, do not compile fer again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if log is None:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    with log.open("w") as output:
        ran = subprocess.run(cmd, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=600)
    return subprocess.CompletedProcess(cmd, ran.returncode, log.read_text(), "")


def _make_repo(tmp_path: Path, **sections) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PIPELINE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / name)
    _set_params(repo, **sections)
    (repo / "data").mkdir()
    shutil.copytree(_dvc_skeleton(), repo, dirs_exist_ok=True)
    # A clone always has commits, and dvclive needs one to find its place in the repository.
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "pipeline"],
    ):
        result = _run(cmd, repo)
        assert result.returncode == 0, result.stderr
    return repo


_SKELETON = tempfile.TemporaryDirectory(prefix="fer-dvc-skeleton-")  # removed when the test session ends


@functools.cache
def _dvc_skeleton() -> Path:
    """What `dvc init` writes (.dvc/), with analytics off, the plot templates dvc.yaml names and the project's
    .dvcignore: made once per session and copied into each test repository, as each dvc command costs a second or
    more of start-up."""
    made = Path(_SKELETON.name) / "skeleton"
    made.mkdir()
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["cp", "-r", str(REPO / ".dvc" / "plots"), ".dvc/plots"],
        ["cp", str(REPO / ".dvcignore"), ".dvcignore"],
    ):
        result = _run(cmd, made)
        assert result.returncode == 0, result.stderr
    for own in (made / ".git", made / ".dvc" / "tmp"):  # each repository has its own git and DVC working files
        shutil.rmtree(own)
    return made


def _set_params(repo: Path, **sections) -> None:
    """Override params.yaml's sections: a dict section's keys are merged in (models is replaced whole)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        merge = isinstance(values, dict) and section != "models"
        params[section] = {**params[section], **values} if merge else values
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def _copy_repo(built: Path, tmp_path: Path) -> Path:
    """A copy of a reproduced repository (git history, DVC cache, outputs, dvc.lock) for one test to change.

    Copying takes a fraction of a second where reproducing it again would take tens; DVC's working files in
    .dvc/tmp stay behind, so the copy starts with no locks or queue of its own."""
    repo = tmp_path / "repo"
    shutil.copytree(
        built, repo, symlinks=True, ignore=lambda folder, names: ["tmp"] if Path(folder) == built / ".dvc" else []
    )
    return repo


# Tests that assert nothing of the export stage reproduce up to compare: the stage after it, export, is run by
# the tiny pipeline and checked by test_export.
UNTIL_COMPARE = "compare"


def _repro(repo, *args):
    result = _run(["dvc", "repro", *args], repo)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _class_tone(k):
    return 20 + 30 * k


def _tone_image(k, i, shape=(48, 48)):
    """An image whose mean brightness encodes class k, with a per-image pattern so none are duplicates."""
    rng = np.random.default_rng(1000 * k + i)
    return np.clip(_class_tone(k) + rng.integers(-6, 7, size=shape), 0, 255).astype(np.uint8)


def _assert_labels_survive(repo):
    """Each image's brightness still tells its emotion, which the split's labels name."""
    classes = split_label_set(repo / "outputs" / "split").classes
    for split in ("train", "val", "test"):
        images, labels = load_split(repo / "outputs" / "split", split)
        assert len(images) > 0
        decoded = np.round((images.reshape(len(images), -1).mean(axis=1) - 20) / 30).astype(int)
        assert [EMOTIONS[k] for k in decoded] == [classes[label] for label in labels], split


TINY_MODELS = {
    "mlp": {"arch": "mlp", "image_size": 48, "options": {"hidden": [32]}},
    "cnn": {"arch": "cnn", "image_size": 48, "options": {"widths": [8, 16]}},
}
TINY = dict(
    synthetic={"n_images": 300},
    train={"epochs": 2, "device": "cpu"},
    models=TINY_MODELS,
    model="cnn",
    tune={"trials": 2, "epochs": 1},
    evaluate={"latency_images": 4},
    export={"calibration_images": 16, "latency_batch": 4, "latency_repeats": 2},
)


def test_default_pipeline_end_to_end_is_cached_reproducible_and_selective(tiny_pipeline, tmp_path):
    repo = _copy_repo(tiny_pipeline, tmp_path)  # the fixture ran `dvc repro` on it: a second one does nothing
    assert "Data and pipelines are up to date." in _repro(repo)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    # A bad value stops the run at the validate stage, before any stage has deleted its outputs.
    kept = {
        p: p.read_bytes()
        for folder in ("outputs", "metrics")
        for p in (repo / folder).rglob("*")
        if p.is_file() and p.name != "params_valid.txt"
    }
    good_params = (repo / "params.yaml").read_text()
    for bad in (
        {"train": {"lr": -1}},
        {"models": {"cnn": {"arch": "alexnet"}}},
        {"data": {"source": "csv", "path": "/etc/fer.csv"}},
    ):
        params = yaml.safe_load(good_params)
        for section, values in bad.items():
            params[section] = {**params[section], **values}
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
        failed = _run(["dvc", "repro"], repo)
        assert failed.returncode != 0 and "error: params.yaml: " in failed.stderr, failed.stderr
        assert {p: p.read_bytes() for p in kept} == kept
    (repo / "params.yaml").write_text(good_params)
    assert "Running stage 'fetch'" not in _repro(repo)  # only the validate mark was re-made
    # Bytecode that Python writes beside every module, at any version, changes no stage's dependencies (checked
    # by the `dvc status` after the edits below).
    assert _run([sys.executable, "-m", "compileall", "-q", "fer", "stages"], repo).returncode == 0
    # Editing a library module marks exactly the stages that run it as changed, and nothing else.
    for module, expected in (
        ("fer/data/splitting.py", {"fetch", "align", "split", "train@cnn-42", "tune"}),
        ("fer/runtime/inference.py", {"train@mlp-42", "evaluate@cnn-42", "evaluate_tuned"}),
    ):
        source = repo / module
        original = source.read_text()
        source.write_text(original + "\n# an edit\n")
        changed = set(json.loads(_run(["dvc", "status", "--json"], repo).stdout))
        source.write_text(original)
        assert expected <= changed, (module, changed)
        if module.startswith("fer/runtime"):
            assert not changed & {"fetch", "align", "split"}, changed
    assert "Data and pipelines are up to date." in _run(["dvc", "status"], repo).stdout
    _repro(repo, "--force", *(f"train@{name}-42" for name in TINY_MODELS))
    relock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage in ("fetch", "align", "split"):
        assert relock["stages"][stage] == lock["stages"][stage]
    for name in TINY_MODELS:  # weights repeat exactly on CPU; only the timing in dvclive differs
        checkpoint = [out for out in lock["stages"][f"train@{name}-42"]["outs"] if out["path"].endswith(".pt")]
        assert checkpoint and all(out in relock["stages"][f"train@{name}-42"]["outs"] for out in checkpoint)
        assert json.loads((repo / "dvclive" / "train" / f"{name}-seed42" / "metrics.json").read_text())["step"] == 1
    split_metrics = json.loads((repo / "metrics" / "split.json").read_text())
    assert [split_metrics[s]["images"] for s in ("train", "val", "test")] == [240, 30, 30]
    assert (repo / "plots" / "align_samples.png").stat().st_size > 0
    leaderboard = json.loads((repo / "metrics" / "leaderboard.json").read_text())
    assert set(leaderboard["models"]) == {"mlp", "cnn", "tuned"}
    assert (repo / "outputs" / "champion.pt").is_file()
    champion = json.loads((repo / "metrics" / "champion.json").read_text())
    assert champion["name"] == leaderboard["champion"]
    assert champion["test_metrics"]["accuracy"] == leaderboard["models"][champion["name"]]["accuracy"]
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], repo).stdout)
    workspace = next(iter(shown.values()))["data"]
    assert "accuracy" in workspace["metrics/evaluate/cnn-seed42.json"]["data"]
    plots = json.loads(_run(["dvc", "plots", "show", "--json"], repo).stdout)
    assert not plots.get("errors"), plots.get("errors")
    rendered = json.dumps(plots["data"])
    for expected in (
        "dvclive/train/cnn-seed42/plots/metrics",
        "plots/confusion/cnn-seed42.json",
        "plots/confusion_normalized/tuned.json",
        "plots/leaderboard.json",
        "plots/predictions/cnn-seed42.json",
        "plots/gallery/confident_errors.png",
        "plots/gallery/class_activations.png",
    ):
        assert expected in rendered
    # per image: one confusion row each, with the correctness a paired test reads
    rows = json.loads((repo / "plots" / "predictions" / "cnn-seed42.json").read_text())
    assert len(rows) == 30 and {"actual", "predicted", "correct", "p_true"} <= set(rows[0])
    assert all(key in leaderboard["models"]["cnn"] for key in ("accuracy_ci_low", "macro_f1_ci_high"))
    assert (
        "tied_with_champion"
        in leaderboard["models"][next(m for m in leaderboard["models"] if m != leaderboard["champion"])]
    )


def test_a_changed_model_re_runs_its_own_stages_and_switching_the_tuned_model_reuses_the_cache(tiny_pipeline, tmp_path):
    repo = _copy_repo(tiny_pipeline, tmp_path)
    # Changing one model's params re-runs only its train stage (and what depends on it) ...
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["cnn"]["lr"] = 0.01
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = _repro(repo, UNTIL_COMPARE)
    assert "Running stage 'train@cnn-42'" in out
    assert "Running stage 'train@mlp-42'" not in out and "Running stage 'fetch'" not in out
    # tune re-ran for the new setup; DVC kept its journal, which now holds both setups' studies (so a killed
    # run, too, finds the trials it had finished).
    assert len(_study_names(repo, "cnn")) == 2
    # ... and naming another model to tune re-runs tune onwards, reusing every cached train stage.
    cnn_study = files_and_bytes(repo / "outputs" / "tune" / "study" / "cnn")
    cnn_tuned = {p: (repo / p).read_bytes() for p in ("outputs/tune/model.pt", "metrics/tune.json")}
    params["model"] = "mlp"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = _repro(repo, UNTIL_COMPARE)
    assert "Running stage 'tune'" in out and "Running stage 'compare'" in out
    assert "Running stage 'train@" not in out
    assert files_and_bytes(repo / "outputs" / "tune" / "study" / "mlp")
    # Switching back (dvc exp run -S model=cnn) restores cnn's tune outputs from the run cache without
    # running tune, and leaves cnn's study as it was.
    params["model"] = "cnn"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = _repro(repo, UNTIL_COMPARE)
    assert "Stage 'tune' is cached - skipping run" in out and "Running stage 'tune'" not in out, out
    assert {p: (repo / p).read_bytes() for p in cnn_tuned} == cnn_tuned
    assert cnn_study and files_and_bytes(repo / "outputs" / "tune" / "study" / "cnn") == cnn_study


def test_fer2013_csv_source_keeps_labels_and_original_usage(tmp_path):
    repo = _make_repo(tmp_path, data={"source": "csv", "path": "data/fer2013.csv"}, split={"strategy": "original"})
    usages = ["Training"] * 16 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    rows = ["emotion,pixels,Usage"] + [
        f"{k},{' '.join(map(str, _tone_image(k, i).ravel()))},{usages[i]}" for k in range(7) for i in range(20)
    ]
    (repo / "data" / "fer2013.csv").write_text("\n".join(rows) + "\n")
    _repro(repo, "split")
    _assert_labels_survive(repo)
    metrics = json.loads((repo / "metrics" / "split.json").read_text())
    assert [metrics[s]["images"] for s in ("train", "val", "test")] == [112, 14, 14]


def _write_tree(root, class_names, shape_of, per_class=20, ext="png"):
    for name in class_names:
        k = EMOTIONS.index(name.lower())
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_tone_image(k, i, shape_of(i))).save(root / name / f"{i}.{ext}")


def test_msambare_folder_source_maps_folders_by_name(tmp_path):
    repo = _make_repo(tmp_path, data={"source": "folder", "path": "data/fer2013"})
    for part in ("train", "test"):
        _write_tree(repo / "data" / "fer2013" / part, EMOTIONS, lambda i: (48, 48), per_class=10)
    _repro(repo, "split")
    _assert_labels_survive(repo)


HFE_CLASSES = ["angry", "fear", "happy", "sad", "surprise"]


def test_a_five_class_folder_dataset_gives_five_output_models_end_to_end(tmp_path):
    """Human Face Emotions' five class folders, zipped, with varied sizes: every stage, `fer predict --json`."""
    repo = _make_repo(
        tmp_path,
        **{
            **TINY,
            "data": {"source": "zip", "path": "data/hfe.zip"},
            "train": {"epochs": 1, "device": "cpu"},
            "tune": {"trials": 1, "epochs": 1},
        },
    )
    tree = tmp_path / "hfe"
    _write_tree(tree / "Data", [name.title() for name in HFE_CLASSES], lambda i: (40 + 3 * i, 60 + i))
    with zipfile.ZipFile(repo / "data" / "hfe.zip", "w") as zf:
        for path in sorted(tree.rglob("*.png")):
            zf.write(path, path.relative_to(tree))
    _repro(repo, UNTIL_COMPARE)
    _assert_labels_survive(repo)
    fetched = json.loads((repo / "metrics" / "fetch.json").read_text())
    assert fetched["images"] == 100 and list(fetched["classes"]) == HFE_CLASSES
    checkpoints = sorted((repo / "outputs" / "models").glob("*.pt"))
    assert [path.name for path in checkpoints] == ["cnn-seed42.pt", "mlp-seed42.pt"]
    for checkpoint in checkpoints:
        state, record = read_checkpoint(checkpoint)
        assert record.classes == HFE_CLASSES and list(state.values())[-1].shape == (5,)  # the head's bias
    evaluation = json.loads((repo / "metrics" / "evaluate" / "cnn-seed42.json").read_text())
    assert list(evaluation["per_class"]) == HFE_CLASSES
    cells = json.loads((repo / "plots" / "confusion" / "cnn-seed42.json").read_text())
    assert {cell["actual"] for cell in cells} == set(HFE_CLASSES)
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo)
    predicted = _run([sys.executable, "-m", "fer.cli", "predict", "--json", str(photo)], repo)
    assert predicted.returncode == 0, predicted.stderr
    (face,) = json.loads(predicted.stdout)[0]["faces"]
    assert list(face["probabilities"]) == HFE_CLASSES and face["emotion"] in HFE_CLASSES


def test_data_classes_picks_renames_and_refuses_what_the_data_lacks(tmp_path):
    repo = _make_repo(
        tmp_path,
        data={
            "source": "folder",
            "path": "data/faces",
            "classes": {"Happy": "positive", "Surprise": "positive", "Sad": "negative"},
        },
    )
    _write_tree(repo / "data" / "faces", ["Angry", "Happy", "Sad", "Surprise"], lambda i: (48, 48))
    (repo / "data" / "faces" / "Contempt").mkdir()  # an empty class folder, left out by data.classes
    _repro(repo, "split")
    fetched = json.loads((repo / "metrics" / "fetch.json").read_text())
    assert fetched["classes"] == {"positive": 40, "negative": 20} and fetched["left_out_by_classes"] == 20
    assert split_label_set(repo / "outputs" / "split").classes == ("positive", "negative")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for classes, message in (
        (
            ["happy", "neutral"],
            "data.classes: 'neutral' is not a class of the data; found: angry, happy, sad, surprise, contempt",
        ),
        (None, "class 'contempt' has no readable image"),
    ):
        params["data"]["classes"] = classes
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
        failed = _run(["dvc", "repro", "fetch"], repo)
        assert failed.returncode != 0 and message in failed.stderr, failed.stderr


def test_bad_source_fails_in_one_line_without_leaving_outputs(tmp_path):
    repo = _make_repo(tmp_path, data={"source": "csv", "path": "data/fer2013.csv"})
    (repo / "data" / "fer2013.csv").write_text("label,image\n1,2 3\n")
    result = _run(["dvc", "repro", "split"], repo)
    assert result.returncode != 0
    assert "error: " in result.stderr and "fer2013.csv" in result.stderr
    # Only the validate stage's mark, which ran before the failing fetch.
    assert not (repo / "outputs").exists() or {p.name for p in (repo / "outputs").iterdir()} <= {
        "params_valid.txt",
        ".gitignore",
    }


@pytest.fixture
def gcs_emulator():
    """A real GCS JSON-API server on 127.0.0.1 with an empty bucket `fer-test`; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            Path(sys.executable).parent / "gcp-storage-emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--default-bucket",
            "fer-test",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the GCS emulator did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _study_names(repo, model: str) -> list[str]:
    """The studies in the tune stage's journal for one model."""
    journal = repo / "outputs" / "tune" / "study" / model / STUDY_DB
    return optuna.get_all_study_names(storage=f"sqlite:///{journal}")


def _outputs(repo) -> dict:
    """Every file DVC wrote under outputs/ (dvc also writes a .gitignore there, which git owns)."""
    return {p: p.read_bytes() for p in (repo / "outputs").rglob("*") if p.is_file() and p.name != ".gitignore"}


def _stage_outputs(repo, stages) -> dict:
    """The files under outputs/ that the named stages wrote, as dvc.lock lists their outs."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    roots = [repo / out["path"] for stage in stages for out in lock[stage].get("outs", [])]
    return {p: data for p, data in _outputs(repo).items() if any(p == root or root in p.parents for root in roots)}


def test_outputs_round_trip_through_a_gs_remote(tiny_pipeline, tmp_path, gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # otherwise gcsfs hangs on the emulator
    repo = _copy_repo(tiny_pipeline, tmp_path)
    # what `dvc pull --with-deps train@mlp-42` must bring back: that stage's outputs and its upstream stages'
    produced = _stage_outputs(repo, ("validate", "fetch", "align", "split", "train@mlp-42"))
    assert repo / "outputs" / "models" / "mlp-seed42.pt" in produced
    assert repo / "outputs" / "split" / "train" / "images.npy" in produced
    assert _run(["dvc", "remote", "add", "-d", "storage", "gs://fer-test/dvc"], repo).returncode == 0
    pushed = _run(["dvc", "push"], repo)
    assert pushed.returncode == 0 and "pushed" in pushed.stdout, pushed.stdout + pushed.stderr

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "outputs")
    pulled = _run(["dvc", "pull", "--with-deps", "train@mlp-42"], repo)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert _outputs(repo) == produced
    status = _run(["dvc", "status", "train@mlp-42", "--with-deps"], repo)
    assert status.returncode == 0 and "Data and pipelines are up to date." in status.stdout, status.stdout
