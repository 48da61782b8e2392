"""fit(): one training loop for every model, on the GPU when there is one, otherwise the CPU."""

import copy
import math
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from fer.core.labels import LabelSet
from fer.core.params import TrainParams
from fer.models.input_spec import InputSpec
from fer.runtime.device import autocast, clock
from fer.runtime.inference import predict_logits
from fer.runtime.inputs import HostImages, batch_indices, gathered, model_input
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


@dataclass(frozen=True)
class TrainingData:
    """What fit learns from: (uint8 images (N, H, W), labels in the label set's form) for the train and val
    splits; the images on the training device, or HostImages that upload each batch; the labels on the device."""

    label_set: LabelSet
    train: tuple[torch.Tensor | HostImages, torch.Tensor]
    val: tuple[torch.Tensor | HostImages, torch.Tensor]


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


def _subset(n: int, cap: int, generator: torch.Generator, device) -> torch.Tensor | None:
    """Indices of a fresh random subset each epoch when max_train_images caps the epoch, else None."""
    return torch.randperm(n, generator=generator, device=device)[:cap] if 0 < cap < n else None


def fit(
    model: torch.nn.Module,
    spec: InputSpec,
    data: TrainingData,
    cfg: TrainParams,
    seed: int,
    on_epoch=None,
    desc: str = "train",
) -> FitResult:
    """Train with early stopping on val accuracy and return the best weights.

    The label set's head gives the loss and the accuracy (for attributes, the mean over the attributes).
    Before each validation the BatchNorm statistics are recomputed for the current weights (see
    fer.train.batchnorm), so early stopping, pruning and the kept weights judge what the model has learnt.
    on_epoch(EpochLog) is called after every epoch (dvclive logging, Optuna pruning); it may raise to stop.
    """
    images, labels = data.train
    val = data.val
    device = images.device
    generator = torch.Generator(device=device).manual_seed(seed)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(min(len(images), cfg.max_train_images or len(images)) / cfg.batch_size)
    scheduler = _schedule(optimizer, cfg, steps_per_epoch)
    head = data.label_set.head
    loss_fn = head.loss(labels, cfg.label_smoothing, cfg.class_weights)

    # The BatchNorm re-estimate sees a fixed, un-augmented sample of the train split, capped because the pass
    # costs about a tenth of a training step per image (measured on CPU); 0 = the whole split, -1 = off.
    bn_sample = None
    if cfg.bn_recompute_images >= 0 and batchnorm_layers(model):
        pick = _subset(
            len(images), cfg.bn_recompute_images, torch.Generator(device=device).manual_seed(seed + 1), device
        )
        bn_sample = images if pick is None else images[pick]

    result = FitResult(best_state={}, best_epoch=0, best_val_acc=-1.0)
    progress = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", disable=None)
    for epoch in progress:
        model.train()
        start = clock(device)
        subset = _subset(len(images), cfg.max_train_images, generator, device)
        n = len(images) if subset is None else len(subset)
        batches = [
            idx if subset is None else subset[idx] for idx in batch_indices(n, cfg.batch_size, generator, device)
        ]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for rows, batch in zip(batches, gathered(images, batches)):
            x = model_input(batch, spec, lambda batch: augment(batch, cfg.augment, generator))
            y = labels[rows]
            with autocast(device):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            # Accumulate on the device: a .item() per batch would stall the GPU every step.
            loss_sum += loss.detach() * len(rows)
            correct += head.hits(logits.detach().float(), y).sum()
        seconds = clock(device) - start

        bn_start = clock(device)
        if bn_sample is not None:
            recompute_batchnorm_statistics(model, bn_sample, spec)
        bn_seconds = clock(device) - bn_start
        val_logits = predict_logits(model, val[0], spec)
        log = EpochLog(
            epoch=epoch,
            train_loss=loss_sum.item() / n,
            train_acc=correct.item() / n,
            val_loss=head.val_loss(val_logits, val[1]).item(),
            val_acc=head.hits(val_logits, val[1]).mean().item(),
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
