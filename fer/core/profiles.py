"""Params profiles: a file holding only its differences from params.yaml, applied as a JSON merge patch.

A profile (e.g. params-fer2013-gpu.yaml) is merged into the base params the way RFC 7396 merges a patch:
mappings merge key by key, any other value replaces the base's, and `null` removes the base's key (so a
per-model override such as `max_train_images` can be dropped to fall back on the shared `train:` value).
"""

from pathlib import Path

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


def write_profile(base_path: str | Path, profile_path: str | Path) -> None:
    """Apply the profile to the params file itself, keeping its comments, key order and layout (ruamel.yaml's
    round trip: only the patched values change)."""
    from ruamel.yaml import YAML

    round_trip = YAML()
    # null spelled out, as params.yaml does (ruamel writes nothing after the colon)
    round_trip.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    base = round_trip.load(Path(base_path).read_text())
    _patch_in_place(base, read_yaml(profile_path))
    with atomic_path(base_path) as tmp, tmp.open("w") as out:
        round_trip.dump(base, out)


def _patch_in_place(node: dict, patch: dict) -> None:
    """merge_patch, done inside the round-trip mapping so that what the patch leaves alone keeps its comments."""
    for key, value in patch.items():
        if value is None:
            node.pop(key, None)
        elif isinstance(value, dict) and isinstance(node.get(key), dict):
            _patch_in_place(node[key], value)
        elif isinstance(value, list):
            node[key] = _flow_list(value)
        else:
            node[key] = value


def _flow_list(values: list):
    """A list written inline ([42, 43]), as params.yaml writes its lists."""
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq
