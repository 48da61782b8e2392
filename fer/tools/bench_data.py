"""`fer bench-data`: the data stages (fetch, align, split) on stand-ins of the three big datasets, timed.

The stand-ins have the real datasets' counts, image sizes and Kaggle layouts, and drawn faces as content
(fer.data.sources.synthetic): FER2013's csv (35,887 48x48 rows), a Human Face Emotions-like folder (59,099
photos of 120-400 px in <Class>/ folders, aligned with MTCNN) and CelebA's layout (202,599 178x218 JPEGs with
attributes). Drawing every face would take hours, so a pool of drawn faces is reused, each file resized and
given its own noise, so that no two files hold the same pixels. Each stage runs as the pipeline runs it (its
stage script, in a project folder of its own) and is measured from outside: wall time and the peak resident
memory of its process (fer.tools.peak_memory).
"""

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml
from PIL import Image

from fer.core.emotions import EMOTIONS
from fer.core.errors import FerError
from fer.data.sources import celeba
from fer.data.sources.synthetic import generate, generate_attributes

REPO = Path(__file__).resolve().parents[2]
FULL_SIZES = {"fer2013_csv": 35_887, "human_face_emotions": 59_099, "celeba": 202_599}
# Faces drawn for each stand-in's pool (drawing is the slow part: ~0.02-0.1 s a face).
POOL = 2000
PHOTO_POOL_SIDE = 96
PHOTO_SIDES = (120, 400)
CELEBA_SIZE = (178, 218)  # width, height
CSV_USAGES = ("Training", "PublicTest", "PrivateTest")
STAGES = ("fetch", "align", "split")


@dataclass
class StandIn:
    name: str
    images: int
    params: dict  # the params.yaml sections that differ from the repository's
    write: Callable[[Path, int, int], None]  # (folder, images, seed)


def _noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image with a little noise of its own: pooled faces become distinct files."""
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def write_fer_csv(folder: Path, n: int, seed: int) -> None:
    """fer2013.csv: emotion, pixels (2304 numbers), Usage; written a block of rows at a time."""
    pool = generate(min(n, POOL), 48, seed, photo=False)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "fer2013.csv", "w") as out:
        out.write("emotion,pixels,Usage\n")
        for start in range(0, n, POOL):
            rows = range(start, min(n, start + POOL))
            out.writelines(
                f"{pool.labels[i % len(pool)]},{' '.join(map(str, _noisy(pool.images[i % len(pool)], rng).ravel()))},"
                f"{CSV_USAGES[rng.choice(3, p=(0.8, 0.1, 0.1))]}\n"
                for i in rows
            )


def write_photo_folder(folder: Path, n: int, seed: int) -> None:
    """<Class>/<i>.jpg photos of random sizes (longer side 120-400 px, assorted aspect ratios), some in colour."""
    pool = generate(min(n, POOL // 4), PHOTO_POOL_SIDE, seed, photo=True)
    rng = np.random.default_rng(seed)
    for name in EMOTIONS:
        (folder / name.title()).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % len(pool)
        side, aspect = rng.uniform(*PHOTO_SIDES), rng.uniform(0.75, 1.33)
        size = (round(side * min(1, aspect)), round(side * min(1, 1 / aspect)))
        photo = _noisy(cv2.resize(pool.images[k], size, interpolation=cv2.INTER_LINEAR), rng)
        image = Image.fromarray(photo).convert("RGB") if i % 3 == 0 else Image.fromarray(photo)
        image.save(folder / EMOTIONS[pool.labels[k]].title() / f"{i:06d}.jpg", quality=90)


def write_celeba(folder: Path, n: int, seed: int) -> None:
    """CelebA's Kaggle layout (fer.data.sources.celeba): 178x218 JPEGs with attributes and a partition."""
    pool = generate_attributes(min(n, POOL), 64, seed)
    rng = np.random.default_rng(seed)
    images = folder / celeba.IMAGES_FOLDER / celeba.IMAGES_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, image_id in enumerate(ids):
        face = cv2.resize(pool.images[i % len(pool)], CELEBA_SIZE, interpolation=cv2.INTER_LINEAR)
        Image.fromarray(_noisy(face, rng)).convert("RGB").save(images / image_id, quality=celeba.JPEG_QUALITY)
    labels = pool.labels[np.arange(n) % len(pool)]
    attributes = pd.DataFrame(np.where(labels == 1, 1, -1), columns=list(pool.label_set.classes))
    attributes.insert(0, celeba.ID_COLUMN, ids)
    attributes.to_csv(folder / celeba.ATTRIBUTES_FILE, index=False)
    pd.DataFrame({celeba.ID_COLUMN: ids, celeba.PARTITION_COLUMN: celeba.random_partition(n, seed, 0.1, 0.1)}).to_csv(
        folder / celeba.PARTITION_FILE, index=False
    )


