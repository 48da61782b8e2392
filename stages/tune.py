"""Stage tune: Optuna over the `model` named in params.yaml, then retrain its best settings fully."""

import argparse
from pathlib import Path

from dvclive import Live

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.train.job import TrainJob
from fer.train.trainer import dvclive_logger
from fer.train.tuning import TuneOutputs, tune_model


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--name", required=True, help="the retrained model's name on the leaderboard")
    cli.add_argument("--split", required=True)
    cli.add_argument("--study", required=True, help="folder of the SQLite study (kept between runs)")
    cli.add_argument("--out", required=True, help="checkpoint of the retrained best settings")
    cli.add_argument("--metrics", required=True)
    cli.add_argument("--history", required=True)
    cli.add_argument("--importance", required=True)
    cli.add_argument("--live", required=True, help="dvclive folder for the final retrain")
    args = cli.parse_args()

    params = load_params()
    job = TrainJob.from_params(params, params.model, params.seed, args.split)
    outputs = TuneOutputs(
        Path(args.study), Path(args.out), Path(args.metrics), Path(args.history), Path(args.importance)
    )
    with Live(args.live, dvcyaml=None, save_dvc_exp=False, report=None) as live:
        tune_model(job, params.tune, outputs, record_name=args.name, on_final_epoch=dvclive_logger(live))


if __name__ == "__main__":
    main()
