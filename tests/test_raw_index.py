"""Image files inside the project are indexed by the fetch stage, not copied: align decodes them from the source,
with the same pixels a decoded copy would hold, and refuses a file that changed after fetch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, REPO_PARAMS
from PIL import Image

from fer.core.emotions import EMOTIONS
from fer.core.errors import FerError
from fer.data import rawdata
from fer.data.aligned_output import write_aligned
from fer.data.indexed import HASH_COLUMN, IndexedImages
from fer.data.sources.local import read_local

MAX_SIDE = REPO_PARAMS.data.max_side


def write_photos(root: Path, per_class: int = 3) -> Path:
    """<Class>/ folders of JPEG and PNG photos of varied sizes, some larger than data.max_side, some in colour."""
    rng = np.random.default_rng(0)
    for name in EMOTIONS[:3]:
        (root / name.title()).mkdir(parents=True)
        for i in range(per_class):
            size = (int(rng.integers(40, 2 * MAX_SIDE)), int(rng.integers(40, 2 * MAX_SIDE)))
            image = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
            image = image if i % 2 else image.convert("L")
            image.save(root / name.title() / f"{i}.{'png' if i == 2 else 'jpg'}", quality=90)
    (root / EMOTIONS[0].title() / "broken.jpg").write_bytes(b"not a jpeg")  # a counted skip, as for a decoded copy
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (the working folder, as for a stage) with photos under data/."""
    monkeypatch.chdir(tmp_path)
    write_photos(tmp_path / "data" / "faces")
    return tmp_path


def test_a_folder_inside_the_project_is_indexed_and_decodes_as_a_copy_would(project):
    indexed = read_local(Path("data/faces"), "folder", MAX_SIDE)
    copied = read_local(project / "data" / "faces", "folder", MAX_SIDE)  # outside-style (absolute): copied
    assert isinstance(indexed.images, IndexedImages) and not isinstance(copied.images, IndexedImages)
    assert indexed.skipped == copied.skipped == 1 and len(indexed) == len(copied) == 9
    rawdata.save(indexed, project / "raw")
    assert sorted(p.name for p in (project / "raw").iterdir()) == ["labels.json", rawdata.MANIFEST]
    loaded = rawdata.load(project / "raw")
    assert list(loaded.source) == [f"data/faces/{Path(s).relative_to(project / 'data/faces')}" for s in copied.source]
    assert np.array_equal(loaded.labels, copied.labels) and loaded.usage == copied.usage
    assert max(max(image.shape) for image in loaded.images[:]) == MAX_SIDE  # shrunk as fetch shrank them
    assert all(np.array_equal(a, b) for a, b in zip(loaded.images[:], copied.images[:]))
    picked = loaded.subset(np.array([1, 7]), loaded.labels[[1, 7]], loaded.label_set)
    assert np.array_equal(picked.images[1], copied.images[7])


def test_align_writes_the_same_files_from_an_index_as_from_a_decoded_copy(project):
    rawdata.save(read_local(Path("data/faces"), "folder", MAX_SIDE), project / "indexed")
    rawdata.save(read_local(project / "data" / "faces", "folder", MAX_SIDE), project / "copied")
    for raw in ("indexed", "copied"):
        aligned = project / f"aligned-{raw}"
        write_aligned(rawdata.load(project / raw), None, REPO_PARAMS.align, aligned, project / "samples.png")
    for name in ("images.npy", "labels.json"):
        assert (project / "aligned-indexed" / name).read_bytes() == (project / "aligned-copied" / name).read_bytes()


def test_a_source_file_changed_or_lost_after_fetch_is_a_one_line_error_naming_it(project):
    rawdata.save(read_local(Path("data/faces"), "folder", MAX_SIDE), project / "raw")
    raw = rawdata.load(project / "raw")
    changed = Path(raw.source[0])
    Image.new("L", (50, 50), 128).save(changed, format="JPEG")
    with pytest.raises(FerError, match=rf"^{changed}: changed since the fetch stage indexed it"):
        raw.images[0:2]
    changed.unlink()
    with pytest.raises(FerError, match=rf"^{changed}: not found"):
        raw.images[0]
    assert np.asarray(raw.images[1]).ndim == 2  # the other files still read


def test_a_zip_and_files_outside_the_project_are_copied(project):
    shutil.make_archive("data/faces", "zip", "data/faces")
    assert not isinstance(read_local(Path("data/faces.zip"), "zip", MAX_SIDE).images, IndexedImages)
    outside = Path("..") / project.name / "data" / "faces"
    assert not isinstance(read_local(outside, "folder", MAX_SIDE).images, IndexedImages)


def _dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    return subprocess.run(["dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_dvc_sees_a_changed_source_image_and_reruns_with_the_projects_linked_cache(tmp_path, monkeypatch):
    """The data stages under the real dvc, with the project's .dvc/config (cache.type: links, read-only): an
    edited photo re-runs fetch and align, and the stages' new files replace the linked old ones."""
    monkeypatch.chdir(tmp_path)
    for name in ("stages", "dvc.yaml", "params.yaml"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "fer", tmp_path / "fer", ignore=shutil.ignore_patterns("__pycache__"))
    params = (tmp_path / "params.yaml").read_text().replace("source: synthetic ", "source: folder    ", 1)
    (tmp_path / "params.yaml").write_text(params.replace("path: data ", "path: data/faces ", 1))
    write_photos(tmp_path / "data" / "faces", per_class=10)  # split stratifies: a few images per class
    assert subprocess.run(["git", "init", "-q"], cwd=tmp_path).returncode == 0  # autostage needs one
    for args in (["init", "-q"], ["config", "core.analytics", "false"]):
        assert _dvc(args, tmp_path).returncode == 0
    shutil.copy(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    repro = _dvc(["repro", "split"], tmp_path)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    manifest = (tmp_path / "outputs" / "raw" / rawdata.MANIFEST).read_text()
    assert HASH_COLUMN in manifest.splitlines()[0] and not (tmp_path / "outputs" / "raw" / rawdata.PIXELS).exists()
    images = tmp_path / "outputs" / "aligned" / "images.npy"
    # Hard-linked to its copy in the cache (two names, one file), which DVC made read-only.
    assert images.stat().st_nlink == 2 and images.stat().st_mode & 0o222 == 0
    before = images.read_bytes()

    Image.new("L", (60, 60), 30).save(tmp_path / "data" / "faces" / EMOTIONS[0].title() / "0.jpg")
    assert "fetch" in set(json.loads(_dvc(["status", "--json"], tmp_path).stdout))
    repro = _dvc(["repro", "split"], tmp_path)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert "Running stage 'align'" in repro.stdout and images.read_bytes() != before
    assert "Data and pipelines are up to date." in _dvc(["status", "split"], tmp_path).stdout
