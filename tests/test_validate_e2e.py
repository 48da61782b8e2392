"""The real `dvc exp run` with bad values (issue 23): the validate stage stops it before DVC deletes anything."""

import pytest
from test_pipeline_e2e import _copy_repo, _run

pytestmark = pytest.mark.e2e


def _kept(repo) -> dict:
    """Every output file the pipeline wrote (validate's own mark aside, and the .gitignore files DVC writes)."""
    return {
        p: p.read_bytes()
        for folder in ("outputs", "metrics", "dvclive", "plots")
        for p in (repo / folder).rglob("*")
        if p.is_file() and p.name not in ("params_valid.txt", ".gitignore")
    }


def test_bad_values_through_dvc_exp_run_leave_every_output_and_dvc_checkout_restores_what_dvc_drops(
    tiny_pipeline, tmp_path
):
    repo = _copy_repo(tiny_pipeline, tmp_path)
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "outputs"], repo)
    kept = _kept(repo)
    assert any(p.name == "mlp-seed42.pt" for p in kept)
    for bad, problem in (
        ("+models.mlp.lr=-1", "models.mlp.lr"),
        ("models.mlp.options.hidden=[]", "models.mlp: option hidden must be a non-empty list"),
        ("tune.search_space.dropout.high=5", "tune.search_space.dropout"),
        ("+models.mlp.lr=true", "models.mlp.lr"),
    ):
        failed = _run(["dvc", "exp", "run", "-S", bad], repo)
        assert failed.returncode != 0 and f"error: params.yaml: {problem}" in failed.stderr, failed.stderr
        assert _kept(repo) == kept, bad
        _run(["git", "checkout", "params.yaml"], repo)
    # With no seeds the train matrix has no stages: DVC removes their outputs as unused before validate runs.
    _run(["dvc", "exp", "run", "-S", "seeds=[]"], repo)
    _run(["git", "checkout", "params.yaml"], repo)
    # What the README says to do: `dvc checkout` brings back the cached outputs (checkpoints) ...
    restored = _run(["dvc", "checkout"], repo)
    assert restored.returncode == 0, restored.stderr
    assert {p: b for p, b in _kept(repo).items() if "outputs" in p.parts} == {
        p: b for p, b in kept.items() if "outputs" in p.parts
    }
    # ... and git the uncached metrics and plots (cache: false), which are committed with the run.
    assert _run(["git", "checkout", "--", "metrics", "plots", "dvclive"], repo).returncode == 0
    assert _kept(repo) == kept
