"""Rank the evaluated models and report the ranking as JSON, a markdown table and bar-plot data for DVC.

A model trained with several seeds has one evaluation per seed: its row holds the mean of every column over
them, with the sample standard deviation of accuracy and macro-F1 beside, and it is ranked on the mean.
For the attributes task accuracy and macro-F1 are means over the attributes, and the leaderboard states the
majority baseline (every attribute its more common value) they must beat.
"""

import statistics
from pathlib import Path

from fer.core.errors import FerError
from fer.core.params import CompareParams
from fer.core.storage import atomic_path, read_json, write_json

LEADERBOARD_COLUMNS = ("accuracy", "macro_f1", "ece", "latency_ms", "params")
SPREAD_COLUMNS = ("accuracy", "macro_f1")   # their std over seeds is reported when a model has several
CHAMPION_MARK = " (champion)"


def read_evaluations(folder: str | Path) -> list[dict]:
    """Every evaluate stage's metrics file in `folder`, in name order."""
    files = sorted(Path(folder).glob("*.json"))
    return [read_json(file, "the metrics of an evaluate stage") for file in files]


def current_runs(evaluations: list[dict], models, seeds: list[int], tuned_name: str) -> list[dict]:
    """The evaluations of the pipeline as params.yaml defines it now: each of `models` once per seed, and the
    tuned model. Files left by a model or seed since removed are ignored; a missing run is an error."""
    wanted = {(model, seed) for model in models for seed in seeds}
    kept = [e for e in evaluations if (e["model"], e["seed"]) in wanted or e["model"] == tuned_name]
    missing = sorted(wanted - {(e["model"], e["seed"]) for e in kept})
    if missing:
        raise FerError(f"compare: no evaluation of {', '.join(f'{model} (seed {seed})' for model, seed in missing)}; "
                       f"run its evaluate stage (dvc repro)")
    return kept


def runs_by_model(evaluations: list[dict]) -> dict[str, list[dict]]:
    """The evaluations grouped by model name, each group in seed order; a (model, seed) pair appears once."""
    runs = [(evaluation["model"], evaluation["seed"]) for evaluation in evaluations]
    if len(set(runs)) != len(runs):
        raise FerError(f"compare: each model and seed must be evaluated once, got "
                       f"{', '.join(f'{model} (seed {seed})' for model, seed in runs)}")
    grouped: dict[str, list[dict]] = {}
    for evaluation in sorted(evaluations, key=lambda e: (e["model"], e["seed"])):
        grouped.setdefault(evaluation["model"], []).append(evaluation)
    return grouped


def _summary(runs: list[dict]) -> dict:
    """The mean of every leaderboard column over a model's runs, and the std of the spread columns (None for
    a single run)."""
    summary = {key: statistics.fmean(run[key] for run in runs) for key in LEADERBOARD_COLUMNS}
    summary["params"] = runs[0]["params"]  # the same architecture in every run
    for key in SPREAD_COLUMNS:
        summary[f"{key}_std"] = statistics.stdev(run[key] for run in runs) if len(runs) > 1 else None
    summary["seeds"] = len(runs)
    return summary


def build_leaderboard(evaluations: list[dict], params: CompareParams) -> dict:
    """{"champion", "rank_by", "models": {name: {"rank", <LEADERBOARD_COLUMNS>}}}, models in rank order, best first
    by the mean of `rank_by`; ties go to the higher accuracy, then the smaller model, then the name.

    When some model has several seeds, every row also holds `seeds` and `<column>_std` for SPREAD_COLUMNS.
    """
    if not evaluations:
        raise FerError("compare: no model evaluations to rank; run the evaluate stage for at least one model")
    summaries = {name: _summary(runs) for name, runs in runs_by_model(evaluations).items()}
    ranked = sorted(summaries, key=lambda n: (-summaries[n][params.rank_by], -summaries[n]["accuracy"],
                                              summaries[n]["params"], n))
    several = any(summary["seeds"] > 1 for summary in summaries.values())
    extra = ("seeds", *(f"{key}_std" for key in SPREAD_COLUMNS)) if several else ()
    task = _one_task(evaluations)
    return {
        "task": task,
        "champion": ranked[0],
        "rank_by": params.rank_by,
        # The same for every model: it depends on the split only.
        **({"majority_accuracy": evaluations[0]["majority_accuracy"]} if task == "attributes" else {}),
        "models": {name: {"rank": rank, **{key: summaries[name][key] for key in (*LEADERBOARD_COLUMNS, *extra)}}
                   for rank, name in enumerate(ranked, start=1)},
    }


def _one_task(evaluations: list[dict]) -> str:
    tasks = sorted({evaluation.get("task", "expression") for evaluation in evaluations})
    if len(tasks) > 1:
        raise FerError(f"compare: evaluations of several tasks ({', '.join(tasks)}); re-run the stages (dvc repro)")
    return tasks[0]


def _with_spread(row: dict, key: str) -> str:
    std = row.get(f"{key}_std")
    return f"{row[key]:.4f}" if std is None else f"{row[key]:.4f} ± {std:.4f}"


def markdown_table(leaderboard: dict) -> str:
    """The leaderboard as a GitHub markdown table, best first, the champion marked; with several seeds the
    accuracy and macro-F1 cells read `mean ± std` and a column counts the seeds."""
    several = any("seeds" in row for row in leaderboard["models"].values())
    spread = " (mean ± std over seeds)" if several else ""
    attributes = leaderboard.get("task") == "attributes"
    accuracy, f1 = ("Mean accuracy", "Mean F1") if attributes else ("Accuracy", "Macro-F1")
    lines = [
        f"Ranked by {leaderboard['rank_by']}{' (mean over seeds)' if several else ''}."
        + (f" Attributes: accuracy and F1 are means over the attributes; the majority baseline (each attribute "
           f"its more common value in the train split) has mean accuracy {leaderboard['majority_accuracy']:.4f}."
           if attributes else ""),
        "",
        f"| Rank | Model | {accuracy}{spread} | {f1}{spread} | ECE | Latency (ms) | Params (M) |"
        + (" Seeds |" if several else ""),
        "|---:|:---|---:|---:|---:|---:|---:|" + ("---:|" if several else ""),
    ]
    for name, row in leaderboard["models"].items():
        label = name + (CHAMPION_MARK if name == leaderboard["champion"] else "")
        lines.append(f"| {row['rank']} | {label} | {_with_spread(row, 'accuracy')} | {_with_spread(row, 'macro_f1')} | "
                     f"{row['ece']:.4f} | {row['latency_ms']:.3f} | {row['params'] / 1e6:.3f} |"
                     + (f" {row['seeds']} |" if several else ""))
    return "\n".join(lines) + "\n"


def bar_rows(leaderboard: dict) -> list[dict]:
    """[{"rank", "model", <rank_by>: value}] in rank order: the data of the bars_by_rank plot template."""
    metric = leaderboard["rank_by"]
    return [{"rank": row["rank"], "model": name, metric: row[metric]} for name, row in leaderboard["models"].items()]


def write_leaderboard(leaderboard: dict, json_path: str | Path, markdown_path: str | Path,
                      bars_path: str | Path) -> None:
    write_json(json_path, leaderboard)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(markdown_table(leaderboard))
    write_json(bars_path, bar_rows(leaderboard))
