"""Atomic file writing (backdoor_curves._io)."""

from __future__ import annotations

import os
import stat

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.figure import Figure

from backdoor_curves._io import atomic_write, save_figure


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "grid.csv"
    atomic_write(target, lambda f: f.write("first\n"))
    assert target.read_text() == "first\n"

    def broken(f):
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "first\n"
    assert sorted(os.listdir(tmp_path)) == ["grid.csv"]  # no temporary file left behind


def test_atomic_write_text_and_binary(tmp_path):
    text = atomic_write(str(tmp_path / "a.md"), lambda f: f.write("λ = 1/C\n"))
    assert text == tmp_path / "a.md"  # a Path, even from a str
    assert text.read_bytes() == "λ = 1/C\n".encode()  # UTF-8 whatever the locale
    assert stat.S_IMODE(text.stat().st_mode) == 0o644
    raw = atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\xff"), binary=True)
    assert raw.read_bytes() == b"\x00\xff"


def test_save_figure_writes_a_png(tmp_path):
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(os.listdir(tmp_path)) == ["f.png"]
