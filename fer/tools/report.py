"""The pull-request report: a one-line summary, params changed, and per model the old and new test accuracy with
a verdict (changed, or within noise: fer.evaluate.review), the leaderboard and the plots, in markdown.

Params come from DVC's own JSON (`dvc params diff --json`); the base revision's evaluations and per-image
predictions from git (they are git-tracked), so the report is testable offline on any two git revisions.
"""

import json
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import yaml

from fer.core.paths import PATHS
from fer.core.storage import atomic_path, read_json
from fer.evaluate.records import parse_predictions, read_evaluation, read_predictions
from fer.evaluate.review import CHANGED, Verdict, judge
from fer.tools.dvc_cli import run_dvc

# What a reviewer looks at first; `dvc plots diff` has every curve.
DEFAULT_PLOTS = (
    PATHS.leaderboard_bars.as_posix(),
    (PATHS.tune_plots / "history.json").as_posix(),
    f"{PATHS.confusion_normalized.as_posix()}/*",
    f"{PATHS.gallery.as_posix()}/*",
)
CODE = ("fer", "stages", "dvc.yaml", "pyproject.toml")  # what a run executes, besides params and data


def dvc_json(*args: str, cwd: str | Path = ".") -> dict:
    return json.loads(run_dvc(*args, "--json", cwd=cwd) or "{}")


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def params_section(params_diff: dict) -> str:
    rows = [(key, change) for changes in params_diff.values() for key, change in sorted(changes.items())]
    if not rows:
        return "### Params\n\nNo params changed.\n"
    lines = ["### Params", "", "| param | old | new |", "|---|---:|---:|"]
    lines += [f"| `{key}` | {_number(c.get('old'))} | {_number(c.get('new'))} |" for key, c in rows]
    return "\n".join(lines) + "\n"


def _at_revision(rev: str, path: str | Path, repo: Path) -> str | None:
    """The text of a git-tracked file at rev; None where it did not exist."""
    done = subprocess.run(["git", "show", f"{rev}:{Path(path).as_posix()}"], cwd=repo, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def model_verdicts(base_rev: str, repo: Path, alpha: float) -> list[Verdict]:
    """A verdict per evaluation in the workspace against the same-named one at base_rev."""
    board_file = repo / PATHS.leaderboard
    board = read_json(board_file, "the compare stage's leaderboard") if board_file.is_file() else {"models": {}}
    verdicts = []
    for file in sorted((repo / PATHS.evaluations).glob("*.json")):
        new = read_evaluation(file)
        old_text = _at_revision(base_rev, file.relative_to(repo), repo)
        rows_path = PATHS.predictions / file.name
        old_rows = _at_revision(base_rev, rows_path, repo)
        verdicts.append(
            judge(
                file.stem,
                None if old_text is None else json.loads(old_text),
                None if old_rows is None else parse_predictions(old_rows, f"{base_rev}:{rows_path}"),
                new,
                read_predictions(repo / new.predictions),
                alpha,
                board["models"].get(new.model, {}).get("accuracy_std"),
            )
        )
    return verdicts


def _split_hash(dvc_lock: str | None) -> str | None:
    outs = (yaml.safe_load(dvc_lock or "{}") or {}).get("stages", {}).get("split", {}).get("outs", [])
    return outs[0].get("md5") if outs else None


def changed_inputs(base_rev: str, repo: Path, params_diff: dict) -> list[str]:
    """What differs from base_rev in what the pipeline runs on: params, code, data (the split's hash)."""
    keys = sorted(key for changes in params_diff.values() for key in changes)
    code = subprocess.run(
        ["git", "diff", "--name-only", base_rev, "--", *CODE], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    lock = repo / "dvc.lock"
    data = _split_hash(_at_revision(base_rev, "dvc.lock", repo)) != _split_hash(
        lock.read_text() if lock.is_file() else None
    )
    return (
        ([f"params changed: {', '.join(keys)}"] if keys else [])
        + ([f"code changed: {len(code)} file{'s' * (len(code) != 1)}"] if code else [])
        + (["data changed (the split's hash)"] if data else [])
    )


def summary_line(inputs: list[str], verdicts: list[Verdict]) -> str:
    """The first line: what changed in the inputs, how many models changed beyond noise, and by how much."""
    changed = [v for v in verdicts if v.verdict == CHANGED]
    moved = [v for v in verdicts if v.change]
    line = "; ".join(inputs) or "no params, code or data changed"
    line += f"; {len(changed)} of {len(verdicts)} models changed beyond noise"
    line += (": " + ", ".join(f"{v.run} {v.change * 100:+.1f} pts" for v in changed)) if changed else ""
    if not inputs and moved:
        line += (
            f"; {len(moved)} moved: the run differs only in where it ran (CPU kernels pick code paths by "
            "instruction set, see docs/noise.md)"
        )
        if changed:  # the paired test holds the test images fixed, not the training run
            line += (
                "; with nothing changed, a change beyond noise is between-run variance, as another seed "
                "would give: add seeds to measure it"
            )
    if any(v.evidence.startswith("unpaired") for v in verdicts):
        line += "; the base revision has no per-image predictions, so verdicts come from intervals"
    return f"**{line}**\n"


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}"


def verdicts_section(verdicts: list[Verdict]) -> str:
    """Per model: old and new test accuracy, the change in points and the verdict with its evidence."""
    if not verdicts:
        return "### Test accuracy per model\n\nNo evaluations in the workspace.\n"
    lines = [
        "### Test accuracy per model",
        "",
        "| model | old | new | change (pts) | verdict | evidence |",
        "|---|---:|---:|---:|---|---|",
    ]
    for v in verdicts:
        seeds = (
            ""
            if v.beyond_seeds is None
            else (f"; {'beyond' if v.beyond_seeds else 'within'} 2 seed std ({v.seed_std * 100:.1f} pts)")
        )
        lines.append(
            f"| {v.run} | {_number(v.old)} | {_number(v.new)} | {_points(v.change)} | {v.verdict} | "
            f"{v.evidence}{seeds} |"
        )
    return "\n".join(lines) + "\n"


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


def build_report(
    base_rev: str,
    alpha: float,
    repo: str | Path = ".",
    leaderboard: str | Path = PATHS.leaderboard_markdown,
    plot_images: list[str] = (),
) -> str:
    """Markdown comparing the workspace with base_rev; alpha: the paired tests' significance level
    (compare.alpha); plot_images are links (e.g. uploaded by CML)."""
    repo = Path(repo)
    params_diff = dvc_json("params", "diff", base_rev, cwd=repo)
    verdicts = model_verdicts(base_rev, repo, alpha)
    parts = [
        f"## fer: results against `{base_rev}`",
        summary_line(changed_inputs(base_rev, repo, params_diff), verdicts),
        params_section(params_diff),
        verdicts_section(verdicts),
    ]
    board = repo / leaderboard
    if board.is_file():
        parts.append("### Leaderboard\n\n" + board.read_text())
    if plot_images:
        parts.append("### Plots\n\n" + "\n".join(f"![{Path(p).stem}]({p})" for p in plot_images) + "\n")
    return "\n".join(parts)
