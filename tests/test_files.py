"""``univar.files.atomic_path``: the target changes only when the block completes, and no temporary is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from univar.files import atomic_path, atomic_write, write_json


class Boom(Exception):
    pass


def _beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_a_file_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp == target.with_name("out.txt.tmp")
        tmp.write_text("new")
        assert not target.exists()  # nothing at the target until the block ends
    assert target.read_text() == "new"
    assert _beside(target) == ["out.txt"]


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_a_failing_block_leaves_the_old_file_and_removes_the_temporary(tmp_path, exc):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise exc()
    assert target.read_text() == "old"
    assert _beside(target) == ["out.txt"]


def test_a_failing_block_creates_no_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise Boom()
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_left_by_a_killed_run_is_cleared_first(tmp_path):
    target = tmp_path / "model"
    stale = tmp_path / "model.tmp"
    stale.mkdir()
    (stale / "junk").write_text("x")
    with atomic_path(target) as tmp:
        assert not tmp.exists()
        tmp.mkdir()
        (tmp / "a").write_text("1")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert _beside(target) == ["model"]


def test_tmp_name_names_the_temporary(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_path(target, tmp_name="table.tmp.csv") as tmp:
        assert tmp == tmp_path / "table.tmp.csv"
        tmp.write_text("a\n")
    assert target.read_text() == "a\n"
    assert _beside(target) == ["table.csv"]


def test_a_folder_replaces_a_folder_only_on_success(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new").write_text("half")
            raise Boom()
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    assert _beside(target) == ["model"]

    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new"]  # replaced, not merged
    assert _beside(target) == ["model"]


def test_a_failing_rename_keeps_the_old_folder(tmp_path, monkeypatch):
    import os

    target = tmp_path / "model"
    target.mkdir()
    (target / "old").write_text("old")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(Path(src).name)
        if Path(src).name == "model.tmp":
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new").write_text("new")
    assert calls == ["model", "model.tmp", "model.old.tmp"]  # aside, the failed swap, and back
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    assert _beside(target) == ["model"]


def test_atomic_write_and_write_json_go_through_it(tmp_path, monkeypatch):
    import univar.files as files

    target = tmp_path / "r.json"
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'

    def fail(self, *args, **kwargs):
        self.write_bytes(b"{\n  \"a")  # a torn write, then the disk fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.Path, "write_text", fail)
    with pytest.raises(OSError):
        atomic_write(target, '{"a": 2}')
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert _beside(target) == ["r.json"]
