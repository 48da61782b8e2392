"""Training and prediction throughput: our on-device loop against a plain DataLoader + per-image transforms.

Both sides train the same architecture from the same initial weights at the same batch size for the same
number of images, in one process on one machine, so the ratio is what the input pipeline and the model
path (channels_last, no per-batch host syncs, inference mode) buy.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T

from fer.core.labels import FER2013
from fer.core.params import ModelParams, TrainParams
from fer.models import build_model
from fer.models.input_spec import InputSpec
from fer.runtime.device import clock, resolve_device
from fer.runtime.inference import cpu_latency_ms, predict_logits
from fer.runtime.inputs import to_device
from fer.tools.spread import Spread
from fer.train.loop import TrainingData, fit


@dataclass
class BenchRow:
    model: str
    device: str
    batch_size: int
    images_per_measurement: int
    ours: Spread  # training images/s of our loop
    baseline: Spread  # training images/s of the DataLoader baseline
    speedup: Spread  # ours / baseline within each interleaved pair
    latency_ms: float
    predict_images_per_s: float


class PerImageDataset(Dataset):
    """What typical FER repositories do: one PIL image at a time through torchvision transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: InputSpec, cfg: TrainParams):
        a = cfg.augment
        self.images, self.labels = images, labels
        self.transform = T.Compose(
            [
                T.RandomHorizontalFlip() if a.flip else T.Identity(),
                T.RandomAffine(
                    degrees=a.degrees, translate=(a.translate, a.translate), scale=(1 - a.scale, 1 + a.scale)
                ),
                T.Resize((spec.image_size, spec.image_size), antialias=True),
                T.PILToTensor(),
                T.ToDtype(torch.float32, scale=True),
                T.Normalize([spec.mean], [spec.std]),
                T.RandomErasing(p=a.erasing, value=0),
            ]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def baseline_images_per_s(
    model, spec: InputSpec, images, labels, cfg: TrainParams, device, n_images: int, num_workers: int = 0
) -> float:
    loader = DataLoader(
        PerImageDataset(images, labels, spec, cfg),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=num_workers,
        drop_last=True,
    )
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    seen, start = 0, clock(device)
    while seen < n_images:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the usual per-batch logging
            seen += len(y)
            if seen >= n_images:
                break
    return seen / (clock(device) - start)


def ours_images_per_s(model, spec: InputSpec, images, labels, cfg: TrainParams, device, n_images: int) -> float:
    """Our real training loop (fer.train.loop.fit) over n_images (epochs of the data as needed); validation and
    the BatchNorm re-estimate between epochs are outside the timed region."""
    train = to_device(images, labels, device)
    val = to_device(images[: cfg.batch_size], labels[: cfg.batch_size], device)
    per_epoch = min(n_images, len(images))
    run = cfg.model_copy(
        update={
            "epochs": math.ceil(n_images / per_epoch),
            "max_train_images": per_epoch,
            "warmup_fraction": 0.0,
            "patience": n_images,
        }
    )
    history = fit(model, spec, TrainingData(FER2013, train, val), run, seed=0).history
    return sum(h.images_per_second * h.seconds for h in history) / sum(h.seconds for h in history)


def bench_model(
    name: str,
    spec: ModelParams,
    cfg: TrainParams,
    images: np.ndarray,
    labels: np.ndarray,
    n_images: int,
    num_workers: int = 0,
    repeats: int = 5,
    min_seconds: float = 1.0,
) -> BenchRow:
    """Training throughput of both loops, measured so that the ratio holds from run to run.

    Each side gets a warm-up pass outside the timed region (allocator, oneDNN kernel choice); every
    measurement covers at least n_images and lasts at least min_seconds on the faster side; the two sides are
    measured in interleaved pairs, alternating which goes first, so a change in machine load hits both.
    """
    device = resolve_device(cfg.device)

    def fresh():
        torch.manual_seed(0)
        return build_model(spec.arch, len(FER2013.classes), spec.image_size, False, cfg.dropout, **spec.options)

    (ours_model, input_spec), (baseline_model, _) = fresh(), fresh()
    sides = {
        "ours": lambda n: ours_images_per_s(ours_model, input_spec, images, labels, cfg, device, n),
        "baseline": lambda n: baseline_images_per_s(
            baseline_model, input_spec, images, labels, cfg, device, n, num_workers
        ),
    }
    warm_up = cfg.batch_size * 4
    fastest = max(measure(warm_up) for measure in sides.values())
    per_measurement = max(n_images, math.ceil(fastest * min_seconds / cfg.batch_size) * cfg.batch_size)
    rates = {side: [] for side in sides}
    for repeat in range(repeats):
        for side in ("ours", "baseline") if repeat % 2 == 0 else ("baseline", "ours"):
            rates[side].append(sides[side](per_measurement))

    model = baseline_model.eval()
    uploaded = torch.as_tensor(images[:512]).to(device)
    predict_logits(model, uploaded, input_spec)  # warm-up
    start = clock(device)
    predict_logits(model, uploaded, input_spec)
    predict = len(uploaded) / (clock(device) - start)
    latency = cpu_latency_ms(model, uploaded.cpu(), input_spec, 32)
    return BenchRow(
        name,
        device.type,
        cfg.batch_size,
        per_measurement,
        Spread.of(rates["ours"]),
        Spread.of(rates["baseline"]),
        Spread.of([o / b for o, b in zip(rates["ours"], rates["baseline"])]),
        latency,
        predict,
    )


def markdown(rows: list[BenchRow]) -> str:
    """Medians with the range over the repeats in brackets."""
    lines = [
        "| model | device | batch | images per measurement | ours img/s | DataLoader img/s | speed-up "
        "| 1-image CPU ms | predict img/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.model} | {r.device} | {r.batch_size} | {r.images_per_measurement} | {r.ours.format()} "
        f"| {r.baseline.format()} | {r.speedup.format(1, 'x')} | {r.latency_ms:.2f} "
        f"| {r.predict_images_per_s:.0f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
