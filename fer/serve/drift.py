"""Have the served inputs drifted from the training data? A two-sample KS test per input statistic."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from fer.core.errors import FerError
from fer.core.storage import atomic_path
from fer.data.datasets import load_split
from fer.data.image_stats import DETECTION_STATS, IMAGE_STATS, image_stats
from fer.data.rawdata import TRAIN
from fer.serve.prediction_log import read_log


def _histogram_spec(stat: str, logged: np.ndarray, reference: np.ndarray) -> dict:
    values = [{"source": "training split", stat: float(v)} for v in reference]
    values += [{"source": "served", stat: float(v)} for v in logged]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"{stat}: served inputs against the training split",
        "data": {"values": values},
        "transform": [
            {"bin": {"maxbins": 30}, "field": stat, "as": ["bin_start", "bin_end"]},
            {"aggregate": [{"op": "count", "as": "n"}], "groupby": ["source", "bin_start", "bin_end"]},
            {"joinaggregate": [{"op": "sum", "field": "n", "as": "total"}], "groupby": ["source"]},
            {"calculate": "datum.n / datum.total", "as": "share"},
        ],
        "mark": {"type": "bar", "opacity": 0.6},
        "encoding": {
            "x": {"field": "bin_start", "bin": {"binned": True}, "title": stat},
            "x2": {"field": "bin_end"},
            "y": {"field": "share", "type": "quantitative", "stack": None, "title": "share of faces"},
            "color": {"field": "source", "type": "nominal"},
        },
        "width": 400,
        "height": 200,
    }


def drift_report(log_path: str | Path, split_dir: str | Path, out_dir: str | Path, alpha: float = 0.01) -> dict:
    """drift.json, drift.md and one histogram PNG per image statistic in out_dir; returns the JSON.

    Only those files are (re)written: out_dir may be a folder holding other files (plots/, outputs/)."""
    import vl_convert

    if not 0 < alpha < 1:  # also refuses NaN
        raise FerError(f"--alpha: {alpha}; expected a p-value threshold between 0 and 1 (e.g. 0.01)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FerError(f"--out: {out_dir} is a file; expected a folder for drift.json, drift.md and the plots")
    if not Path(log_path).is_file():
        raise FerError(f"{log_path}: no prediction log; serve some predictions first (fer serve)")
    logged = read_log(log_path)
    if logged.empty:
        raise FerError(f"{log_path}: no predictions logged yet")
    unusable = [
        stat
        for stat in (*IMAGE_STATS, *DETECTION_STATS)
        if not pd.api.types.is_numeric_dtype(logged[stat]) or logged[stat].isna().any()
    ]
    if unusable:
        raise FerError(
            f"{log_path}: column {unusable[0]} holds text or NULL values; expected the numbers "
            "fer serve logs (was the log written by another program?)"
        )
    train_faces, _ = load_split(split_dir, TRAIN)
    reference = image_stats(train_faces)
    tests = {}
    for stat in IMAGE_STATS:
        result = ks_2samp(logged[stat].to_numpy(), reference[stat])
        tests[stat] = {
            "ks_statistic": round(float(result.statistic), 4),
            "p_value": float(f"{result.pvalue:.4g}"),
            "drifted": bool(result.pvalue < alpha),
            "served_median": round(float(logged[stat].median()), 4),
            "training_median": round(float(np.median(reference[stat])), 4),
        }
    report = {
        "served_faces": len(logged),
        "training_faces": len(train_faces),
        "alpha": alpha,
        "drifted": [stat for stat, t in tests.items() if t["drifted"]],
        "ks_tests": tests,
        # The training split holds aligned crops only, so these have no reference to test against.
        "served_only": {
            stat: {
                "median": round(float(logged[stat].median()), 4),
                "min": round(float(logged[stat].min()), 4),
                "max": round(float(logged[stat].max()), 4),
            }
            for stat in DETECTION_STATS
        },
    }
    lines = [
        f"# Input drift: {len(logged)} served faces against {len(train_faces)} training faces",
        "",
        f"KS test per statistic, drift when p < {alpha}.",
        "",
        "| statistic | KS | p | served median | training median | drift |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {stat} | {t['ks_statistic']} | {t['p_value']:.3g} | {t['served_median']} | {t['training_median']} "
        f"| {'**yes**' if t['drifted'] else 'no'} |"
        for stat, t in tests.items()
    ]
    lines += ["", *(f"![{stat}]({stat}.png)" for stat in IMAGE_STATS)]
    files = {
        "drift.json": (json.dumps(report, indent=2) + "\n").encode(),
        "drift.md": ("\n".join(lines) + "\n").encode(),
    }
    for stat in IMAGE_STATS:
        spec = _histogram_spec(stat, logged[stat].to_numpy(), reference[stat])
        files[f"{stat}.png"] = vl_convert.vegalite_to_png(spec, scale=1.5)
    for name, content in files.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(content)
    return report
