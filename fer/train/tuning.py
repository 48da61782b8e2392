"""tune_model(): an Optuna study over one model's training knobs, resumable, then a full retrain of the best.

The study lives in an RDB: by default a SQLite file in the caller's study folder (the tune stage's working
journal, deliberately not a DVC output, so DVC keeps it and a killed or extended run resumes), or any
SQLAlchemy URL in tune.storage so that several workers on several machines share one study (run_trials, which
`fer tune-worker` runs alone). Shared, the workers sample with TPE's constant liar (a running trial counts as a
bad one, so they do not all try the same point), stop together at tune.trials trials in all, and send
heartbeats: a trial whose worker died is marked failed once its heartbeat is older than twice
tune.heartbeat_seconds, and the study goes on without it. The outputs are data files (metrics JSON, history
and importance rows) that DVC renders.
"""

import hashlib
import json
import logging
import statistics
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import sqlalchemy
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from fer.core.errors import FerError, one_line
from fer.core.params import FloatRange, SearchSpace, TuneParams
from fer.core.storage import write_json
from fer.data.datasets import IMAGES, MANIFEST
from fer.data.rawdata import TRAIN, VAL
from fer.train.job import TrainJob
from fer.train.loop import EpochLog, FitResult
from fer.train.trainer import train_model

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials that count towards tune.trials
BUDGETED = (*FINISHED, TrialState.RUNNING)  # ... and the ones that will, unless their worker dies
STUDY_DB = "study.db"
SCRATCH_CHECKPOINT = "trial.pt"
# Trials are few and slow here: Optuna's default of 5 start-up trials would leave the pruner idle in most
# studies, while 2 already give a median to compare against.
PRUNER_STARTUP_TRIALS = 2
DUPLICATE_TABLE = "42P07"  # PostgreSQL's SQLSTATE for a table that already exists
SCHEMA_ATTEMPTS = 3


@dataclass(frozen=True)
class TuneOutputs:
    study_dir: Path  # the SQLite study (when tune.storage is "") and the trials' scratch checkpoint
    checkpoint: Path  # the best settings retrained with the full training params
    metrics: Path  # JSON: best params and value, trial counts
    history: Path  # JSON rows per finished trial: trial, value, best, state
    importances: Path  # JSON rows: param, importance


def split_fingerprint(split_dir: str | Path) -> str:
    """A digest of the train and val splits that trials learn and are scored on."""
    digest = hashlib.sha256()
    for split in (TRAIN, VAL):
        for file in (IMAGES, MANIFEST):
            digest.update((Path(split_dir) / split / file).read_bytes())
    return digest.hexdigest()[:16]


def study_name(job: TrainJob, tune: TuneParams, data: str) -> str:
    """tune.study_name, or one derived from everything that shapes a trial of `job`, the data's fingerprint
    (`data`) included.

    A changed setup or new data then starts a fresh study in the same database, while a re-run of the
    same setup on the same data resumes its own.
    """
    if tune.study_name:
        return tune.study_name
    setup = {
        "spec": job.spec.model_dump(mode="json"),
        "base": job.cfg.model_dump(mode="json"),
        "search_space": tune.search_space.model_dump(mode="json"),
        "epochs": tune.epochs,
        "max_train_images": tune.max_train_images,
        "seed": job.seed,
        "data": data,
    }
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:10]
    return f"fer-{job.name}-{digest}"


def _storage_url(tune: TuneParams, study_dir: Path) -> str:
    return tune.storage or f"sqlite:///{(study_dir / STUDY_DB).resolve()}"


