"""Stage fetch: read the configured source into one raw dataset (pixels + manifest)."""

import argparse

from fer.core.errors import one_line_errors
from fer.core.labels import class_counts
from fer.core.params import load_params
from fer.core.storage import write_json
from fer.data import rawdata
from fer.data.sources import load_source


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--out", required=True)
    cli.add_argument("--metrics", required=True)
    args = cli.parse_args()

    params = load_params()
    dataset = load_source(params)
    rawdata.save(dataset, args.out)
    write_json(args.metrics, {
        "source": params.data.source,
        "images": len(dataset),
        "skipped": dataset.skipped,
        "sixteen_bit": dataset.sixteen_bit,
        "classes": class_counts(dataset.labels),
    })


if __name__ == "__main__":
    main()
