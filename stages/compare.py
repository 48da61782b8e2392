"""Stage compare: rank every evaluated model, write the leaderboard and promote the champion."""

import argparse

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.evaluate.champion import champion_run, promote_champion
from fer.evaluate.gallery import draw_gallery
from fer.evaluate.leaderboard import build_leaderboard, current_runs, mark_ties, read_evaluations, write_leaderboard


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--evaluations", required=True, help="folder of evaluate metrics JSON files")
    cli.add_argument("--tuned", required=True, help="the tuned model's name on the leaderboard")
    cli.add_argument("--leaderboard", required=True)
    cli.add_argument("--markdown", required=True)
    cli.add_argument("--bars", required=True)
    cli.add_argument("--champion", required=True, help="where the champion's checkpoint is copied")
    cli.add_argument("--champion-record", required=True, help="the champion's name, hash and test metrics")
    cli.add_argument("--split", required=True, help="the split whose test images the gallery shows")
    cli.add_argument("--errors", required=True, help="PNG: the champion's most confidently wrong test images")
    cli.add_argument("--activations", required=True, help="PNG: the champion's class-activation maps per class")
    args = cli.parse_args()

    params = load_params()
    evaluations = current_runs(read_evaluations(args.evaluations), params.models, params.seeds, args.tuned)
    leaderboard = mark_ties(build_leaderboard(evaluations, params.compare), evaluations, params.compare.alpha)
    promote_champion(leaderboard, evaluations, args.champion, args.champion_record)
    write_leaderboard(leaderboard, args.leaderboard, args.markdown, args.bars)
    draw_gallery(champion_run(leaderboard, evaluations), args.split, args.errors, args.activations)


if __name__ == "__main__":
    main()
