"""Emotions (or attributes) of every face in a photo, with the align stage's detection and registration and a
checkpoint, or its ONNX export (which needs no torch)."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer.core.errors import FerError
from fer.core.params import AlignParams, PredictParams
from fer.core.storage import file_sha256
from fer.core.tasks.head import TaskHead
from fer.data.faces import align_face
from fer.data.image_stats import image_stats
from fer.data.photos import BadPhoto
from fer.runtime.face_detector import face_detector
from fer.runtime.onnx_model import load_classifier


@dataclass
class FacePrediction:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo
    detector_score: float
    probabilities: dict[str, float]  # every class, summing to 1; attributes: each its own probability
    head: TaskHead  # the model's task head, which describes the prediction
    image_stats: dict[str, float] = field(default_factory=dict)  # fer.data.image_stats.IMAGE_STATS of the crop
    landmarks: tuple[tuple[float, float], ...] | None = None  # fer.data.faces.Face.landmarks, in the photo

    @property
    def label(self) -> str:
        """The headline: the most probable emotion, or the attributes shown ("none" if none is)."""
        return self.head.headline(self.probabilities)

    @property
    def confidence(self) -> float:
        """The probability of the headline; for attributes, the mean certainty of the yes/no decisions."""
        return self.head.confidence(self.probabilities)

    def log_row(self) -> dict:
        """What the prediction log records: the outcome, the crop's image statistics and the detection's."""
        return {
            "emotion": self.label,
            "confidence": self.confidence,
            **self.image_stats,
            "face_size": float(max(self.box[2:])),
            "detector_score": self.detector_score,
        }

    def as_dict(self) -> dict:
        return {
            "box": list(self.box),
            "label": self.label,
            **self.head.outcome(self.probabilities),
            "detector_score": round(self.detector_score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks or ()],
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }


class Predictor:
    def __init__(
        self, checkpoint: str | Path, align: AlignParams, settings: PredictParams, expected_sha256: str | None = None
    ):
        """checkpoint: a .pt checkpoint or an .onnx export; expected_sha256: the hash a stage recorded for a
        checkpoint (fer.evaluate.provenance); it must match."""
        self.classifier = load_classifier(checkpoint, expected_sha256)
        self.record = self.classifier.record
        self.checkpoint = Path(checkpoint)
        # load_checkpoint has hashed the file against expected_sha256 already: one hash per start.
        self.checkpoint_sha256 = expected_sha256 or file_sha256(checkpoint)
        self.align = align
        self.settings = settings
        # Photos are never registered crops: with align.method=resize they are still searched, with mtcnn.
        self.detector = face_detector(align.method if align.detects_faces else "mtcnn", align.min_face)

    @property
    def limits(self) -> dict:
        """decode_photo's size limits."""
        return {
            "max_bytes": round(self.settings.max_upload_mb * 2**20),
            "max_pixels": round(self.settings.max_megapixels * 1e6),
            "max_side": self.settings.max_side,
        }

    @property
    def name(self) -> str:
        return self.record.name

    def predict(self, grey: np.ndarray, name: str = "photo", scale: float = 1.0) -> list[FacePrediction]:
        """Every detected face, largest first; a photo with none is a BadPhoto (422).

        scale: the photo's size over grey's, when it was decoded shrunk; boxes and landmarks are in the photo's
        pixels.
        """
        (faces,) = self.detector([grey], self.settings.min_face_fraction)
        if not faces:
            smallest = round(max(self.align.min_face, self.settings.min_face_fraction * min(grey.shape)) * scale)
            raise BadPhoto(f"{name}: no face found (faces of at least {smallest} px are looked for)", 422)
        crops = np.stack(
            [align_face(grey, face, self.align.size, self.align.margin, self.align.crop) for face in faces]
        )
        head = self.record.label_set.head
        probabilities = self.classifier.probabilities(crops)
        if not np.isfinite(probabilities).all():  # never an emotion with null probabilities
            raise FerError(f"{self.checkpoint}: the model gave NaN or inf probabilities for {name}; refusing them")
        stats = image_stats(crops)
        return [
            FacePrediction(
                box=tuple(round(v * scale) for v in face.box),
                detector_score=face.score,
                landmarks=None if face.landmarks is None else tuple((x * scale, y * scale) for x, y in face.landmarks),
                probabilities=dict(zip(self.record.classes, map(float, row))),
                image_stats={k: float(v[i]) for k, v in stats.items()},
                head=head,
            )
            for i, (face, row) in enumerate(zip(faces, probabilities))
        ]
