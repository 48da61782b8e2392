"""train_model(): a TrainJob from a split on disk to a checkpoint, with dvclive logging per epoch."""

from pathlib import Path

import torch
from dvclive import Live

from fer.data.datasets import load_split, split_label_set, training_data
from fer.data.rawdata import TRAIN, VAL
from fer.models import build_model
from fer.runtime.checkpoint import save_checkpoint
from fer.runtime.device import data_budget_bytes, resolve_device
from fer.runtime.inputs import split_for_training
from fer.runtime.record import ModelRecord
from fer.train.job import TrainJob
from fer.train.loop import EpochLog, FitResult, TrainingData, fit


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
        live.log_metric("speed/bn_seconds", log.bn_seconds)
        live.next_step()

    return log_epoch


def train_model(job: TrainJob, checkpoint_path: str | Path, on_epoch=None, tuned_from: str | None = None) -> FitResult:
    """Load the job's train/val splits onto the device (or, over cfg.device_budget_mb, leave them in their
    memory-mapped files and read each batch from there), build its model, fit it and save the best checkpoint.

    tuned_from: the `models` entry whose settings were tuned into this job.
    """
    spec, cfg = job.spec, job.cfg
    device = resolve_device(cfg.device)
    label_set = split_label_set(job.split_dir)
    train, val = (load_split(job.split_dir, name, mmap_mode="r") for name in (TRAIN, VAL))
    whole = train[0].nbytes + val[0].nbytes <= data_budget_bytes(device, cfg.device_budget_mb)
    data = TrainingData(label_set, split_for_training(*train, device, whole), split_for_training(*val, device, whole))
    torch.manual_seed(job.seed)  # the same initial weights on every run
    model, input_spec = build_model(
        spec.arch, len(label_set.classes), spec.image_size, spec.pretrained, cfg.dropout, **spec.options
    )
    result = fit(model, input_spec, data, cfg, job.seed, on_epoch=on_epoch, desc=job.name)
    record = ModelRecord(
        name=job.name,
        arch=spec.arch,
        task=label_set.task,
        classes=list(label_set.classes),
        **input_spec.as_dict(),
        options=dict(spec.options),
        dropout=cfg.dropout,
        pretrained=spec.pretrained,
        train=cfg.model_dump(),
        seed=job.seed,
        tuned_from=tuned_from,
        best_epoch=result.best_epoch,
        val_acc=result.best_val_acc,
        trained_on=training_data(job.split_dir),
    )
    save_checkpoint(checkpoint_path, result.best_state, record)
    return result
