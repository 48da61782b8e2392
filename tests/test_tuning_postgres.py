"""Several tuning workers on one study in a real PostgreSQL server that the test starts itself.

Needs Debian's `postgresql` package (initdb, pg_ctl); skipped where it is missing, except with
FER_REQUIRE_POSTGRES set (.ci/run installs it and sets that), where it fails instead.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO
from optuna.trial import TrialState

from fer.train import tuning

# Real stage processes against a real server, and long: handed out first with the other end-to-end tests
# (tests/conftest.py), so that the last minute of a run is not one worker running both while the other idles.
pytestmark = pytest.mark.e2e

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))  # Debian keeps initdb and pg_ctl off the PATH


def _unavailable(why: str):
    if os.environ.get("FER_REQUIRE_POSTGRES"):
        pytest.fail(f"FER_REQUIRE_POSTGRES is set but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 (trust auth, no other listener); yields its SQLAlchemy URL."""
    if not PG_BIN:
        _unavailable("Debian's postgresql package is not installed (apt-get install postgresql)")
    bin_dir = PG_BIN[-1]
    # initdb and postgres refuse to run as root: as root, run them as the postgres system user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # Under /tmp itself, not pytest's tmp_path: the postgres user cannot enter root's 0700 folders.
    root = Path(tempfile.mkdtemp(prefix="fer-pg-"))
    if as_user:
        shutil.chown(root, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"

    def pg(*args):
        return subprocess.run([*as_user, bin_dir / args[0], *args[1:]], capture_output=True, text=True, timeout=120)

    try:
        for step in (
            pg("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"),
            pg(
                "pg_ctl",
                "-D",
                data,
                "-l",
                root / "log",
                "-w",
                "start",
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off",
            ),
        ):
            if step.returncode != 0:
                pytest.fail(f"PostgreSQL did not start: {step.stdout}{step.stderr}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _params_file(folder: Path, storage: str, **tune) -> Path:
    """The repository's params with one tiny mlp tuned on the CPU against `storage`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"] = {"mlp": {"arch": "mlp", "image_size": 48, "options": {"hidden": [16]}}}
    params["model"] = "mlp"
    params["train"].update(device="cpu", epochs=1, batch_size=32)
    params["tune"].update(storage=storage, max_train_images=0, heartbeat_seconds=1, **tune)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder / "params.yaml"


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO))


def _worker(params: Path, split: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fer.cli", "tune-worker", "--params", params, "--split", split],
        cwd=params.parent,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stage(folder: Path, split: Path) -> dict:
    """The tune stage's own script, as dvc.yaml runs it; returns the metrics it writes."""
    done = subprocess.run(
        [
            sys.executable,
            REPO / "stages" / "tune.py",
            "--name",
            "tuned",
            "--split",
            split,
            "--study",
            "study",
            "--out",
            "model.pt",
            "--metrics",
            "tune.json",
            "--history",
            "history.json",
            "--importance",
            "importance.json",
            "--live",
            "live",
        ],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((folder / "tune.json").read_text())


def _study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def test_two_workers_fill_one_budget_and_the_stage_retrains_the_studys_best(postgres, tiny_split, tmp_path):
    params = _params_file(tmp_path, postgres, trials=6, epochs=2)
    workers = [_worker(params, tiny_split) for _ in range(2)]
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, out

    metrics = _stage(tmp_path, tiny_split)
    study = _study(postgres, metrics["study"])
    trials = study.get_trials()
    finished = [t for t in trials if t.state in tuning.FINISHED]
    assert len(finished) == 6  # the budget of the study, not 6 per worker
    assert len({t.number for t in trials}) == len(trials)
    # the two workers did run at once: some trial started before another one finished
    assert any(a.datetime_start < b.datetime_start < a.datetime_complete for a in finished for b in finished)
    assert metrics["best_params"] == study.best_params and metrics["best_trial"] == study.best_trial.number
    assert metrics["trials"]["complete"] + metrics["trials"]["pruned"] == 6


def test_a_killed_workers_trial_is_marked_failed_and_the_study_goes_on(postgres, tiny_split, tmp_path):
    params = _params_file(tmp_path, postgres, trials=3, epochs=4, study_name="killed-worker")
    worker = _worker(params, tiny_split)
    deadline = time.monotonic() + 300
    while True:  # until a trial is mid-way: running, with an epoch reported
        assert worker.poll() is None and time.monotonic() < deadline, "the worker ended before a trial was mid-way"
        # Frozen while the study is read, so that the trial seen running cannot finish before the kill.
        worker.send_signal(signal.SIGSTOP)
        try:
            running = _study(postgres, "killed-worker").get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the worker has not created the study yet
            running = []
        if running and running[0].intermediate_values:
            break
        worker.send_signal(signal.SIGCONT)
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.communicate()

    metrics = _stage(tmp_path, tiny_split)
    killed = _study(postgres, "killed-worker").trials[running[0].number]
    assert killed.state == TrialState.FAIL
    assert metrics["trials"]["complete"] + metrics["trials"]["pruned"] == 3 and metrics["trials"]["failed"] >= 1
