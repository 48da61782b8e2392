"""The canonical FER2013 label order, and the names other datasets use for the same classes."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder names seen in public FER datasets (msambare/fer2013, Human Face Emotions, ...) that are not
# already canonical. Matching is by name, never by a folder's alphabetical position.
_ALIASES = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "suprise": "surprise",
    "calm": "neutral",
}


def label_of(name: str) -> int | None:
    """Canonical label index of a class name (any case), or None if it names no FER2013 class."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return EMOTIONS.index(key) if key in EMOTIONS else None


def class_counts(labels) -> dict[str, int]:
    """Images per class, by canonical name, every class listed (0 where absent)."""
    counts = [0] * len(EMOTIONS)
    for label in labels:
        counts[int(label)] += 1
    return dict(zip(EMOTIONS, counts))
