"""Training and prediction throughput: our on-device loop against a plain DataLoader + per-image transforms.

Both sides train the same architecture from the same initial weights at the same batch size for the same
number of images, in one process on one machine, so the ratio is what the input pipeline and the model
path (channels_last, no per-batch host syncs, inference mode) buy.
"""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2 as T

from fer.core.labels import EMOTIONS
from fer.core.params import ModelParams, TrainParams
from fer.models import build_model
from fer.models.input_spec import InputSpec
from fer.runtime.device import clock, resolve_device
from fer.runtime.inference import cpu_latency_ms, predict_logits
from fer.runtime.inputs import to_device
from fer.train.loop import fit


@dataclass
class BenchRow:
    model: str
    device: str
    batch_size: int
    ours_images_per_s: float
    baseline_images_per_s: float
    latency_ms: float
    predict_images_per_s: float

    @property
    def speedup(self) -> float:
        return self.ours_images_per_s / self.baseline_images_per_s


class PerImageDataset(Dataset):
    """What typical FER repositories do: one PIL image at a time through torchvision transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: InputSpec, cfg: TrainParams):
        a = cfg.augment
        self.images, self.labels = images, labels
        self.transform = T.Compose([
            T.RandomHorizontalFlip() if a.flip else T.Identity(),
            T.RandomAffine(degrees=a.degrees, translate=(a.translate, a.translate), scale=(1 - a.scale, 1 + a.scale)),
            T.Resize((spec.image_size, spec.image_size), antialias=True),
            T.PILToTensor(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize([spec.mean], [spec.std]),
            T.RandomErasing(p=a.erasing, value=0),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def baseline_images_per_s(model, spec: InputSpec, images, labels, cfg: TrainParams, device, n_images: int,
                          num_workers: int = 0) -> float:
    loader = DataLoader(PerImageDataset(images, labels, spec, cfg), batch_size=cfg.batch_size,
                        shuffle=True, num_workers=num_workers, drop_last=True)
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
    """One epoch of the real training loop (fer.train.loop.fit) capped at n_images; validation is not timed."""
    train = to_device(images, labels, device)
    val = to_device(images[:cfg.batch_size], labels[:cfg.batch_size], device)
    one_epoch = cfg.model_copy(update={"epochs": 1, "max_train_images": n_images, "warmup_fraction": 0.0})
    return fit(model, spec, len(EMOTIONS), train, val, one_epoch, seed=0).history[0].images_per_second


def bench_model(name: str, spec: ModelParams, cfg: TrainParams, images: np.ndarray, labels: np.ndarray,
                n_images: int, num_workers: int = 0) -> BenchRow:
    device = resolve_device(cfg.device)

    def fresh():
        torch.manual_seed(0)
        return build_model(spec.arch, len(EMOTIONS), spec.image_size, False, cfg.dropout, **spec.options)

    # A warm-up pass each, so one-off costs (allocator, oneDNN kernel selection) are not billed to either side.
    model, input_spec = fresh()
    ours_images_per_s(model, input_spec, images, labels, cfg, device, cfg.batch_size * 2)
    ours = ours_images_per_s(model, input_spec, images, labels, cfg, device, n_images)
    model, input_spec = fresh()
    baseline_images_per_s(model, input_spec, images, labels, cfg, device, cfg.batch_size * 2, num_workers)
    baseline = baseline_images_per_s(model, input_spec, images, labels, cfg, device, n_images, num_workers)

    model = model.eval()
    uploaded = torch.as_tensor(images[:512]).to(device)
    start = clock(device)
    predict_logits(model, uploaded, input_spec)
    predict = len(uploaded) / (clock(device) - start)
    latency = cpu_latency_ms(model, uploaded.cpu(), input_spec, 32)
    return BenchRow(name, device.type, cfg.batch_size, ours, baseline, latency, predict)


def markdown(rows: list[BenchRow]) -> str:
    lines = [
        "| model | device | batch | ours img/s | DataLoader img/s | speed-up | 1-image CPU ms | predict img/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r.model} | {r.device} | {r.batch_size} | {r.ours_images_per_s:.0f} | {r.baseline_images_per_s:.0f} "
              f"| {r.speedup:.1f}x | {r.latency_ms:.2f} | {r.predict_images_per_s:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"
