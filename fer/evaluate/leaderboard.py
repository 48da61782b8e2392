"""Rank the evaluated models and report the ranking as JSON, a markdown table and bar-plot data for DVC.

A model trained with several seeds has one evaluation per seed: its row holds the mean of every column over
them (the interval bounds too), with the sample standard deviation of accuracy and macro-F1 beside, and it is
ranked on the mean. Every row shows the 95% bootstrap intervals, and the models the champion does not beat on
the same test images (fer.evaluate.significance) are marked as tied with it.
For the attributes task accuracy and macro-F1 are means over the attributes, and the leaderboard states the
majority baseline (every attribute its more common value) they must beat.
"""

import statistics
from pathlib import Path

from fer.core.errors import FerError
from fer.core.params import CompareParams
from fer.core.storage import atomic_path, write_json
from fer.core.tasks import HEADS
from fer.evaluate.records import Evaluation, read_evaluation, read_predictions
from fer.evaluate.significance import mcnemar, paired_correctness

LEADERBOARD_COLUMNS = (
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1",
    "macro_f1_ci_low",
    "macro_f1_ci_high",
    "ece",
    "latency_ms",
    "params",
)
SPREAD_COLUMNS = ("accuracy", "macro_f1")  # their std over seeds is reported when a model has several
CHAMPION_MARK = " (champion)"


def read_evaluations(folder: str | Path) -> list[Evaluation]:
    """Every evaluate stage's metrics file in `folder`, in name order."""
    return [read_evaluation(file) for file in sorted(Path(folder).glob("*.json"))]


def current_runs(evaluations: list[Evaluation], models, seeds: list[int], tuned_name: str) -> list[Evaluation]:
    """The evaluations of the pipeline as params.yaml defines it now: each of `models` once per seed, and the
    tuned model. Files left by a model or seed since removed are ignored; a missing run is an error."""
    wanted = {(model, seed) for model in models for seed in seeds}
    kept = [e for e in evaluations if (e.model, e.seed) in wanted or e.model == tuned_name]
    missing = sorted(wanted - {(e.model, e.seed) for e in kept})
    if missing:
        raise FerError(
            f"compare: no evaluation of {', '.join(f'{model} (seed {seed})' for model, seed in missing)}; "
            f"run its evaluate stage (dvc repro)"
        )
    return kept


def runs_by_model(evaluations: list[Evaluation]) -> dict[str, list[Evaluation]]:
    """The evaluations grouped by model name, each group in seed order; a (model, seed) pair appears once."""
    runs = [(evaluation.model, evaluation.seed) for evaluation in evaluations]
    if len(set(runs)) != len(runs):
        raise FerError(
            f"compare: each model and seed must be evaluated once, got "
            f"{', '.join(f'{model} (seed {seed})' for model, seed in runs)}"
        )
    grouped: dict[str, list[Evaluation]] = {}
    for evaluation in sorted(evaluations, key=lambda e: (e.model, e.seed)):
        grouped.setdefault(evaluation.model, []).append(evaluation)
    return grouped


def best_run(runs: list[Evaluation], rank_by: str) -> Evaluation:
    """A model's run that stands for it (promoted, paired against the champion): its best seed by rank_by;
    ties go to the higher accuracy, then the lower seed."""
    return min(runs, key=lambda e: (-getattr(e, rank_by), -e.accuracy, e.seed))


def _summary(runs: list[Evaluation]) -> dict:
    """The mean of every leaderboard column over a model's runs, and the std of the spread columns (None for
    a single run)."""
    summary = {key: statistics.fmean(getattr(run, key) for run in runs) for key in LEADERBOARD_COLUMNS}
    summary["params"] = runs[0].params  # the same architecture in every run
    for key in SPREAD_COLUMNS:
        summary[f"{key}_std"] = statistics.stdev(getattr(run, key) for run in runs) if len(runs) > 1 else None
    summary["seeds"] = len(runs)
    return summary


def build_leaderboard(evaluations: list[Evaluation], params: CompareParams) -> dict:
    """{"champion", "rank_by", "models": {name: {"rank", <LEADERBOARD_COLUMNS>}}}, models in rank order, best first
    by the mean of `rank_by`; ties go to the higher accuracy, then the smaller model, then the name.

    When some model has several seeds, every row also holds `seeds` and `<column>_std` for SPREAD_COLUMNS.
    """
    if not evaluations:
        raise FerError("compare: no model evaluations to rank; run the evaluate stage for at least one model")
    summaries = {name: _summary(runs) for name, runs in runs_by_model(evaluations).items()}
    ranked = sorted(
        summaries, key=lambda n: (-summaries[n][params.rank_by], -summaries[n]["accuracy"], summaries[n]["params"], n)
    )
    several = any(summary["seeds"] > 1 for summary in summaries.values())
    extra = ("seeds", *(f"{key}_std" for key in SPREAD_COLUMNS)) if several else ()
    task = _one_task(evaluations)
    return {
        "task": task,
        "champion": ranked[0],
        "rank_by": params.rank_by,
        # The same for every model: they depend on the split only.
        **{key: getattr(evaluations[0], key) for key in HEADS[task].baselines},
        "models": {
            name: {"rank": rank, **{key: summaries[name][key] for key in (*LEADERBOARD_COLUMNS, *extra)}}
            for rank, name in enumerate(ranked, start=1)
        },
    }


