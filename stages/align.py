"""Stage align: detect faces and their landmarks, register them, resize; save a before/after sample grid."""

import argparse

import pandas as pd

from fer.core.errors import FerError, one_line_errors
from fer.core.params import load_params
from fer.core.storage import write_json
from fer.data import rawdata
from fer.data.datasets import save_images
from fer.data.faces import align_all, save_sample_grid


@one_line_errors
def main():
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--raw", required=True)
    cli.add_argument("--out", required=True)
    cli.add_argument("--metrics", required=True)
    cli.add_argument("--samples", required=True)
    args = cli.parse_args()

    p = load_params().align
    raw = rawdata.load(args.raw)
    detects = p.detects_faces
    detector = None
    if detects:
        # torch and MTCNN take ~3.5 s to import, which registered crops (align.method: resize) do not need
        from fer.runtime.face_detector import face_detector

        detector = face_detector(p.method, p.min_face)
    result = align_all(raw.images, detector, p.size, p.margin, p.crop, p.on_miss, p.batch_size, progress=True)
    if not result.kept.any():
        raise FerError(f"align: no face found in any of {len(raw)} images (align.method={p.method}); "
                       "try align.on_miss=resize or align.method=resize")
    kept = result.kept
    manifest = pd.DataFrame({
        **raw.label_set.columns(raw.labels), "usage": raw.usage, "source": raw.source, "detected": result.detected,
    })[kept].reset_index(drop=True)
    save_images(args.out, result.images, manifest, raw.label_set)
    save_sample_grid([im for im, k in zip(raw.images, kept) if k], result.images, args.samples, p.samples,
                     faces=[face for face, k in zip(result.faces, kept) if k])
    n = len(raw)
    write_json(args.metrics, {
        "method": p.method,
        "crop": p.crop,
        "images_in": n,
        "images_out": int(kept.sum()),
        "dropped": int(n - kept.sum()),
        "detection_rate": round(float(result.detected.mean()), 4) if detects else None,
        "landmark_rate": round(float(result.registered.mean()), 4) if detects else None,
    })


if __name__ == "__main__":
    main()
