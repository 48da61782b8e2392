"""The pull-request report: params and metric changes per model, the leaderboard and the plots, in markdown.

Built from DVC's own JSON (`dvc params diff --json`, `dvc metrics diff --json`), so it shows exactly what
`dvc` itself would, and is testable offline on any two git revisions.
"""

import json
import shutil
from fnmatch import fnmatch
from pathlib import Path

from fer.core.paths import PATHS
from fer.core.storage import atomic_path
from fer.tools.dvc_cli import run_dvc

HEADLINE_METRICS = ("accuracy", "macro_f1")
# What a reviewer looks at first; `dvc plots diff` has every curve.
DEFAULT_PLOTS = (PATHS.leaderboard_bars.as_posix(), (PATHS.tune_plots / "history.json").as_posix(),
                 f"{PATHS.confusion_normalized.as_posix()}/*")


def dvc_json(*args: str, cwd: str | Path = ".") -> dict:
    return json.loads(run_dvc(*args, "--json", cwd=cwd) or "{}")


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
        if not path.startswith(f"{PATHS.evaluations.as_posix()}/"):
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


def render_plots(base_rev: str, out_dir: str | Path, patterns=DEFAULT_PLOTS, repo: str | Path = ".") -> list[Path]:
    """PNG files of the DVC plots whose id matches a pattern, as `dvc plots diff` draws them.

    Vega-Lite plots get one PNG with base_rev and the workspace side by side (rendered offline by vl-convert);
    image plots get one PNG per revision.
    """
    import vl_convert

    out_dir = Path(out_dir)
    written = []
    for plot_id, renders in dvc_json("plots", "diff", base_rev, cwd=repo).get("data", {}).items():
        if not any(fnmatch(plot_id, pattern) for pattern in patterns):
            continue
        stem = "_".join(Path(plot_id).with_suffix("").parts)
        for render in renders:
            if render["type"] == "vega":
                target = out_dir / f"{stem}.png"
                with atomic_path(target) as tmp:
                    tmp.write_bytes(vl_convert.vegalite_to_png(render["content"], scale=1.5))
            else:
                target = out_dir / f"{stem}_{render['revisions'][0]}.png"
                with atomic_path(target) as tmp:
                    shutil.copyfile(render["url"], tmp)
            written.append(target)
    return written


def build_report(base_rev: str, repo: str | Path = ".", leaderboard: str | Path = PATHS.leaderboard_markdown,
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
