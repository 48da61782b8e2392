"""Params profiles: a file holding only its differences from params.yaml, applied as a JSON merge patch.

A profile (e.g. params-fer2013-gpu.yaml) is merged into the base params the way RFC 7396 merges a patch:
mappings merge key by key, any other value replaces the base's, and `null` removes the base's key (so a
per-model override such as `max_train_images` can be dropped to fall back on the shared `train:` value).
"""

from pathlib import Path

import yaml

from fer.core.params import Params, parse_params, read_yaml
from fer.core.storage import atomic_path


def merge_patch(base, patch):
    if not isinstance(patch, dict):
        return patch
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def apply_profile(base_path: str | Path, profile_path: str | Path) -> tuple[dict, Params]:
    """The merged params as a plain mapping and validated; errors name the profile file."""
    merged = merge_patch(read_yaml(base_path), read_yaml(profile_path))
    return merged, parse_params(merged, f"{base_path} + {profile_path}")


def write_params(raw: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
