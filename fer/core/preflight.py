"""Everything the stages will use from params.yaml, checked up front by the validate stage with the code the
stages themselves use: DVC deletes a stage's outputs before it runs, so a problem found only there costs them.

Torch-free unless a model asks for CUDA: only then is torch imported, to ask whether a GPU is there.
"""

import os
from pathlib import Path

from pydantic import ValidationError

from fer.core.archs import check_model
from fer.core.dataset_files import check_dataset_tree
from fer.core.emotions import EMOTIONS, class_name
from fer.core.errors import FerError
from fer.core.params import LOCAL_SOURCES, PARAMS_FILE, FloatRange, Params, TrainParams, describe
from fer.core.paths import PATHS

# The share of physical memory the fetch stage's images may take (it holds them all, plus a copy to save).
MEMORY_SHARE = 0.5


def check_everything(params: Params, root: Path = Path(".")) -> None:
    for name, spec in params.models.items():
        train = params.train_config(name)  # what train@<name> trains with: train: merged with its own keys
        check_model(f"{PARAMS_FILE}: models.{name}", spec.arch, spec.image_size, spec.pretrained, spec.options)
        if train.device == "cuda":
            check_cuda(f"{PARAMS_FILE}: models.{name}.device (or train.device)")
    check_search_space(params)
    check_data(params, root)
    check_memory(params)


def check_cuda(where: str) -> None:
    import torch  # only when CUDA is asked for: validate stays torch-free for auto and cpu

    if not torch.cuda.is_available():
        raise FerError(f"{where}: cuda was asked for but torch sees no CUDA GPU; use auto or cpu")


def check_search_space(params: Params) -> None:
    """Every bound and choice of tune.search_space must be a valid value of the tuned model's training param."""
    base = params.train_config(params.model).model_dump()
    space = params.tune.search_space
    for key in type(space).model_fields:
        choice = getattr(space, key)
        values = [] if choice is None else [choice.low, choice.high] if isinstance(choice, FloatRange) else choice
        for value in values:
            try:
                TrainParams.model_validate({**base, key: value})
            except ValidationError as err:
                raise FerError(describe(err, PARAMS_FILE, "tune.search_space")) from None


def check_data(params: Params, root: Path) -> None:
    data = params.data
    check_dataset_tree(root / PATHS.data)  # the fetch stage depends on the whole folder, whatever the source
    if data.source in LOCAL_SOURCES:
        path = root / data.path
        folder = data.source == "folder"
        if not (path.is_dir() if folder else path.is_file()):
            raise FerError(
                f"{PARAMS_FILE}: data.path: {data.path} is not {'a folder' if folder else 'a file'} "
                f"(data.source: {data.source})"
            )
    # Synthetic faces show the seven emotions; other sources' classes are known only once read (fetch checks them).
    if params.task == "expression" and data.source == "synthetic" and data.classes is not None:
        unknown = [name for name in data.classes if class_name(name) not in EMOTIONS]
        if unknown:
            raise FerError(
                f"{PARAMS_FILE}: data.classes: {unknown[0]!r} is not a class of the synthetic faces; "
                f"they show {', '.join(EMOTIONS)}"
            )


def check_memory(params: Params) -> None:
    """Synthetic faces are drawn and held in memory at once: refuse more than the machine holds."""
    if params.data.source != "synthetic":
        return
    s = params.synthetic
    side = s.photo_size if s.photo else s.image_size
    needed = s.n_images * side * side
    available = MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise FerError(
            f"{PARAMS_FILE}: synthetic.n_images: {s.n_images} images of {side}x{side} take "
            f"{needed / 2**30:.1f} GiB, over {available / 2**30:.1f} GiB (half this machine's memory)"
        )