def mark_ties(leaderboard: dict, evaluations: list[Evaluation], alpha: float) -> dict:
    """The leaderboard with, on every other model's row, `vs_champion_p` (exact McNemar p-value of its best run
    against the champion's, on the same test images) and `tied_with_champion` (p >= alpha: the champion does not
    beat it beyond noise)."""
    rank_by = leaderboard["rank_by"]
    runs = {name: best_run(model_runs, rank_by) for name, model_runs in runs_by_model(evaluations).items()}
    champion = runs[leaderboard["champion"]]
    champion_rows = read_predictions(champion.predictions)
    models = {}
    for name, row in leaderboard["models"].items():
        if name != leaderboard["champion"]:
            correct = paired_correctness(
                champion_rows,
                read_predictions(runs[name].predictions),
                f"{champion.predictions} and {runs[name].predictions}",
            )
            paired = mcnemar(*correct)
            row = {**row, "vs_champion_p": paired.reported_p, "tied_with_champion": not paired.beyond_noise(alpha)}
        models[name] = row
    return {**leaderboard, "alpha": alpha, "models": models}


def _one_task(evaluations: list[Evaluation]) -> str:
    tasks = sorted({evaluation.task for evaluation in evaluations})
    if len(tasks) > 1:
        raise FerError(f"compare: evaluations of several tasks ({', '.join(tasks)}); re-run the stages (dvc repro)")
    return tasks[0]


def _with_spread(row: dict, key: str) -> str:
    """mean [interval], or mean ± seed std [interval] with several seeds."""
    std = row.get(f"{key}_std")
    value = f"{row[key]:.4f}" if std is None else f"{row[key]:.4f} ± {std:.4f}"
    return f"{value} [{row[f'{key}_ci_low']:.3f}, {row[f'{key}_ci_high']:.3f}]"


def _versus_champion(row: dict) -> str:
    if "vs_champion_p" not in row:
        return "—"
    return f"{'tied' if row['tied_with_champion'] else 'worse'} (p={row['vs_champion_p']:.2g})"


def markdown_table(leaderboard: dict) -> str:
    """The leaderboard as a GitHub markdown table, best first, the champion marked; accuracy and macro-F1 cells
    read `value [95% interval]` (`mean ± std [interval]` with several seeds, and a column counts the seeds). With
    the ties marked (mark_ties), the models the champion does not beat share its rank, "=1"."""
    rows = leaderboard["models"]
    several = any("seeds" in row for row in rows.values())
    paired = "alpha" in leaderboard
    spread = " (mean ± std over seeds)" if several else ""
    head = HEADS[leaderboard["task"]]
    accuracy, f1 = head.score_titles
    note = head.leaderboard_note(leaderboard)
    lines = [
        f"Ranked by {leaderboard['rank_by']}{' (mean over seeds)' if several else ''}; [95% bootstrap interval over "
        "the test images]"
        + (
            f"; vs champion: exact McNemar test of its best run against the champion's on the same test images, "
            f"tied when p ≥ {leaderboard['alpha']}"
            if paired
            else ""
        )
        + "."
        + (f" {note}" if note else ""),
        "",
        f"| Rank | Model | {accuracy}{spread} | {f1}{spread} |"
        + (" vs champion |" if paired else "")
        + " ECE | Latency (ms) | Params (M) |"
        + (" Seeds |" if several else ""),
        "|---:|:---|---:|---:|" + (":---|" if paired else "") + "---:|---:|---:|" + ("---:|" if several else ""),
    ]
    for name, row in rows.items():
        label = name + (CHAMPION_MARK if name == leaderboard["champion"] else "")
        rank = "=1" if row.get("tied_with_champion") else str(row["rank"])
        lines.append(
            f"| {rank} | {label} | {_with_spread(row, 'accuracy')} | {_with_spread(row, 'macro_f1')} |"
            + (f" {_versus_champion(row)} |" if paired else "")
            + f" {row['ece']:.4f} | {row['latency_ms']:.3f} | {row['params'] / 1e6:.3f} |"
            + (f" {row['seeds']} |" if several else "")
        )
    return "\n".join(lines) + "\n"


def bar_rows(leaderboard: dict) -> list[dict]:
    """[{"rank", "model", <rank_by>: value}] in rank order: the data of the bars_by_rank plot template."""
    metric = leaderboard["rank_by"]
    return [{"rank": row["rank"], "model": name, metric: row[metric]} for name, row in leaderboard["models"].items()]


def write_leaderboard(
    leaderboard: dict, json_path: str | Path, markdown_path: str | Path, bars_path: str | Path
) -> None:
    write_json(json_path, leaderboard)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(markdown_table(leaderboard))
    write_json(bars_path, bar_rows(leaderboard))
