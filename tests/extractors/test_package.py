"""Importing the packages does not import torch (it is an optional, 5 GB dependency)."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_torch():
    code = (
        "import sys, backdoor_curves, extractors; "
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_image_datasets_are_registered_loaders():
    # pyproject.toml's entry points: backdoor_curves finds the loader without importing extractors
    from backdoor_curves.study.loaders import get_data_loader
    from extractors import DATASETS, load_backdoor_data

    for name in DATASETS:
        if name != "mnist":  # built into backdoor_curves
            assert get_data_loader(name) is load_backdoor_data
