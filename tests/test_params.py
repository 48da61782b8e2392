import pytest
import yaml

from fer.errors import FerError
from fer.params import load_params, parse_params


def test_repository_params_files_are_valid():
    params = load_params("params.yaml")
    assert params.data.source == "synthetic"
    assert params.split.val == pytest.approx(0.1)
    gpu = load_params("params-fer2013-gpu.yaml")
    assert gpu.train.device == "cuda" and set(gpu.models) == set(params.models)


@pytest.mark.parametrize("raw, key, hint", [
    ({"data": {"source": "ftp"}}, "data.source", "'synthetic'"),
    ({"align": {"size": "big"}}, "align.size", "integer"),
    ({"split": {"val": 0.7}}, "split.val", "less than 0.5"),
    ({"align": {"sizee": 48}}, "align.sizee", "unknown key"),
    ({"nonsense": 1}, "nonsense", "unknown key"),
    ({"split": {"val": 0.45, "test": 0.45}}, "split.val + split.test", "10%"),
])
def test_bad_params_give_one_line_naming_the_key(raw, key, hint):
    with pytest.raises(FerError) as err:
        parse_params(raw, "params.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: ")
    assert key in message and hint in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FerError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(FerError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(FerError, match="mapping"):
        load_params(bad)
