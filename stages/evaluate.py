"""Stage evaluate@<model> / evaluate_tuned: score one checkpoint on the test split."""

import argparse

from fer.datasets import load_split
from fer.errors import one_line_errors
from fer.evaluation import evaluate_checkpoint, write_evaluation
from fer.params import load_params


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--name", required=True, help="the model's name on the leaderboard")
    cli.add_argument("--checkpoint", required=True)
    cli.add_argument("--split", required=True)
    cli.add_argument("--metrics", required=True)
    cli.add_argument("--confusion", required=True, nargs="+",
                     help="files for the per-image {actual, predicted} records (one per DVC plot template)")
    args = cli.parse_args()

    images, labels = load_split(args.split, "test")
    result, predictions = evaluate_checkpoint(args.checkpoint, images, labels, load_params().evaluate)
    result = {"model": args.name, "checkpoint": args.checkpoint, **{k: v for k, v in result.items() if k != "model"}}
    write_evaluation(result, labels, predictions, args.metrics, *args.confusion)


if __name__ == "__main__":
    main()
