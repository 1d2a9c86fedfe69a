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
