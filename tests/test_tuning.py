import json
import shutil
from dataclasses import replace

import numpy as np
import optuna
import pytest
from conftest import REPO, REPO_PARAMS, train_params
from optuna.trial import TrialState

from fer.cli import main
from fer.core.errors import FerError
from fer.core.params import FloatRange, ModelParams, SearchSpace
from fer.runtime.checkpoint import load_checkpoint
from fer.train import tuning
from fer.train.job import TrainJob
from fer.train.tuning import TuneOutputs, pruning_reporter, split_fingerprint, study_name, tune_model

SPEC = ModelParams(arch="mlp", image_size=48, options={"hidden": [16]})
BASE = train_params(epochs=1, batch_size=32, patience=5)
SPACE = SearchSpace(
    lr=FloatRange(low=1e-3, high=1e-2, log=True),
    weight_decay=None,
    dropout=FloatRange(low=0.0, high=0.5),
    label_smoothing=None,
    batch_size=[16, 32],
)
TUNE = REPO_PARAMS.tune.model_copy(
    update={
        "trials": 3,
        "epochs": 2,
        "max_train_images": 0,
        "storage": "",
        "study_name": "",
        "pruner_warmup_epochs": 1,
        "search_space": SPACE,
    }
)


def _outputs(root) -> TuneOutputs:
    return TuneOutputs(
        study_dir=root / "study",
        checkpoint=root / "best.pt",
        metrics=root / "tune.json",
        history=root / "history.json",
        importances=root / "importances.json",
    )


def _job(split_dir) -> TrainJob:
    return TrainJob("mlp", SPEC, BASE, 7, split_dir)


def _tune(tiny_split, root, tune=TUNE, **kwargs) -> dict:
    return tune_model(_job(tiny_split), tune, _outputs(root), record_name="tuned", **kwargs)


def _stored_study(root, tiny_split, tune=TUNE) -> optuna.Study:
    return optuna.load_study(
        study_name=study_name(_job(tiny_split), tune, split_fingerprint(tiny_split)),
        storage=f"sqlite:///{root / 'study' / tuning.STUDY_DB}",
    )


def _finished(study: optuna.Study) -> list:
    return study.get_trials(states=tuning.FINISHED)


def test_study_writes_best_params_counts_history_and_a_loadable_checkpoint(tiny_split, tmp_path):
    final_epochs = []
    metrics = _tune(tiny_split, tmp_path, on_final_epoch=final_epochs.append)

    best = metrics["best_params"]
    assert set(best) == {"lr", "dropout", "batch_size"}  # keys set to None are not tuned
    assert SPACE.lr.low <= best["lr"] <= SPACE.lr.high and 0.0 <= best["dropout"] <= 0.5
    assert best["batch_size"] in SPACE.batch_size
    trials = metrics["trials"]
    assert trials["complete"] + trials["pruned"] == 3 and trials["failed"] == 0 and trials["total"] == 3
    values = metrics["trial_values"]
    assert values["count"] == trials["complete"] and values["best"] == metrics["best_value"] >= values["worst"]
    assert json.loads((tmp_path / "tune.json").read_text()) == metrics

    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["trial"] for row in history] == [0, 1, 2]
    assert max(row["best"] for row in history) == metrics["best_value"]
    for row in json.loads((tmp_path / "importances.json").read_text()):
        assert row["param"] in best and row["importance"] >= 0

    _, record = load_checkpoint(tmp_path / "best.pt")
    assert record.train["lr"] == best["lr"] and record.train["epochs"] == BASE.epochs
    assert record.name == "tuned" and record.tuned_from == "mlp"  # its own identity, not the untuned model's
    assert len(final_epochs) == BASE.epochs != TUNE.epochs  # the retrain runs base's epochs, not tune's
    assert not (tmp_path / "study" / tuning.SCRATCH_CHECKPOINT).exists()


def test_a_rerun_with_more_trials_resumes_the_same_study(tiny_split, tmp_path):
    _tune(tiny_split, tmp_path, tune=TUNE.model_copy(update={"trials": 2}))
    first_two = [t.params for t in _finished(_stored_study(tmp_path, tiny_split))]
    metrics = _tune(tiny_split, tmp_path)  # trials=3 is not part of the study name: the same study goes on

    finished = _finished(_stored_study(tmp_path, tiny_split))
    assert len(finished) == 3 and metrics["trials"]["total"] == 3
    assert [t.params for t in finished[:2]] == first_two
    assert finished[2].params != finished[0].params  # a resumed sampler does not redraw trial 0


