"""Stage train@<model>-<seed>: train one model from params.yaml's `models` with one of `seeds`, keep its best
checkpoint."""

import argparse

from dvclive import Live

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.train.job import TrainJob
from fer.train.trainer import dvclive_logger, train_model


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--model", required=True, help="a key of `models` in params.yaml")
    cli.add_argument("--seed", required=True, type=int, help="one of `seeds` in params.yaml")
    cli.add_argument("--split", required=True)
    cli.add_argument("--out", required=True, help="checkpoint file to write")
    cli.add_argument("--live", required=True, help="dvclive folder for this model")
    args = cli.parse_args()

    job = TrainJob.from_params(load_params(), args.model, args.seed, args.split)
    with Live(args.live, dvcyaml=None, save_dvc_exp=False, report=None) as live:
        result = train_model(job, args.out, on_epoch=dvclive_logger(live))
        live.summary["best/val_acc"] = result.best_val_acc
        live.summary["best/epoch"] = result.best_epoch


if __name__ == "__main__":
    main()
