"""What a model expects as input: grey images of one size, normalised by one mean and std."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Normalization:
    """(x - mean) / std, applied to grey input scaled to [0, 1]."""

    mean: float
    std: float


# FER2013 pixels have mean ~0.51 and std ~0.25: models trained from scratch see roughly unit-scale input.
FROM_SCRATCH = Normalization(mean=0.5, std=0.25)


@dataclass(frozen=True)
class InputSpec:
    """A model's input: (B, 1, image_size, image_size) float, (grey / 255 - mean) / std."""

    image_size: int
    mean: float
    std: float

    @classmethod
    def of(cls, image_size: int, norm: Normalization) -> "InputSpec":
        return cls(image_size, norm.mean, norm.std)

    def as_dict(self) -> dict:
        return asdict(self)
