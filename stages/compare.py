"""Stage compare: rank every evaluated model, write the leaderboard and promote the champion."""

import argparse
import json
import shutil
from pathlib import Path

from fer.atomic import atomic_path
from fer.errors import one_line_errors
from fer.leaderboard import build_leaderboard, write_leaderboard
from fer.params import load_params


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--evaluations", required=True, help="folder of evaluate metrics JSON files")
    cli.add_argument("--leaderboard", required=True)
    cli.add_argument("--markdown", required=True)
    cli.add_argument("--bars", required=True)
    cli.add_argument("--champion", required=True, help="where the champion's checkpoint is copied")
    args = cli.parse_args()

    evaluations = [json.loads(p.read_text()) for p in sorted(Path(args.evaluations).glob("*.json"))]
    leaderboard = build_leaderboard(evaluations, load_params().compare)
    champion = next(e for e in evaluations if e["model"] == leaderboard["champion"])
    with atomic_path(args.champion) as tmp:
        shutil.copyfile(champion["checkpoint"], tmp)
    write_leaderboard(leaderboard, args.leaderboard, args.markdown, args.bars)


if __name__ == "__main__":
    main()
