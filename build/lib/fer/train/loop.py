"""fit(): one training loop for every model, on the GPU when there is one, otherwise the CPU."""

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from fer.core.labels import PRESENT_FROM, LabelSet
from fer.core.params import TrainParams
from fer.models.input_spec import InputSpec
from fer.runtime.device import autocast, clock
from fer.runtime.inference import predict_logits
from fer.runtime.inputs import batch_indices, model_input
from fer.train.augment import augment
from fer.train.batchnorm import batchnorm_layers, recompute_batchnorm_statistics


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_second: float
    bn_seconds: float  # the BatchNorm re-estimate before validation, not in `seconds`


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    best_val_acc: float
    history: list[EpochLog] = field(default_factory=list)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay for weight matrices and conv kernels only: decaying norm scales and biases (1-D
    parameters) pulls them towards zero for no regularising benefit."""
    decayed, plain = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decayed if parameter.ndim > 1 else plain).append(parameter)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _optimizer(model: torch.nn.Module, cfg: TrainParams) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _schedule(optimizer, cfg: TrainParams, steps_per_epoch: int):
    """Linear warm-up over warmup_fraction of all steps, then cosine decay to zero, stepped every batch."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(round(cfg.warmup_fraction * total), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _attribute_loss(train_labels: torch.Tensor, cfg: TrainParams) -> torch.nn.Module:
    """Binary cross-entropy per attribute; label smoothing pulls the 0/1 targets towards 1/2, and class_weights
    weighs each attribute's present faces by how rare they are (negatives over positives)."""
    pos_weight = None
    if cfg.class_weights:
        positives = train_labels.float().sum(0)
        pos_weight = (len(train_labels) - positives) / positives.clamp(min=1)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return bce(logits, targets.float() * (1 - cfg.label_smoothing) + cfg.label_smoothing / 2)

    return loss


def _loss_fn(train_labels: torch.Tensor, label_set: LabelSet, cfg: TrainParams):
    if label_set.multi_label:
        return _attribute_loss(train_labels, cfg)
    num_classes = len(label_set.classes)
    weight = None
    if cfg.class_weights:
        # imported here: sklearn adds ~1.2 s to the start-up of every train process, and the option is off
        # by default (measured with python -X importtime stages/train.py --help)
        from sklearn.utils.class_weight import compute_class_weight

        y = train_labels.cpu().numpy()
        present = np.unique(y)
        weight = np.ones(num_classes, dtype=np.float32)
        weight[present] = compute_class_weight("balanced", classes=present, y=y)
        weight = torch.from_numpy(weight).to(train_labels.device)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def _subset(n: int, cap: int, generator: torch.Generator, device) -> torch.Tensor | None:
    """Indices of a fresh random subset each epoch when max_train_images caps the epoch, else None."""
    return torch.randperm(n, generator=generator, device=device)[:cap] if 0 < cap < n else None


def _eval_loss(label_set: LabelSet):
    """The plain loss validation reports: cross-entropy, or binary cross-entropy averaged over attributes."""
    if label_set.multi_label:
        return lambda logits, targets: torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float())
    return torch.nn.CrossEntropyLoss()


def hits(logits: torch.Tensor, labels: torch.Tensor, label_set: LabelSet) -> torch.Tensor:
    """Per image, the share of its decisions that are right: its class, or each of its attributes."""
    if label_set.multi_label:
        return ((torch.sigmoid(logits) >= PRESENT_FROM) == labels.bool()).float().mean(1)
    return (logits.argmax(1) == labels).float()


def fit(model: torch.nn.Module, spec: InputSpec, label_set: LabelSet, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], cfg: TrainParams, seed: int, on_epoch=None,
        desc: str = "train") -> FitResult:
    """Train with early stopping on val accuracy and return the best weights.

    train/val: (uint8 images (N, H, W), labels) already on the training device: int64 class indices (N,), or
    0/1 attributes (N, K) when label_set.task is attributes, whose accuracies are means over the attributes.
    Before each validation the BatchNorm statistics are recomputed for the current weights (see
    fer.train.batchnorm), so early stopping, pruning and the kept weights judge what the model has learnt.
    on_epoch(EpochLog) is called after every epoch (dvclive logging, Optuna pruning); it may raise to stop.
    """
    images, labels = train
    device = images.device
    generator = torch.Generator(device=device).manual_seed(seed)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(min(len(images), cfg.max_train_images or len(images)) / cfg.batch_size)
    scheduler = _schedule(optimizer, cfg, steps_per_epoch)
    loss_fn = _loss_fn(labels, label_set, cfg)
    eval_loss = _eval_loss(label_set)

    # The BatchNorm re-estimate sees a fixed, un-augmented sample of the train split, capped because the pass
    # costs about a tenth of a training step per image (measured on CPU); 0 = the whole split, -1 = off.
    bn_sample = None
    if cfg.bn_recompute_images >= 0 and batchnorm_layers(model):
        pick = _subset(len(images), cfg.bn_recompute_images, torch.Generator(device=device).manual_seed(seed + 1),
                       device)
        bn_sample = images if pick is None else images[pick]

    result = FitResult(best_state={}, best_epoch=0, best_val_acc=-1.0)
    progress = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", disable=None)
    for epoch in progress:
        model.train()
        start = clock(device)
        subset = _subset(len(images), cfg.max_train_images, generator, device)
        epoch_images, epoch_labels = (images, labels) if subset is None else (images[subset], labels[subset])
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for idx in batch_indices(len(epoch_images), cfg.batch_size, generator, device):
            x = model_input(epoch_images[idx], spec, lambda batch: augment(batch, cfg.augment, generator))
            y = epoch_labels[idx]
            with autocast(device):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            # Accumulate on the device: a .item() per batch would stall the GPU every step.
            loss_sum += loss.detach() * len(idx)
            correct += hits(logits.detach().float(), y, label_set).sum()
        seconds = clock(device) - start
        n = len(epoch_images)

        bn_start = clock(device)
        if bn_sample is not None:
            recompute_batchnorm_statistics(model, bn_sample, spec)
        bn_seconds = clock(device) - bn_start
        val_logits = predict_logits(model, val[0], spec)
        log = EpochLog(
            epoch=epoch,
            train_loss=loss_sum.item() / n,
            train_acc=correct.item() / n,
            val_loss=eval_loss(val_logits, val[1]).item(),
            val_acc=hits(val_logits, val[1], label_set).mean().item(),
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_second=n / seconds,
            bn_seconds=bn_seconds,
        )
        result.history.append(log)
        progress.set_postfix(loss=f"{log.train_loss:.3f}", val_acc=f"{log.val_acc:.3f}")
        if log.val_acc > result.best_val_acc:
            result.best_val_acc, result.best_epoch = log.val_acc, epoch
            result.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if on_epoch is not None:
            on_epoch(log)
        if epoch - result.best_epoch >= cfg.patience:
            break
    return result
