"""Stage split: stratified 80/10/10 (or FER2013's own usage) with duplicates kept out of two splits."""

import argparse

import numpy as np

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.core.storage import write_json
from fer.data.datasets import image_rows, load_manifest, manifest_labels, save_splits
from fer.data.rawdata import SPLITS
from fer.data.splitting import duplicate_groups, original_assignment, stratified_assignment


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--aligned", required=True)
    cli.add_argument("--out", required=True)
    cli.add_argument("--metrics", required=True)
    args = cli.parse_args()

    params = load_params()
    p = params.split
    # The images stay on disk, read a chunk at a time: memory does not grow with the dataset.
    images, manifest = image_rows(args.aligned), load_manifest(args.aligned)
    label_set, labels = manifest_labels(args.aligned, manifest)
    strata = label_set.head.strata(labels)
    owner = duplicate_groups(images)
    if p.strategy == "original":
        assignment = original_assignment(manifest["usage"].to_numpy(), strata, owner, p.val, params.seed)
    else:
        assignment = stratified_assignment(strata, owner, p.val, p.test, params.seed)
    save_splits(args.out, images, manifest, assignment, label_set)
    write_json(
        args.metrics,
        {
            "strategy": p.strategy,
            "duplicates": int((owner != np.arange(len(owner))).sum()),
            "dropped_cross_split_duplicates": int((assignment == "").sum()),
            **{
                name: {
                    "images": int((assignment == name).sum()),
                    "classes": label_set.counts(labels[assignment == name]),
                }
                for name in SPLITS
            },
        },
    )


if __name__ == "__main__":
    main()
