import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from fer.cli import main
from fer.core.errors import FerError
from fer.core.params import load_params, parse_params
from fer.core.profiles import apply_profile, merge_patch

REPO_RAW = yaml.safe_load((REPO / "params.yaml").read_text())
GPU_PROFILE = REPO / "params-fer2013-gpu.yaml"


def test_repository_params_are_valid_and_the_gpu_profile_applies_to_them():
    params = load_params(REPO / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.split.val == pytest.approx(0.1)
    merged, gpu = apply_profile(REPO / "params.yaml", GPU_PROFILE)
    assert gpu.train.device == "cuda" and set(gpu.models) == set(params.models)
    # the profile drops the CPU budget, so every model trains on the whole split for the shared epochs
    assert all(gpu.train_config(name).max_train_images == 0 for name in gpu.models if name != "vit")
    assert gpu.train_config("cnn").epochs == gpu.train.epochs == 60
    assert gpu.train_config("cnn").batch_size == gpu.train.batch_size == 256
    assert gpu.models["vit"].options == {"checkpoint": "google/vit-base-patch16-224-in21k"}
    # what it does not mention stays as params.yaml has it
    assert merged["evaluate"] == REPO_RAW["evaluate"] and gpu.seed == params.seed
    assert len(params.seeds) == 1 and len(gpu.seeds) == 3  # the default costs one run per model, the GPU three


def test_fer_profile_writes_the_merged_params_or_only_checks_them(tmp_path, capsys):
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    before = target.read_text()
    main(["profile", str(GPU_PROFILE), "--params", str(target), "--check"])
    assert target.read_text() == before and "valid params" in capsys.readouterr().out
    main(["profile", str(GPU_PROFILE), "--params", str(target)])
    assert load_params(target).train.device == "cuda"


def test_merge_patch_merges_mappings_replaces_values_and_drops_nulls():
    base = {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 3}
    assert merge_patch(base, {"a": {"x": 5, "y": None, "z": 0}, "b": [9], "c": None}) == {
        "a": {"x": 5, "z": 0},
        "b": [9],
    }
    assert base == {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 3}  # the base is not changed


@pytest.mark.parametrize(
    "patch, key, hint",
    [
        ({"data": {"source": "ftp"}}, "data.source", "'synthetic'"),
        ({"align": {"size": "big"}}, "align.size", "integer"),
        ({"split": {"val": 0.7}}, "split.val", "less than 0.5"),
        ({"align": {"sizee": 48}}, "align.sizee", "unknown key"),
        ({"nonsense": 1}, "nonsense", "unknown key"),
        ({"split": {"val": 0.45, "test": 0.45}}, "split.val + split.test", "10%"),
        ({"train": {"lr": None}}, "train.lr", "missing key"),
        ({"models": {"cnn": {"arch": "alexnet"}}}, "models.cnn", "unknown arch 'alexnet'"),
        ({"seeds": []}, "seeds", "at least 1 item"),
        ({"seeds": [1, 2, 1]}, "seeds", "distinct"),
        ({"predict": {"track_patience": -1}}, "predict.track_patience", "greater than or equal to 0"),
        ({"data": {"classes": ["happy", "Happiness", "sad"]}}, "data", "each class once"),
        ({"data": {"classes": {"happy": "pos", "sad": "Pos", "angry": "neg"}}}, "data", "spell each new class one way"),
    ],
)
def test_bad_params_give_one_line_naming_the_key(patch, key, hint):
    with pytest.raises(FerError) as err:
        parse_params(merge_patch(REPO_RAW, patch), "params.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: ")
    assert key in message and hint in message


@pytest.mark.parametrize("path", ["/home/me/fer2013.csv", "../fer2013.csv", "data/../fer2013.csv", "database.csv"])
def test_local_data_outside_the_data_folder_is_refused(path):
    with pytest.raises(FerError) as err:
        parse_params(merge_patch(REPO_RAW, {"data": {"source": "csv", "path": path}}), "params.yaml")
    message = str(err.value)
    assert "\n" not in message and f"data.path: {path} is outside data/" in message and "cp -r" in message


@pytest.mark.parametrize("path", ["data", "data/fer2013.csv", "data/sub/../fer2013.zip"])
def test_local_data_inside_the_data_folder_is_accepted(path):
    assert parse_params(merge_patch(REPO_RAW, {"data": {"source": "zip", "path": path}})).data.path == path


def test_missing_malformed_and_duplicated_files(tmp_path):
    with pytest.raises(FerError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(FerError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(FerError, match="mapping"):
        load_params(bad)
    bad.write_text((REPO / "params.yaml").read_text() + "\nseed: 7\n")
    with pytest.raises(FerError, match=r"not valid YAML \(line \d+: duplicate key 'seed'\)"):
        load_params(bad)


# fer.models (the model builders) is listed too, so a failure says when it was our builders that brought torch in
HEAVY = ("torch", "torchvision", "cv2", "sklearn", "transformers", "timm", "fer.models")


@pytest.mark.parametrize(
    "code",
    [
        "from fer.core.params import load_params; load_params('params.yaml')",
        "from fer.cli import main\ntry:\n    main(['drift', '--help'])\nexcept SystemExit:\n    pass",
        "import fer.serve.drift",
    ],
)
def test_params_and_drift_need_no_torch(code):
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
