"""Emotion class names: the canonical seven in FER2013's order, and how a dataset's folder names map onto them."""

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


def class_name(name: str) -> str:
    """A folder's class name as the pipeline writes it: lower case, and an emotion's canonical spelling."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def default_order(names) -> list[str]:
    """Classes found in the data, in the canonical emotion order first, then the others by name."""
    names = set(names)
    return [e for e in EMOTIONS if e in names] + sorted(names - set(EMOTIONS))
