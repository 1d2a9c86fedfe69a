"""Bad inputs of an extractor's differentiable forward pass (``extractor.feature_map()``, an
:class:`extractors.feature_map.ImageFeatureMap`): tensors of a wrong layout or kind, and the
module asked of an extractor that is not fitted.

The extractor is a randomly initialised ResNet18 (``weights=None``, no resize, nothing is
downloaded), shared with ``test_bad_extractors.py`` through the context.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:  # not imported here: it takes seconds
    pytest.skip("torchvision is not installed", allow_module_level=True)

from bad_input_catalogue import Case, EntryPoint, Map, check_python, register  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import extractors  # noqa: E402

NAN = math.nan


def _fitted(ctx):
    """The fitted random ResNet18 of the context (the same key as test_bad_extractors.py)."""
    if "resnet" not in ctx.__dict__:
        ctx.__dict__["resnet"] = extractors.ResNetFeatures(
            weights=None, resize=None, batch_size=8
        ).fit()
    return ctx.__dict__["resnet"]


def call_baseline(ctx):
    _, _, X_test, _ = ctx.images  # 14 x 14 digits in [0, 1]
    return {"x": torch.as_tensor(X_test[:2], dtype=torch.float32)}


def call_feature_map(ctx, kw):
    features = _fitted(ctx).feature_map()(**kw)
    assert features.shape == (len(kw["x"]), 512)


def _spoil(fn):
    return Map(lambda x: fn(x.clone()))


def _first_nan(x):
    x.view(-1)[0] = NAN
    return x


CALL_CASES = [
    Case("wrong_dimensions", "x", _spoil(lambda x: x.reshape(len(x), -1)), label="flat"),
    Case("wrong_dimensions", "x", _spoil(lambda x: x[0, 0]), label="one_image_row"),
    Case("wrong_dimensions", "x", _spoil(lambda x: x[:, None, :, :, None]), label="five_axes"),
    Case("wrong_dimensions", "x", _spoil(lambda x: torch.stack([x, x], 1)), label="2_first"),
    Case("wrong_dimensions", "x", _spoil(lambda x: torch.stack([x, x], -1)), label="2_last"),
    Case("wrong_dimensions", "x", _spoil(lambda x: torch.stack([x] * 4, -1)), label="rgba"),
    Case("empty", "x", _spoil(lambda x: x[:, :0])),
    Case("nan", "x", _spoil(_first_nan)),
    Case("inf", "x", _spoil(lambda x: x / 0.0)),
    Case("wrong_type", "x", Map(lambda x: x.numpy()), label="numpy"),
    Case("wrong_type", "x", None),
    Case("wrong_type", "x", _spoil(lambda x: (x * 255).to(torch.uint8)), label="uint8"),
    Case("complex", "x", _spoil(lambda x: x.to(torch.complex64)), error=TypeError),
    Case("string", "x", Map(lambda x: np.asarray(x).astype(str))),
]


ENTRIES = [
    EntryPoint("ResNetFeatures.feature_map()(x)", call_baseline, call_feature_map, CALL_CASES),
    EntryPoint(
        "ResNetFeatures.feature_map",
        lambda ctx: {"extractor": _fitted(ctx)},
        lambda ctx, kw: kw["extractor"].feature_map(),
        [
            Case(
                "wrong_type",
                "extractor",
                Map(clone),
                error=NotFittedError,
                names="fit",
                label="not_fitted",
            )
        ],
    ),
]

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (so every failure below is the bad input's)."""
    entry.call(ctx, entry.baseline(ctx))


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
