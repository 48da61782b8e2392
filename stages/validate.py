"""Stage validate: check all of params.yaml before any stage that writes outputs runs.

DVC deletes a stage's outputs before running it, so a bad value caught by that stage itself would already
have cost the last good model, metrics or split. Every stage depends on this stage's mark instead: a bad
value stops `dvc repro` here, with nothing deleted (fer.core.preflight: each model's merged training params
and options, the search space, the data path and folder, the device, the synthetic data's size). The mark's
content never changes, so a params edit re-runs this (cheap; torch-free unless CUDA is asked for) stage without
re-running anything downstream that does not read the edited value.
"""

import argparse

from fer.core.errors import one_line_errors
from fer.core.params import PARAMS_FILE, load_params
from fer.core.preflight import check_everything
from fer.core.storage import atomic_path


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--out", required=True, help="the mark that every other stage depends on")
    args = cli.parse_args()

    check_everything(load_params())
    with atomic_path(args.out) as tmp:
        tmp.write_text(f"{PARAMS_FILE}: valid\n")


if __name__ == "__main__":
    main()
