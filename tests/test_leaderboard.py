import json

import pytest

from fer.core.errors import FerError
from fer.core.params import CompareParams
from fer.evaluate.leaderboard import bar_rows, build_leaderboard, markdown_table, write_leaderboard

BY_ACCURACY = CompareParams(rank_by="accuracy")
BY_MACRO_F1 = CompareParams(rank_by="macro_f1")


def _evaluation(name: str, accuracy: float, macro_f1: float, params: int = 1_000_000) -> dict:
    return {"model": name, "arch": "cnn", "accuracy": accuracy, "macro_f1": macro_f1, "ece": 0.05,
            "latency_ms": 1.5, "params": params, "size_bytes": 4 * params, "per_class": {}}


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
        ("balanced", 1), ("majority", 2), ("weak", 3)]
    assert by_f1["models"]["weak"] == {"rank": 3, "accuracy": 0.40, "macro_f1": 0.30, "ece": 0.05,
                                       "latency_ms": 1.5, "params": 1_000_000}


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
    assert rows[0].startswith("| 1 | balanced (champion) | 0.7000 | 0.6500 |")
    assert "majority" in rows[1] and "weak" in rows[2]
    assert table.count("(champion)") == 1
    assert "| 1.000 |" in rows[0]  # params in millions


def test_bar_rows_follow_the_rank_order_and_carry_the_ranking_metric():
    leaderboard = build_leaderboard([WEAK, MAJORITY, BALANCED], BY_ACCURACY)
    assert bar_rows(leaderboard) == [{"rank": 1, "model": "majority", "accuracy": 0.80},
                                     {"rank": 2, "model": "balanced", "accuracy": 0.70},
                                     {"rank": 3, "model": "weak", "accuracy": 0.40}]


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


def test_duplicate_model_names_are_rejected():
    with pytest.raises(FerError, match="unique"):
        build_leaderboard([WEAK, WEAK], BY_MACRO_F1)
