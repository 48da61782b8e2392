"""fit(): one training loop for every model, on the GPU when there is one, otherwise the CPU."""

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from dvclive import Live
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

from fer.batches import autocast, batch_indices, model_input, predict_logits, resolve_device, to_device
from fer.checkpoints import save_checkpoint
from fer.datasets import load_split
from fer.labels import EMOTIONS
from fer.models import Normalization, build_model
from fer.params import ModelParams, TrainParams


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


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    best_val_acc: float
    history: list[EpochLog] = field(default_factory=list)


def _optimizer(model: torch.nn.Module, cfg: TrainParams) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _schedule(optimizer, cfg: TrainParams, steps_per_epoch: int):
    """Linear warm-up, then cosine decay to zero, stepped every batch."""
    warmup = cfg.warmup_epochs * steps_per_epoch
    total = max(cfg.epochs * steps_per_epoch, warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _loss_fn(train_labels: torch.Tensor, cfg: TrainParams) -> torch.nn.Module:
    weight = None
    if cfg.class_weights:
        y = train_labels.cpu().numpy()
        present = np.unique(y)
        weight = np.ones(len(EMOTIONS), dtype=np.float32)
        weight[present] = compute_class_weight("balanced", classes=present, y=y)
        weight = torch.from_numpy(weight).to(train_labels.device)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def _subset(n: int, cap: int, generator: torch.Generator, device) -> torch.Tensor | None:
    """Indices of a fresh random subset each epoch when max_train_images caps the epoch, else None."""
    return torch.randperm(n, generator=generator, device=device)[:cap] if 0 < cap < n else None


def fit(model: torch.nn.Module, norm: Normalization, image_size: int, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], cfg: TrainParams, seed: int, on_epoch=None,
        desc: str = "train") -> FitResult:
    """Train with early stopping on val accuracy and return the best weights.

    train/val: (uint8 images (N, H, W), int64 labels) already on the training device.
    on_epoch(EpochLog) is called after every epoch (dvclive logging, Optuna pruning); it may raise to stop.
    """
    images, labels = train
    device = images.device
    generator = torch.Generator(device=device).manual_seed(seed)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(min(len(images), cfg.max_train_images or len(images)) / cfg.batch_size)
    scheduler = _schedule(optimizer, cfg, steps_per_epoch)
    loss_fn = _loss_fn(labels, cfg)
    eval_loss = torch.nn.CrossEntropyLoss()

    result = FitResult(best_state={}, best_epoch=0, best_val_acc=-1.0)
    progress = tqdm(range(1, cfg.epochs + 1), desc=desc, unit="epoch", disable=None)
    for epoch in progress:
        model.train()
        start = time.perf_counter()
        subset = _subset(len(images), cfg.max_train_images, generator, device)
        epoch_images, epoch_labels = (images, labels) if subset is None else (images[subset], labels[subset])
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for idx in batch_indices(len(epoch_images), cfg.batch_size, generator, device):
            x = model_input(epoch_images[idx], image_size, norm, cfg.augment, generator)
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
            correct += (logits.argmax(1) == y).sum()
        seconds = time.perf_counter() - start
        n = len(epoch_images)

        val_logits = predict_logits(model, val[0], image_size, norm)
        log = EpochLog(
            epoch=epoch,
            train_loss=loss_sum.item() / n,
            train_acc=correct.item() / n,
            val_loss=eval_loss(val_logits, val[1]).item(),
            val_acc=(val_logits.argmax(1) == val[1]).float().mean().item(),
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_second=n / seconds,
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


def dvclive_logger(live: Live):
    """An on_epoch callback that logs every EpochLog field as a dvclive metric and steps."""

    def log_epoch(log: EpochLog) -> None:
        live.log_metric("train/loss", log.train_loss)
        live.log_metric("train/acc", log.train_acc)
        live.log_metric("val/loss", log.val_loss)
        live.log_metric("val/acc", log.val_acc)
        live.log_metric("lr", log.lr)
        live.log_metric("speed/epoch_seconds", log.seconds)
        live.log_metric("speed/images_per_second", log.images_per_second)
        live.next_step()

    return log_epoch


def train_model(name: str, spec: ModelParams, cfg: TrainParams, seed: int, split_dir, checkpoint_path,
                on_epoch=None) -> FitResult:
    """Load the train/val splits onto the device, build `spec`, fit it and save the best checkpoint."""
    device = resolve_device(cfg.device)
    train = to_device(*load_split(split_dir, "train"), device)
    val = to_device(*load_split(split_dir, "val"), device)
    torch.manual_seed(seed)  # the same initial weights on every run
    model, norm = build_model(spec.arch, len(EMOTIONS), spec.image_size, spec.pretrained, cfg.dropout, **spec.options)
    result = fit(model, norm, spec.image_size, train, val, cfg, seed, on_epoch=on_epoch, desc=name)
    save_checkpoint(checkpoint_path, result.best_state, {
        "name": name,
        "arch": spec.arch,
        "classes": list(EMOTIONS),
        "image_size": spec.image_size,
        "normalization": {"mean": norm.mean, "std": norm.std},
        "options": dict(spec.options),
        "dropout": cfg.dropout,
        "pretrained": spec.pretrained,
        "train": cfg.model_dump(),
        "best_epoch": result.best_epoch,
        "val_acc": result.best_val_acc,
    })
    return result
