"""benchmarks/nn_peers: the model / data / device options, without the peer libraries.

Oracles: the committed table ``benchmarks/results/nn_peers.md`` (rendered before the options
existed) must come out of ``report.markdown`` unchanged from its JSON below the header, which
now states model, data and device; the command line must stop before any training when CIFAR-10
has no ``--root`` or its folder is missing, naming what is missing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCH / "nn_peers" / "bench_nn_peers.py"
_spec = importlib.util.spec_from_file_location("nn_peers_report", BENCH / "nn_peers" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


def _table(text: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index(next(v for v in lines if v.startswith("| epochs"))) :]


def test_committed_table_renders_unchanged_with_model_data_and_device():
    res = json.loads((BENCH / "results" / "nn_peers.json").read_text())
    committed = (BENCH / "results" / "nn_peers.md").read_text()
    text = report.markdown(res)
    assert _table(text) == _table(committed)
    header = text.splitlines()[2]
    assert header.startswith(f"Model: {res['meta']['model']}.")
    assert "Data: the embedded ten-class digits (14x14)." in header
    assert header.endswith("Device: cpu.")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_cifar10_without_root_is_refused():
    out = _run("--dataset", "cifar10", "--model", "resnet18")
    assert out.returncode == 2 and "--root" in out.stderr


def test_cifar10_missing_folder_fails_fast_naming_it(tmp_path):
    pytest.importorskip("torchvision")
    out = _run("--dataset", "cifar10", "--root", str(tmp_path), "--model", "resnet18",
               "--out", str(tmp_path / "out.json"))  # fmt: skip
    assert out.returncode != 0 and "train" not in out.stdout  # stopped before any training
    last = out.stderr.strip().splitlines()[-1]
    assert "not available" in last and f"{tmp_path}/cifar-10-batches-py/" in last
    assert not (tmp_path / "out.json").exists()
