"""Stage align: detect faces and their landmarks, register them, resize; save a before/after sample grid."""

import argparse

from fer.core.errors import one_line_errors
from fer.core.params import load_params
from fer.core.storage import write_json
from fer.data import rawdata
from fer.data.aligned_output import write_aligned


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
    detector = None
    if p.detects_faces:
        # torch and MTCNN take ~3.5 s to import, which registered crops (align.method: resize) do not need
        from fer.runtime.face_detector import face_detector, prepare_for_photo_batches

        detector = face_detector(p.method, p.min_face)
        prepare_for_photo_batches()
    counts = write_aligned(raw, detector, p, args.out, args.samples)
    n = len(raw)
    write_json(
        args.metrics,
        {
            "method": p.method,
            "crop": p.crop,
            "images_in": n,
            "images_out": counts.kept,
            "dropped": n - counts.kept,
            "detection_rate": round(counts.detected / n, 4) if p.detects_faces else None,
            "landmark_rate": round(counts.registered / n, 4) if p.detects_faces else None,
        },
    )


if __name__ == "__main__":
    main()