def _redacted(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def _pruner(tune: TuneParams) -> optuna.pruners.BasePruner:
    # Steps are 1-based epochs and Optuna may prune at step == n_warmup_steps: the + 1 keeps the first
    # pruner_warmup_epochs epochs free of pruning, as the param's name promises.
    return optuna.pruners.MedianPruner(
        n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=tune.pruner_warmup_epochs + 1
    )


@contextmanager
def _heartbeats_are_experimental():
    """Optuna's heartbeats (in it since 2.9) still warn on every use."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _report_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    log.warning("trial %d: its worker stopped sending heartbeats; marked failed", trial.number)


def _open_study(tune: TuneParams, study_dir: Path, name: str) -> optuna.Study:
    study_dir.mkdir(parents=True, exist_ok=True)
    url = _storage_url(tune, study_dir)
    heartbeat = (
        {"heartbeat_interval": tune.heartbeat_seconds, "heartbeat_stale_trial_callback": _report_stale}
        if tune.storage
        else {}
    )
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            with _heartbeats_are_experimental():
                storage = optuna.storages.RDBStorage(url, **heartbeat)
            return optuna.create_study(
                storage=storage, study_name=name, direction="maximize", pruner=_pruner(tune), load_if_exists=True
            )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as err:
            # Workers started together on an empty database race to create Optuna's tables (a duplicate row,
            # or PostgreSQL's duplicate_table, SQLSTATE 42P07); the losers find them made on the next try.
            failure = err
            if (
                isinstance(err, sqlalchemy.exc.ProgrammingError)
                and getattr(err.orig, "sqlstate", None) != DUPLICATE_TABLE
            ):
                break
            time.sleep(attempt)
        except (ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
            failure = err
            break
    # Optuna wraps a missing DB driver in an ImportError whose cause names the module.
    raise FerError(
        f"tune.storage: cannot open the study database {_redacted(url)} ({one_line(failure.__cause__ or failure)})"
    )


def _sampler(study: optuna.Study, seed: int, shared: bool) -> optuna.samplers.BaseSampler:
    """TPE, seeded so that a resumed study does not redraw the random start-up params it already tried.

    Workers on a shared database may start at the same moment with the same trial count, so they get fresh
    entropy instead (their interleaving is not repeatable anyway), and the constant liar: another worker's
    running trial counts as a poor result, which steers this worker away from the same point.
    """
    if shared:
        return optuna.samplers.TPESampler(seed=None, constant_liar=True)
    return optuna.samplers.TPESampler(seed=seed + len(study.trials))


def _fail_abandoned_trials(study: optuna.Study) -> None:
    """Mark RUNNING trials failed: nobody else runs trials in the stage's own SQLite file, so a RUNNING
    trial there was left by a killed run and would otherwise show as running forever."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.warning("trial %d was left running by a killed run; marking it failed", trial.number)
        study.tell(trial.number, state=TrialState.FAIL)


class _OverBudget(Exception):
    """A trial started while other workers' trials already filled tune.trials: it fails without training."""


def sample_settings(trial: optuna.Trial, space: SearchSpace) -> dict:
    """The tuned TrainParams keys for one trial; keys set to None in the search space keep their value."""
    settings = {}
    for key, choices in space:
        if isinstance(choices, FloatRange):
            settings[key] = trial.suggest_float(key, choices.low, choices.high, log=choices.log)
        elif choices is not None:
            settings[key] = trial.suggest_categorical(key, choices)
    return settings


def pruning_reporter(trial: optuna.Trial):
    """An on_epoch callback that feeds val accuracy to the pruner and stops a trial that trails the others."""

    def report(epoch: EpochLog) -> None:
        trial.report(epoch.val_acc, epoch.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"val_acc {epoch.val_acc:.4f} at epoch {epoch.epoch}")

    return report


def _objective(job: TrainJob, tune: TuneParams, scratch: Path):
    trial_overrides = {"epochs": tune.epochs, "max_train_images": tune.max_train_images or job.cfg.max_train_images}

    def objective(trial: optuna.Trial) -> float:
        # Two workers can both pass MaxTrialsCallback's check before either asks for its trial; the trial
        # numbers decide which of them is over the budget.
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=BUDGETED) if t.number < trial.number]
        if len(ahead) >= tune.trials:
            trial.study.stop()
            raise _OverBudget(f"the study already holds tune.trials={tune.trials} trials")
        cfg = job.cfg.model_copy(update={**sample_settings(trial, tune.search_space), **trial_overrides})
        return train_model(replace(job, cfg=cfg), scratch, on_epoch=pruning_reporter(trial)).best_val_acc

    return objective


def run_trials(job: TrainJob, tune: TuneParams, study_dir: str | Path) -> optuna.Study:
    """Open (or create) the study of `job` and run trials until it holds tune.trials finished ones; returns it.

    Only the missing trials run: a study that already holds tune.trials finished trials runs none. On a
    shared tune.storage this is what every worker runs; it returns once no worker has a trial running, so
    the study's best is final. study_dir: the SQLite study (when tune.storage is "") and a scratch checkpoint.
    """
    study_dir = Path(study_dir)
    study = _open_study(tune, study_dir, study_name(job, tune, split_fingerprint(job.split_dir)))
    shared = bool(tune.storage)
    if not shared:
        _fail_abandoned_trials(study)
    study.sampler = _sampler(study, job.seed, shared)
    objective = _objective(job, tune, study_dir / SCRATCH_CHECKPOINT)
    try:
        while True:
            with _heartbeats_are_experimental():
                optuna.storages.fail_stale_trials(study)  # a no-op without heartbeats (the stage's own SQLite)
            remaining = tune.trials - len(study.get_trials(deepcopy=False, states=BUDGETED))
            if remaining > 0:
                # n_trials caps this worker; the callback stops every worker once the study as a whole is done.
                study.optimize(
                    objective,
                    n_trials=remaining,
                    catch=(_OverBudget,),
                    callbacks=[MaxTrialsCallback(tune.trials, states=BUDGETED)],
                )
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(tune.heartbeat_seconds)  # other workers' trials: they finish, or go stale and fail
            else:
                return study
    finally:
        (study_dir / SCRATCH_CHECKPOINT).unlink(missing_ok=True)


