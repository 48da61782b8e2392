"""How much accuracy registration loses: one CNN trained and tested on the synthetic faces given as
registered 48x48 crops, and on the same faces (same seed, labels and split) placed in photo-style scenes
(synthetic.photo: true) and aligned by each detector and crop. Prints a markdown table.

    python scripts/registration_gap.py --images 2000
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.params import load_params
from fer.data.aligning import align_all
from fer.data.datasets import load_split, save_splits
from fer.data.rawdata import TEST
from fer.data.sources.synthetic import generate
from fer.data.splitting import stratified_assignment
from fer.evaluate.evaluation import evaluate_checkpoint
from fer.runtime.face_detector import face_detector
from fer.train.job import TrainJob
from fer.train.trainer import train_model

VARIANTS = (
    ("registered crops", None, None),
    ("photo, mtcnn, landmarks", "mtcnn", "landmarks"),
    ("photo, mtcnn, box", "mtcnn", "box"),
    ("photo, haar, landmarks (eyes)", "haar", "landmarks"),
)


def main():
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--images", type=int, default=2000)
    cli.add_argument("--model", default="cnn", help="a key of models in params.yaml")
    cli.add_argument("--params", default="params.yaml")
    args = cli.parse_args()
    params = load_params(args.params)
    a, s = params.align, params.synthetic
    crops = generate(args.images, a.size, params.seed, photo=False)
    photos = generate(args.images, s.photo_size, params.seed, photo=True)
    assert np.array_equal(crops.labels, photos.labels)
    labels = np.asarray(crops.labels)
    assignment = stratified_assignment(labels, np.arange(len(labels)), params.split.val, params.split.test, params.seed)
    print("| faces given as | detected | test accuracy | align s |\n|---|---:|---:|---:|", flush=True)
    for name, method, crop in VARIANTS:
        start = time.perf_counter()
        if method is None:
            images, detected = np.stack(crops.images), float("nan")
        else:
            result = align_all(
                photos.images,
                face_detector(method, a.min_face),
                a.model_copy(update={"crop": crop, "on_miss": "resize"}),
            )
            images, detected = result.images, result.detected.mean()
        seconds = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            split = Path(tmp) / "split"
            save_splits(split, images, pd.DataFrame({"label": labels}), assignment, crops.label_set)
            train_model(TrainJob.from_params(params, args.model, params.seed, split), Path(tmp) / "model.pt")
            result, _ = evaluate_checkpoint(
                Path(tmp) / "model.pt",
                *load_split(split, TEST),
                crops.label_set,
                params.evaluate,
                predictions_path=Path(tmp) / "predictions.json",
            )
        print(f"| {name} | {detected:.1%} | {result.record.accuracy:.1%} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
