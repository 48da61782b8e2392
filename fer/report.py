"""The pull-request report: params and metric changes per model, the leaderboard and the plots, in markdown.

Built from DVC's own JSON (`dvc params diff --json`, `dvc metrics diff --json`), so it shows exactly what
`dvc` itself would, and is testable offline on any two git revisions.
"""

import json
import subprocess
from pathlib import Path

from fer.errors import FerError

EVALUATIONS = "metrics/evaluate/"
HEADLINE_METRICS = ("accuracy", "macro_f1")


def dvc_json(*args: str, cwd: str | Path = ".") -> dict:
    result = subprocess.run(["dvc", *args, "--json"], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FerError(f"dvc {' '.join(args)} failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(result.stdout or "{}")


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _delta(change: dict) -> str:
    diff = change.get("diff")
    return "" if diff is None else f"{diff:+.4g}" if isinstance(diff, (int, float)) else str(diff)


def params_section(params_diff: dict) -> str:
    rows = [(key, change) for changes in params_diff.values() for key, change in sorted(changes.items())]
    if not rows:
        return "### Params\n\nNo params changed.\n"
    lines = ["### Params", "", "| param | old | new |", "|---|---:|---:|"]
    lines += [f"| `{key}` | {_number(c.get('old'))} | {_number(c.get('new'))} |" for key, c in rows]
    return "\n".join(lines) + "\n"


def model_metrics_section(metrics_diff: dict) -> str:
    """Accuracy and macro-F1 per model (one metrics file per model under metrics/evaluate/)."""
    rows = []
    for path, changes in sorted(metrics_diff.items()):
        if not path.startswith(EVALUATIONS):
            continue
        model = Path(path).stem
        for metric in HEADLINE_METRICS:
            if metric in changes:
                c = changes[metric]
                rows.append(f"| {model} | {metric} | {_number(c.get('old'))} | {_number(c.get('new'))} | {_delta(c)} |")
    if not rows:
        return "### Metrics per model\n\nNo accuracy or macro-F1 changed.\n"
    header = ["### Metrics per model", "", "| model | metric | old | new | change |", "|---|---|---:|---:|---:|"]
    return "\n".join(header + rows) + "\n"


def build_report(base_rev: str, repo: str | Path = ".", leaderboard: str = "leaderboard.md",
                 plot_images: list[str] = ()) -> str:
    """Markdown comparing the workspace with base_rev; plot_images are links (e.g. uploaded by CML)."""
    repo = Path(repo)
    parts = [
        f"## fer: results against `{base_rev}`",
        params_section(dvc_json("params", "diff", base_rev, cwd=repo)),
        model_metrics_section(dvc_json("metrics", "diff", base_rev, cwd=repo)),
    ]
    board = repo / leaderboard
    if board.is_file():
        parts.append("### Leaderboard\n\n" + board.read_text())
    if plot_images:
        parts.append("### Plots\n\n" + "\n".join(f"![{Path(p).stem}]({p})" for p in plot_images) + "\n")
    return "\n".join(parts)
