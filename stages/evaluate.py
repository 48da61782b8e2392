"""Stage evaluate@<model> / evaluate_tuned: score one checkpoint on the test split."""

import argparse
from pathlib import Path

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.data.datasets import load_labels, load_split
from fer.data.rawdata import TEST, TRAIN
from fer.evaluate.evaluation import evaluate_checkpoint, write_evaluation


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--checkpoint", required=True, help="its record names the model on the leaderboard")
    cli.add_argument("--split", required=True)
    cli.add_argument("--metrics", required=True)
    cli.add_argument("--predictions", required=True, help="file for the per-image test predictions")
    cli.add_argument(
        "--confusion",
        required=True,
        nargs="+",
        help="files for the confusion cells {actual, predicted, count} (one per DVC plot template)",
    )
    args = cli.parse_args()

    images, labels = load_split(args.split, TEST)
    label_set, train_labels = load_labels(Path(args.split) / TRAIN)  # the majority baseline's, for attributes
    evaluated, _ = evaluate_checkpoint(
        args.checkpoint,
        images,
        labels,
        label_set,
        load_params().evaluate,
        predictions_path=args.predictions,
        train_labels=train_labels,
    )
    write_evaluation(evaluated, args.metrics, *args.confusion)


if __name__ == "__main__":
    main()
