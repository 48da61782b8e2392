import json
import statistics

import pytest
from conftest import PLAIN_ROW, evaluation_record

from fer.core.errors import FerError
from fer.core.params import CompareParams
from fer.core.storage import file_sha256
from fer.evaluate.champion import promote_champion
from fer.evaluate.leaderboard import (
    bar_rows,
    build_leaderboard,
    current_runs,
    mark_ties,
    markdown_table,
    write_leaderboard,
)
from fer.evaluate.provenance import recorded_sha256
from fer.evaluate.records import ChampionRecord, PredictionRow, read_champion, write_predictions, write_record

BY_ACCURACY = CompareParams(rank_by="accuracy", alpha=0.05)
BY_MACRO_F1 = CompareParams(rank_by="macro_f1", alpha=0.05)
_evaluation = evaluation_record


# Accurate on the big classes but poor on the rare ones, versus balanced but less accurate overall.
MAJORITY = _evaluation("majority", accuracy=0.80, macro_f1=0.50)
BALANCED = _evaluation("balanced", accuracy=0.70, macro_f1=0.65)
WEAK = _evaluation("weak", accuracy=0.40, macro_f1=0.30)


def test_the_ranking_metric_decides_the_champion():
    evaluations = [WEAK, MAJORITY, BALANCED]
    assert build_leaderboard(evaluations, BY_ACCURACY)["champion"] == "majority"
    by_f1 = build_leaderboard(evaluations, BY_MACRO_F1)
    assert by_f1["champion"] == "balanced" and by_f1["rank_by"] == "macro_f1"
    assert [(name, row["rank"]) for name, row in by_f1["models"].items()] == [
        ("balanced", 1),
        ("majority", 2),
        ("weak", 3),
    ]
    assert by_f1["models"]["weak"] == {
        "rank": 3,
        "accuracy": 0.40,
        "accuracy_ci_low": 0.35,
        "accuracy_ci_high": 0.45,
        "macro_f1": 0.30,
        "macro_f1_ci_low": 0.25,
        "macro_f1_ci_high": 0.35,
        "ece": 0.05,
        "latency_ms": 1.5,
        "params": 1_000_000,
    }


def test_ties_go_to_higher_accuracy_then_to_fewer_params():
    big = _evaluation("big", accuracy=0.7, macro_f1=0.6, params=2_000_000)
    small = _evaluation("small", accuracy=0.7, macro_f1=0.6, params=500_000)
    sharper = _evaluation("sharper", accuracy=0.75, macro_f1=0.6, params=9_000_000)
    ranked = build_leaderboard([big, small, sharper], BY_MACRO_F1)["models"]
    assert list(ranked) == ["sharper", "small", "big"]


def test_markdown_table_lists_every_model_and_marks_only_the_champion():
    table = markdown_table(build_leaderboard([WEAK, MAJORITY, BALANCED], BY_MACRO_F1))
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3
    assert rows[0].startswith("| 1 | balanced (champion) | 0.7000 [0.650, 0.750] | 0.6500 [0.600, 0.700] |")
    assert "majority" in rows[1] and "weak" in rows[2]
    assert table.count("(champion)") == 1
    assert "| 1.000 |" in rows[0]  # params in millions


def test_bar_rows_follow_the_rank_order_and_carry_the_ranking_metric():
    leaderboard = build_leaderboard([WEAK, MAJORITY, BALANCED], BY_ACCURACY)
    assert bar_rows(leaderboard) == [
        {"rank": 1, "model": "majority", "accuracy": 0.80},
        {"rank": 2, "model": "balanced", "accuracy": 0.70},
        {"rank": 3, "model": "weak", "accuracy": 0.40},
    ]


def test_write_leaderboard_writes_json_markdown_and_bar_data(tmp_path):
    leaderboard = build_leaderboard([WEAK, MAJORITY, BALANCED], BY_MACRO_F1)
    paths = tmp_path / "metrics" / "leaderboard.json", tmp_path / "leaderboard.md", tmp_path / "plots" / "bars.json"
    write_leaderboard(leaderboard, *paths)
    assert json.loads(paths[0].read_text()) == leaderboard
    assert paths[1].read_text() == markdown_table(leaderboard)
    assert json.loads(paths[2].read_text()) == bar_rows(leaderboard)


