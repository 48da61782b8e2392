"""Stage fetch: read the configured source into one raw dataset (pixels + manifest)."""

import argparse

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.core.storage import scratch_folder, write_json
from fer.data import rawdata
from fer.data.classes import check_every_class_has_images, check_task, select_classes
from fer.data.sources import load_source
from fer.data.subset import limit_images


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--out", required=True)
    cli.add_argument("--metrics", required=True)
    args = cli.parse_args()

    params = load_params()
    # Decoded image files wait on disk beside the output, so memory does not grow with the dataset.
    with scratch_folder(args.out) as scratch:
        found = load_source(params, scratch)
        check_task(found, params.task, params.data.source)
        selected = select_classes(found, params.data.classes)
        dataset = limit_images(selected, params.data.max_images, params.seed)
        check_every_class_has_images(dataset, params.data.source)
        rawdata.save(dataset, args.out)
    write_json(
        args.metrics,
        {
            "source": params.data.source,
            "task": params.task,
            "images": len(dataset),
            "skipped": dataset.skipped,
            "sixteen_bit": dataset.sixteen_bit,
            "left_out_by_classes": len(found) - len(selected),
            "max_images": params.data.max_images,
            "left_out_by_max_images": len(selected) - len(dataset),
            "classes": dataset.label_set.counts(dataset.labels),
        },
    )


if __name__ == "__main__":
    main()
