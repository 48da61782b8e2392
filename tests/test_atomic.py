import json
import os
import threading

import pytest

from fer.core.storage import atomic_path, write_json


def test_failed_write_leaves_old_target_and_no_temp_files(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]


def test_successful_write_replaces_folder_and_file(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    write_json(tmp_path / "m" / "x.json", {"a": 1})
    assert json.loads((tmp_path / "m" / "x.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "out"]


def test_temp_folders_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    killed = tmp_path / ".raw.999999999.abc.tmp"  # no such pid
    old_style = tmp_path / ".raw.k3j2_x.tmp"  # written before temp names carried a pid
    live = tmp_path / f".raw.{os.getpid()}.def.tmp"  # a writer still at work
    for folder in (killed, old_style, live):
        (folder / "raw").mkdir(parents=True)
    with atomic_path(tmp_path / "raw") as tmp:
        tmp.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["raw", live.name])


def test_a_replaced_folder_is_never_missing(tmp_path):
    target = tmp_path / "split"
    target.mkdir()
    missing = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            if not target.is_dir():
                missing.append(True)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for round_ in range(30):
            with atomic_path(target) as tmp:
                tmp.mkdir()
                for i in range(300):
                    (tmp / f"{i}.txt").write_text(str(round_))
    finally:
        stop.set()
        watcher.join()
    assert not missing
    assert (target / "0.txt").read_text() == "29"