STAND_INS = (
    StandIn(
        "fer2013_csv",
        FULL_SIZES["fer2013_csv"],
        {"data": {"source": "csv", "path": "data/fer2013_csv/fer2013.csv"}},
        write_fer_csv,
    ),
    StandIn(
        "human_face_emotions",
        FULL_SIZES["human_face_emotions"],
        {"data": {"source": "folder", "path": "data/human_face_emotions"}, "align": {"method": "mtcnn"}},
        write_photo_folder,
    ),
    StandIn(
        "celeba",
        FULL_SIZES["celeba"],
        {"task": "attributes", "data": {"source": "folder", "path": "data/celeba"}},
        write_celeba,
    ),
)


def _merged(base: dict, changes: dict) -> dict:
    return {key: _merged(base[key], value) if isinstance(value, dict) else value for key, value in changes.items()} | {
        key: value for key, value in base.items() if key not in changes
    }


def prepare(stand_in: StandIn, project: Path, images: int, seed: int = 0) -> None:
    """A project folder holding the stand-in under data/ and a params.yaml reading it."""
    project.mkdir(parents=True, exist_ok=True)
    params = _merged(yaml.safe_load((REPO / "params.yaml").read_text()), stand_in.params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stand_in.write(project / "data" / stand_in.name, images, seed)


def stage_command(stage: str) -> list[str]:
    """The stage script with dvc.yaml's arguments, for a project folder using the default paths."""
    script = str(REPO / "stages" / f"{stage}.py")
    return [
        sys.executable,
        script,
        *{
            "fetch": ["--out", "outputs/raw", "--metrics", "metrics/fetch.json"],
            "align": [
                "--raw",
                "outputs/raw",
                "--out",
                "outputs/aligned",
                "--metrics",
                "metrics/align.json",
                "--samples",
                "plots/align_samples.png",
            ],
            "split": ["--aligned", "outputs/aligned", "--out", "outputs/split", "--metrics", "metrics/split.json"],
        }[stage],
    ]


def run_stage(project: Path, stage: str) -> tuple[float, int]:
    """Run one stage in `project`: (wall seconds, peak resident bytes of its process), measured by
    fer.tools.peak_memory (see there why not from this process)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log, result = project / f"{stage}.log", project / f"{stage}.peak.json"
    with open(log, "wb") as output:
        returncode = subprocess.call(
            [sys.executable, "-m", "fer.tools.peak_memory", str(result), *stage_command(stage)],
            cwd=project,
            env=env,
            stdout=output,
            stderr=output,
        )
    if returncode:
        last = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise FerError(f"bench-data: {stage} failed on {project.name} ({last}); see {log}")
    measured = json.loads(result.read_text())
    return measured["seconds"], measured["peak_bytes"]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def bench_data(root: Path, scale: float, only: tuple[str, ...] = ()) -> list[dict]:
    """Each stand-in at `scale` times its full size, written under root, then its stages: one row per stand-in."""
    rows = []
    for stand_in in STAND_INS:
        if only and stand_in.name not in only:
            continue
        images = max(100, math.ceil(stand_in.images * scale))
        project = root / stand_in.name
        start = time.perf_counter()
        prepare(stand_in, project, images)
        row = {
            "dataset": stand_in.name,
            "images": images,
            "write_s": time.perf_counter() - start,
            "source_bytes": folder_bytes(project / "data"),
        }
        for stage in STAGES:
            row[f"{stage}_s"], row[f"{stage}_peak"] = run_stage(project, stage)
            print(
                f"{stand_in.name} {stage}: {row[f'{stage}_s']:.1f} s, {row[f'{stage}_peak'] / 2**30:.2f} GB", flush=True
            )
        row["raw_bytes"] = folder_bytes(project / "outputs" / "raw")
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| dataset | images | fetch | align | split | source on disk | raw output |",
        "|---|---:|---|---|---|---:|---:|",
    ]
    for r in rows:
        stages = " | ".join(f"{r[f'{s}_s']:.1f} s, {r[f'{s}_peak'] / 2**30:.2f} GB" for s in STAGES)
        lines.append(
            f"| {r['dataset']} | {r['images']:,} | {stages} | {r['source_bytes'] / 2**20:,.0f} MB | "
            f"{r['raw_bytes'] / 2**20:,.0f} MB |"
        )
    return "\n".join(lines)
