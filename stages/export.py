"""Stage export: the champion as ONNX and int8 ONNX, checked against the PyTorch champion and timed."""

import argparse

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.export.champion_export import export_champion


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--champion", required=True, help="the compare stage's checkpoint")
    cli.add_argument("--champion-record", required=True, help="its record: the sha256 the checkpoint must have")
    cli.add_argument("--split", required=True, help="test crops for the checks, train crops for calibration")
    cli.add_argument("--onnx", required=True)
    cli.add_argument("--int8", required=True)
    cli.add_argument("--metrics", required=True)
    args = cli.parse_args()

    params = load_params()
    metrics = export_champion(
        args.champion,
        args.champion_record,
        args.split,
        args.onnx,
        args.int8,
        args.metrics,
        params.export,
        params.seed,
        params.evaluate.interval,
        params.evaluate.bootstrap_resamples,
        params.compare.alpha,
    )
    torch_scores, shipped = metrics["formats"]["torch"], metrics["formats"][f"int8_{params.export.int8}"]
    print(
        f"{args.onnx}: agreement {metrics['formats']['onnx']['agreement']:.2%}; {args.int8}: agreement "
        f"{shipped['agreement']:.2%}, {shipped['size_bytes'] / 1e6:.2f} MB, accuracy {shipped['accuracy']:.4f} "
        f"against {torch_scores['accuracy']:.4f} ({'tied' if shipped['tied_with_torch'] else 'beyond noise'}: "
        f"McNemar p={shipped['vs_torch_p']:.2g})"
    )


if __name__ == "__main__":
    main()