def test_an_interrupted_trial_is_not_counted_and_the_rerun_completes_the_study(tiny_split, tmp_path, monkeypatch):
    real_train_model, calls = tuning.train_model, []

    def interrupted_on_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_model(*args, **kwargs)

    monkeypatch.setattr(tuning, "train_model", interrupted_on_second_trial)
    with pytest.raises(KeyboardInterrupt):
        _tune(tiny_split, tmp_path)
    monkeypatch.undo()

    metrics = _tune(tiny_split, tmp_path)
    assert metrics["trials"] == {**metrics["trials"], "failed": 1, "total": 4}
    assert len(_finished(_stored_study(tmp_path, tiny_split))) == 3


def test_a_trial_left_running_by_a_killed_run_is_marked_failed(tiny_split, tmp_path):
    tune = TUNE.model_copy(update={"trials": 1})
    _tune(tiny_split, tmp_path, tune=tune)
    _stored_study(tmp_path, tiny_split, tune).ask()  # what a SIGKILL mid-trial leaves behind

    metrics = _tune(tiny_split, tmp_path, tune=tune)
    assert metrics["trials"] == {"complete": 1, "pruned": 0, "failed": 1, "total": 2}


def test_a_changed_setup_gets_a_new_study_name():
    narrower = TUNE.model_copy(update={"search_space": SPACE.model_copy(update={"batch_size": [32]})})
    job = _job(REPO / "split")  # never read: the data's part of the name is its fingerprint, given apart ("d")
    assert study_name(job, TUNE, "d") == study_name(replace(job), TUNE.model_copy(), "d")
    assert study_name(job, narrower, "d") != study_name(job, TUNE, "d")
    assert study_name(replace(job, seed=8), TUNE, "d") != study_name(job, TUNE, "d")
    assert study_name(job, TUNE, "other data") != study_name(job, TUNE, "d")
    assert study_name(job, TUNE.model_copy(update={"study_name": "mine"}), "d") == "mine"


def test_new_data_starts_a_new_study(tiny_split, tmp_path):
    other = tmp_path / "other_split"
    shutil.copytree(tiny_split, other)
    images = np.load(other / "train" / "images.npy")
    np.save(other / "train" / "images.npy", 255 - images)
    assert split_fingerprint(other) != split_fingerprint(tiny_split)
    assert split_fingerprint(tiny_split) == split_fingerprint(tiny_split)


def test_the_pruner_stops_a_trial_that_trails_the_others():
    study = optuna.create_study(direction="maximize", pruner=tuning._pruner(TUNE))

    def objective_reporting(accuracies):
        def objective(trial):
            report = pruning_reporter(trial)
            for epoch, acc in enumerate(accuracies, start=1):
                report(
                    tuning.EpochLog(
                        epoch=epoch,
                        train_loss=0.0,
                        train_acc=0.0,
                        val_loss=0.0,
                        val_acc=acc,
                        lr=0.0,
                        seconds=1.0,
                        images_per_second=1.0,
                        bn_seconds=0.0,
                    )
                )
            return accuracies[-1]

        return objective

    study.optimize(objective_reporting([0.5, 0.6, 0.7]), n_trials=tuning.PRUNER_STARTUP_TRIALS)
    study.optimize(objective_reporting([0.1, 0.1, 0.1]), n_trials=1)
    pruned = study.trials[-1]
    assert pruned.state == TrialState.PRUNED
    assert list(pruned.intermediate_values) == [1, 2]  # epoch 1 is warm-up; pruned at the first check after


def test_an_unreachable_database_is_one_clear_error(tiny_split, tmp_path):
    url = "postgresql://nobody:secret@127.0.0.1:1/x"
    with pytest.raises(FerError, match=r"^tune\.storage: .*postgresql://nobody:\*\*\*@127\.0\.0\.1:1/x") as err:
        _tune(tiny_split, tmp_path, tune=TUNE.model_copy(update={"storage": url}))
    assert "\n" not in str(err.value) and "secret" not in str(err.value)


def test_a_worker_without_a_shared_storage_is_one_clear_error(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())  # tune.storage: "" there
    with pytest.raises(SystemExit):
        main(["tune-worker", "--params", str(params)])
    assert capsys.readouterr().err.startswith(f"error: {params}: tune.storage is empty; a worker joins a shared study")


def _study_of(values: list[float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for value in values:
        study.add_trial(optuna.trial.create_trial(value=value))
    return study


@pytest.mark.parametrize(("values", "flat"), [([0.2525] * 4, True), ([0.2525, 0.2525, 0.3875], False), ([0.3], False)])
def test_trials_that_all_score_the_same_are_reported(values, flat, caplog):
    summary = tuning.trial_values(_study_of(values))
    assert summary == {
        "count": len(values),
        "best": max(values),
        "median": float(np.median(values)),
        "worst": min(values),
    }
    tuning.warn_if_trials_tell_nothing_apart(summary, tune_epochs=1)
    assert ("too short to tell the settings apart" in caplog.text) is flat
