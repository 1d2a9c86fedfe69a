"""as_image_batch: every accepted layout becomes float32 (n, C, H, W)."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.images import as_image_batch


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((2, 5, 6), (2, 1, 5, 6)),
        ((2, 5, 6, 1), (2, 1, 5, 6)),
        ((2, 5, 6, 3), (2, 3, 5, 6)),
        ((2, 3, 5, 6), (2, 3, 5, 6)),
        ((2, 1, 5, 6), (2, 1, 5, 6)),
    ],
)
def test_layouts(shape, expected):
    X = np.random.default_rng(0).random(shape)
    out = as_image_batch(X)
    assert out.shape == expected and out.dtype == np.float32 and out.flags.c_contiguous


def test_channels_last_is_transposed_not_reshaped():
    X = np.random.default_rng(0).random((1, 4, 5, 3))
    np.testing.assert_array_equal(as_image_batch(X)[0, 2], X[0, :, :, 2].astype(np.float32))


def test_flattened_needs_image_shape():
    X = np.random.default_rng(0).random((2, 5, 6, 3))
    np.testing.assert_array_equal(
        as_image_batch(X.reshape(2, -1), image_shape=(5, 6, 3)), as_image_batch(X)
    )
    with pytest.raises(ValueError, match="image_shape"):
        as_image_batch(X.reshape(2, -1), image_shape=(5, 5))
    with pytest.raises(ValueError, match="image_shape"):
        as_image_batch(X.reshape(2, -1), image_shape=(0, 6))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="^images .*\\[0, 1\\]"):
        as_image_batch(-np.ones((1, 2, 2)), "images")
    with pytest.raises(TypeError, match="^images"):
        as_image_batch(np.array([[[1j]]]), "images")
