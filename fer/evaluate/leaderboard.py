"""Rank the evaluated models and report the ranking as JSON, a markdown table and bar-plot data for DVC."""

from pathlib import Path

from fer.core.errors import FerError
from fer.core.params import CompareParams
from fer.core.storage import atomic_path, read_json, write_json

LEADERBOARD_COLUMNS = ("accuracy", "macro_f1", "ece", "latency_ms", "params")
CHAMPION_MARK = " (champion)"


def read_evaluations(folder: str | Path) -> list[dict]:
    """Every evaluate stage's metrics file in `folder`, in name order."""
    files = sorted(Path(folder).glob("*.json"))
    return [read_json(file, "the metrics of an evaluate stage") for file in files]


def rank_evaluations(evaluations: list[dict], rank_by: str) -> list[dict]:
    """Best first by `rank_by`; ties go to the higher accuracy, then the smaller model, then the name."""
    if not evaluations:
        raise FerError("compare: no model evaluations to rank; run the evaluate stage for at least one model")
    names = [evaluation["model"] for evaluation in evaluations]
    if len(set(names)) != len(names):
        raise FerError(f"compare: model names must be unique, got {', '.join(names)}")
    # The name makes the order independent of the order the evaluations were read in.
    return sorted(evaluations, key=lambda e: (-e[rank_by], -e["accuracy"], e["params"], e["model"]))


def build_leaderboard(evaluations: list[dict], params: CompareParams) -> dict:
    """{"champion", "rank_by", "models": {name: {"rank", <LEADERBOARD_COLUMNS>}}}, models in rank order."""
    ranked = rank_evaluations(evaluations, params.rank_by)
    return {
        "champion": ranked[0]["model"],
        "rank_by": params.rank_by,
        "models": {evaluation["model"]: {"rank": rank, **{key: evaluation[key] for key in LEADERBOARD_COLUMNS}}
                   for rank, evaluation in enumerate(ranked, start=1)},
    }


def markdown_table(leaderboard: dict) -> str:
    """The leaderboard as a GitHub markdown table, best first, the champion marked."""
    lines = [
        f"Ranked by {leaderboard['rank_by']}.",
        "",
        "| Rank | Model | Accuracy | Macro-F1 | ECE | Latency (ms) | Params (M) |",
        "|---:|:---|---:|---:|---:|---:|---:|",
    ]
    for name, row in leaderboard["models"].items():
        label = name + (CHAMPION_MARK if name == leaderboard["champion"] else "")
        lines.append(f"| {row['rank']} | {label} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
                     f"{row['ece']:.4f} | {row['latency_ms']:.3f} | {row['params'] / 1e6:.3f} |")
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