def trial_values(study: optuna.Study) -> dict:
    """The finished trials' best, median and worst validation accuracy: one value throughout means the trials
    taught the models nothing that tells the settings apart."""
    values = [trial.value for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not values:
        return {}
    return {"count": len(values), "best": max(values), "median": statistics.median(values), "worst": min(values)}


def warn_if_trials_tell_nothing_apart(values: dict, tune_epochs: int) -> None:
    # Measured: one-epoch trials of the default cnn all scored the majority class, so the "best" was trial 0.
    if values and values["count"] > 1 and values["worst"] == values["best"]:
        log.warning(
            "every finished trial scored %.4f: trials of tune.epochs=%d are too short to tell the settings "
            "apart (the best is arbitrary); raise tune.epochs or tune.max_train_images",
            values["best"],
            tune_epochs,
        )


def trial_counts(study: optuna.Study) -> dict:
    states = Counter(trial.state for trial in study.get_trials(deepcopy=False))
    return {
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": states[TrialState.FAIL],
        "total": sum(states.values()),
    }


def history_rows(study: optuna.Study) -> list[dict]:
    """One row per finished trial; a pruned trial shows its last reported val accuracy, and only complete
    trials move the best-so-far line (a pruned one never finished its epochs)."""
    rows, best = [], None
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        if trial.state == TrialState.COMPLETE:
            value = trial.value
            best = value if best is None else max(best, value)
        else:
            value = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        rows.append({"trial": trial.number, "value": value, "best": best, "state": trial.state.name.lower()})
    return rows


def importance_rows(study: optuna.Study) -> list[dict]:
    """Rows {param, importance}, most important first; empty when there is too little to judge."""
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return []
    try:
        importances = optuna.importance.get_param_importances(study)
    except Exception as err:  # a nice-to-have plot must not throw away a finished study
        log.warning("parameter importances unavailable: %s", err)
        return []
    return [{"param": param, "importance": value} for param, value in importances.items()]


def _retrain_best(job: TrainJob, study: optuna.Study, checkpoint: Path, record_name: str, on_epoch) -> FitResult:
    """The best trial's settings trained with the job's full params: only the tuned keys differ from them.

    The checkpoint is recorded as `record_name` (tuned from the job's entry), so it is never mistaken for the
    untuned model of the same entry.
    """
    try:
        best_params = study.best_params
    except ValueError:
        raise FerError(
            f"study {study.study_name!r} has no complete trial to retrain; see the failed or pruned trials in its log"
        ) from None
    best = replace(job, name=record_name, cfg=job.cfg.model_copy(update=best_params))
    return train_model(best, checkpoint, on_epoch=on_epoch, tuned_from=job.name)


def tune_model(job: TrainJob, tune: TuneParams, outputs: TuneOutputs, record_name: str, on_final_epoch=None) -> dict:
    """Run (or resume, or join) the study up to tune.trials finished trials, retrain the best, write the outputs.

    job: the `models` entry tuned, with its full training params, which trials shorten to tune.epochs;
    record_name: the retrained model's identity (its leaderboard row).
    on_final_epoch: an on_epoch callback for the final retrain (e.g. dvclive_logger).
    Returns the metrics written to outputs.metrics.
    """
    study = run_trials(job, tune, outputs.study_dir)
    values = trial_values(study)
    warn_if_trials_tell_nothing_apart(values, tune.epochs)
    final = _retrain_best(job, study, outputs.checkpoint, record_name, on_final_epoch)
    metrics = {
        "study": study.study_name,
        "best_trial": study.best_trial.number,
        "best_value": study.best_value,
        "best_params": study.best_params,
        "final_val_acc": final.best_val_acc,
        "trials": trial_counts(study),
        "trial_values": values,
    }
    write_json(outputs.metrics, metrics)
    write_json(outputs.history, history_rows(study))
    write_json(outputs.importances, importance_rows(study))
    return metrics
