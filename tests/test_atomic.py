"""Atomic writes create files with the permissions the umask gives, as any other tool would."""

from __future__ import annotations

import os
import stat

import pytest

from cnnhub import atomic


@pytest.fixture
def umask():
    """Set the process umask for one test; restore it afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic.write_json(tmp_path / "a.json", {"x": 1})
    with atomic.atomic_path(tmp_path / "b.weights.h5") as tmp:
        assert tmp.name.startswith(".b.") and tmp.name.endswith(".tmp.weights.h5")
        tmp.write_bytes(b"weights")  # a writer that opens the existing temporary file
    for name in ("a.json", "b.weights.h5"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.weights.h5"]


def test_a_failed_write_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(tmp_path / "keep.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "old"
