"""backdoor_curves.nn.weights: the one offline weight lookup, re-exported by extractors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backdoor_curves.nn import weights


def test_extractors_reexport_the_same_lookup():
    import extractors
    import extractors.weights as ext_weights

    for name in weights.__all__:
        assert getattr(ext_weights, name) is getattr(weights, name)
    assert extractors.resolve_weights is weights.resolve_weights


def test_random_weights_need_no_file():
    resolved = weights.resolve_weights("resnet18", None, random_state=4)
    assert resolved.path is None and resolved.identity == "random:4"


def test_importing_the_lookup_does_not_import_torch():
    code = (
        "import sys, backdoor_curves.nn.weights, backdoor_curves.nn;"
        "sys.exit(any(m.split('.')[0] in ('torch', 'torchvision') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_missing_pretrained_file_names_file_and_directory(tmp_path, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth") as info:
        weights.resolve_weights("resnet50", "imagenet")
    assert str(tmp_path) in str(info.value)
