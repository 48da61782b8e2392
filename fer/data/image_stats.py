"""Simple statistics of aligned face crops, logged per prediction and compared with the training split."""

import numpy as np

# Comparable between logged faces and the training split: both are aligned crops of the same size.
IMAGE_STATS = ("brightness", "contrast", "sharpness")
# Only known for faces found in photos.
DETECTION_STATS = ("face_size", "detector_score")


def laplacian_variance(faces: np.ndarray) -> np.ndarray:
    """cv2.Laplacian(face, CV_64F).var() of every face at once (same 4-neighbour kernel, reflect-101 border)."""
    padded = np.pad(faces.astype(np.float64), ((0, 0), (1, 1), (1, 1)), mode="reflect")
    laplacian = (
        padded[:, :-2, 1:-1]
        + padded[:, 2:, 1:-1]
        + padded[:, 1:-1, :-2]
        + padded[:, 1:-1, 2:]
        - 4 * padded[:, 1:-1, 1:-1]
    )
    return laplacian.reshape(len(faces), -1).var(axis=1)


def image_stats(faces: np.ndarray) -> dict[str, np.ndarray]:
    """Per face of (N, S, S) uint8: mean and spread of grey level in [0, 1], and Laplacian variance."""
    flat = faces.reshape(len(faces), -1).astype(np.float64) / 255.0
    return {"brightness": flat.mean(axis=1), "contrast": flat.std(axis=1), "sharpness": laplacian_variance(faces)}
