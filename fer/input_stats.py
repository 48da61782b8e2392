"""Simple statistics of aligned face crops, logged per prediction and compared with the training split."""

import cv2
import numpy as np

# Comparable between logged faces and the training split: both are aligned crops of the same size.
IMAGE_STATS = ("brightness", "contrast", "sharpness")
# Only known for faces found in photos.
DETECTION_STATS = ("face_size", "detector_score")


def image_stats(faces: np.ndarray) -> dict[str, np.ndarray]:
    """Per face of (N, S, S) uint8: mean and spread of grey level in [0, 1], and Laplacian variance."""
    flat = faces.reshape(len(faces), -1).astype(np.float64) / 255.0
    sharpness = [cv2.Laplacian(face, cv2.CV_64F).var() for face in faces]
    return {"brightness": flat.mean(axis=1), "contrast": flat.std(axis=1), "sharpness": np.asarray(sharpness)}