def test_no_evaluations_is_one_clear_error():
    with pytest.raises(FerError, match="no model evaluations to rank"):
        build_leaderboard([], BY_MACRO_F1)


def test_the_same_model_and_seed_twice_is_rejected():
    with pytest.raises(FerError, match=r"evaluated once, got weak \(seed 42\), weak \(seed 42\)"):
        build_leaderboard([WEAK, WEAK], BY_MACRO_F1)


# Three seeds each: `steady` is better on average, `lucky` has the single best run.
STEADY = [
    _evaluation("steady", accuracy=a, macro_f1=f, seed=s)
    for s, a, f in ((1, 0.70, 0.60), (2, 0.72, 0.62), (3, 0.74, 0.64))
]
LUCKY = [
    _evaluation("lucky", accuracy=a, macro_f1=f, seed=s)
    for s, a, f in ((1, 0.50, 0.40), (2, 0.80, 0.70), (3, 0.52, 0.42))
]


def test_several_seeds_rank_on_the_mean_and_report_the_std():
    leaderboard = build_leaderboard([*LUCKY, *STEADY, WEAK], BY_MACRO_F1)
    assert list(leaderboard["models"]) == ["steady", "lucky", "weak"]
    steady = leaderboard["models"]["steady"]
    assert steady["seeds"] == 3
    assert steady["macro_f1"] == pytest.approx(0.62) and steady["accuracy"] == pytest.approx(0.72)
    assert steady["macro_f1_std"] == pytest.approx(statistics.stdev([0.60, 0.62, 0.64]))
    assert steady["accuracy_std"] == pytest.approx(0.02)
    assert leaderboard["models"]["weak"] == {**leaderboard["models"]["weak"], "seeds": 1, "accuracy_std": None}

    table = markdown_table(leaderboard)
    assert "| Accuracy (mean ± std over seeds) |" in table and "| Seeds |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows[0].startswith("| 1 | steady (champion) | 0.7200 ± 0.0200 [0.670, 0.770] | 0.6200 ± 0.0200 [")
    assert rows[0].endswith(" 3 |") and "| 0.4000 [0.350, 0.450] | 0.3000 [" in rows[2] and rows[2].endswith(" 1 |")


def test_one_seed_per_model_keeps_the_plain_table():
    leaderboard = build_leaderboard([STEADY[0], LUCKY[0]], BY_MACRO_F1)
    assert all(set(row) == PLAIN_ROW for row in leaderboard["models"].values())
    assert "±" not in markdown_table(leaderboard) and "Seeds" not in markdown_table(leaderboard)


def test_the_champion_promoted_is_its_best_seed(tmp_path):
    runs = []
    for run in STEADY:
        checkpoint = tmp_path / f"steady-seed{run.seed}.pt"
        checkpoint.write_bytes(f"weights of seed {run.seed}".encode())
        runs.append(run.model_copy(update={"checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint)}))
    leaderboard = build_leaderboard(runs, BY_MACRO_F1)
    record = promote_champion(leaderboard, runs, tmp_path / "champion.pt", tmp_path / "champion.json")
    assert record.name == "steady" and record.seed == 3
    assert (tmp_path / "champion.pt").read_bytes() == b"weights of seed 3"
    assert record.test_metrics["macro_f1"] == 0.64 and record.test_metrics["macro_f1_ci_high"] == pytest.approx(0.69)
    assert read_champion(tmp_path / "champion.json") == record


def test_a_bad_champion_record_is_one_line(tmp_path):
    (tmp_path / "champion.json").write_text(json.dumps({"name": "cnn", "checkpoint_sha256": "x"}))
    with pytest.raises(
        FerError,
        match=r"^\S*champion.json: not the champion record written by the compare stage "
        r"\(arch: Field required\); re-run the pipeline \(dvc repro\)$",
    ):
        read_champion(tmp_path / "champion.json")


def _predictions_file(path, correct: list[bool]) -> str:
    rows = [
        PredictionRow(
            image=i,
            actual="a",
            predicted="a" if right else "b",
            correct=right,
            p_true=0.9 if right else 0.1,
            confidence=0.9,
        )
        for i, right in enumerate(correct)
    ]
    write_predictions(path, rows)
    return str(path)


def test_models_the_champion_does_not_beat_on_the_same_images_are_tied(tmp_path):
    """McNemar on 400 images: 20 discordant images split 14:6 is noise (p=0.12); 40 split 34:6 is not."""
    champion = [True] * 240 + [False] * 160
    close = [True] * 226 + [False] * 14 + [True] * 6 + [False] * 154  # 232 right: 8 fewer
    far = [True] * 206 + [False] * 34 + [True] * 6 + [False] * 154  # 212 right: 28 fewer
    runs = [
        _evaluation(
            name,
            accuracy=sum(c) / 400,
            macro_f1=sum(c) / 400,
            predictions=_predictions_file(tmp_path / f"{name}.json", c),
        )
        for name, c in (("champ", champion), ("close", close), ("far", far))
    ]
    board = mark_ties(build_leaderboard(runs, BY_ACCURACY), runs, BY_ACCURACY.alpha)
    assert board["champion"] == "champ" and "tied_with_champion" not in board["models"]["champ"]
    assert board["models"]["close"]["tied_with_champion"] is True
    assert board["models"]["close"]["vs_champion_p"] == pytest.approx(0.115, abs=1e-4)
    assert board["models"]["far"]["tied_with_champion"] is False and board["models"]["far"]["vs_champion_p"] < 1e-4
    rows = [line for line in markdown_table(board).splitlines() if line.startswith("| ") and "|---" not in line][1:]
    assert rows[1].startswith("| =1 | close |") and "| tied (p=0.12) |" in rows[1]
    assert rows[2].startswith("| 3 | far |") and "| worse (p=" in rows[2]


def test_a_tie_needs_the_same_test_images(tmp_path):
    runs = [
        _evaluation("champ", 0.6, 0.6, predictions=_predictions_file(tmp_path / "a.json", [True, False])),
        _evaluation("other", 0.5, 0.5, predictions=_predictions_file(tmp_path / "b.json", [True])),
    ]
    with pytest.raises(FerError, match="not about the same test images"):
        mark_ties(build_leaderboard(runs, BY_ACCURACY), runs, 0.05)


def test_only_the_current_models_and_seeds_are_ranked_and_a_missing_run_is_named():
    tuned = _evaluation("tuned", accuracy=0.9, macro_f1=0.9)
    left_over = [*STEADY, *LUCKY, tuned]  # files of seeds 2 and 3 and of `lucky` stay after they are dropped
    current = current_runs(left_over, models={"steady": {}}, seeds=[1], tuned_name="tuned")
    assert current == [STEADY[0], tuned]
    missing = r"^compare: no evaluation of steady \(seed 4\), weak \(seed 1\), weak \(seed 4\); run"
    with pytest.raises(FerError, match=missing):
        current_runs(left_over, models={"steady": {}, "weak": {}}, seeds=[1, 4], tuned_name="tuned")


def test_the_recorded_hash_comes_from_the_record_naming_the_file_and_only_that_one_must_be_valid(tmp_path):
    folder = tmp_path / "evaluate"
    folder.mkdir()
    (folder / "old.json").write_text(json.dumps({"checkpoint": str(tmp_path / "other.pt"), "checkpoint_sha256": "x"}))
    write_record(
        folder / "cnn.json", _evaluation("cnn", 0.5, 0.4, checkpoint=str(tmp_path / "cnn.pt"), sha256="a" * 64)
    )
    assert recorded_sha256(tmp_path / "cnn.pt", None, folder) == "a" * 64
    assert recorded_sha256(tmp_path / "unknown.pt", None, folder) is None
    champion = ChampionRecord(
        name="cnn",
        arch="cnn",
        seed=42,
        checkpoint=str(tmp_path / "champion.pt"),
        sha256="b" * 64,
        promoted_from="cnn.pt",
        rank_by="macro_f1",
        test_metrics={},
    )
    assert recorded_sha256(tmp_path / "champion.pt", champion, folder) == "b" * 64
    with pytest.raises(FerError, match=r"old.json: not the metrics of an evaluate stage \(model: Field required\)"):
        recorded_sha256(tmp_path / "other.pt", None, folder)
