"""The model architectures, by name, where each one's builder lives (module of fer.models:function), and the
options, image sizes and pretrained weights each accepts.

Kept here, free of torch, so that params.yaml is validated without importing torch or any model library;
`fer.models.build_model` imports a builder only when it is asked for, after `check_model` (the same check the
validate stage runs) has passed.
"""

from pathlib import Path

from fer.core.errors import FerError

ARCH_BUILDERS = {
    "mlp": "baselines:build_mlp",
    "cnn": "baselines:build_cnn",
    "resnet18": "torchvision_models:build_resnet18",
    "mobilenet": "torchvision_models:build_mobilenet",
    "mobilenet_v2": "torchvision_models:build_mobilenet_v2",
    "efficientnet": "torchvision_models:build_efficientnet",
    "efficientnet_lite0": "lite0:build_lite0",
    "vit": "vit:build_vit",
}
ARCHS = tuple(ARCH_BUILDERS)

# What each option must be: a non-empty list of positive integers, a positive integer, a flag, or a name.
POSITIVE_INTS, POSITIVE_INT, FLAG, NAME = "positive_ints", "positive_int", "flag", "name"
# A ViT from scratch has no default size: params.yaml's options state each of these.
VIT_SCRATCH_SIZES = ("patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
ARCH_OPTIONS = {
    "mlp": {"hidden": POSITIVE_INTS},
    "cnn": {"widths": POSITIVE_INTS},
    "vit": {**dict.fromkeys(VIT_SCRATCH_SIZES, POSITIVE_INT), "intermediate_size": POSITIVE_INT, "conv_stem": FLAG},
}
PRETRAINED_ARCH_OPTIONS = {"vit": {"checkpoint": NAME}}
# The baselines have no published weights; vit loads a save_pretrained folder, the others a state_dict file.
NO_PRETRAINED = ("mlp", "cnn")
PRETRAINED_FOLDER = ("vit",)
OPTION_KINDS = {
    POSITIVE_INTS: (
        lambda v: isinstance(v, list) and bool(v) and all(_positive_int(x) for x in v),
        "a non-empty list of positive integers",
    ),
    POSITIVE_INT: (lambda v: _positive_int(v), "a positive integer"),
    FLAG: (lambda v: isinstance(v, bool), "true or false"),
    NAME: (lambda v: isinstance(v, str) and bool(v.strip()), "a name"),
}


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_model(where: str, arch: str, image_size: int, pretrained: bool | str, options: dict) -> None:
    """Refuse, in one line naming `where` (e.g. params.yaml: models.cnn), what the arch's builder could not
    build: an unknown or ill-typed option, sizes that do not fit together, pretrained weights it has none of
    or a weights path that is not there."""
    if arch not in ARCH_BUILDERS:
        raise FerError(f"{where}: unknown model arch {arch!r}; expected one of: {', '.join(ARCHS)}")
    _check_pretrained(where, arch, pretrained)
    accepted = (PRETRAINED_ARCH_OPTIONS if pretrained else ARCH_OPTIONS).get(arch, {})
    for name, value in options.items():
        if name not in accepted:
            weights = " with pretrained weights" if pretrained else ""
            raise FerError(f"{where}: unknown option {name!r}; allowed{weights}: {', '.join(accepted) or '(none)'}")
        valid, expected = OPTION_KINDS[accepted[name]]
        if not valid(value):
            raise FerError(f"{where}: option {name} must be {expected} (got {value!r})")
    if arch == "cnn" and "widths" in options and image_size < 2 ** len(options["widths"]):
        raise FerError(
            f"{where}: image_size {image_size} is too small for {len(options['widths'])} pooling stages "
            f"(options.widths); each halves the image"
        )
    if arch == "vit" and not pretrained:
        missing = [name for name in VIT_SCRATCH_SIZES if name not in options]
        if missing:
            raise FerError(f"{where}: option {missing[0]} is required for a ViT from scratch")
        sizes = options
        if sizes["hidden_size"] % sizes["num_attention_heads"]:
            raise FerError(
                f"{where}: hidden_size {sizes['hidden_size']} must be a multiple of "
                f"num_attention_heads {sizes['num_attention_heads']}"
            )
        patch = sizes["patch_size"]
        if image_size % patch:
            raise FerError(f"{where}: option patch_size {patch} does not divide image_size {image_size}")
        if options.get("conv_stem") and (patch < 2 or patch & (patch - 1)):
            raise FerError(f"{where}: conv_stem needs patch_size to be a power of two >= 2 (got {patch})")


def _check_pretrained(where: str, arch: str, pretrained: bool | str) -> None:
    if pretrained and arch in NO_PRETRAINED:
        raise FerError(f"{where}: there are no pretrained weights for {arch}; set pretrained: false")
    if not isinstance(pretrained, str):
        return
    folder = arch in PRETRAINED_FOLDER
    if not (Path(pretrained).is_dir() if folder else Path(pretrained).is_file()):
        raise FerError(
            f"{where}: pretrained {'folder' if folder else 'weights file'} {pretrained} not found "
            f"(expected {'a save_pretrained folder' if folder else 'a torch state_dict file'})"
        )
