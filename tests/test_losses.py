"""Loss values and derivatives against finite differences and their definitions."""

import numpy as np
import pytest

from backdoor_curves.losses import HINGE, LOGISTIC, SQUARED


@pytest.mark.parametrize("loss", [LOGISTIC, SQUARED], ids=["logistic", "squared"])
def test_smooth_derivatives(loss):
    rng = np.random.default_rng(0)
    y = rng.choice([-1.0, 1.0], 50)
    f = rng.normal(scale=3, size=50)
    eps = 1e-6
    np.testing.assert_allclose(
        loss.d1(y, f),
        (loss.value(y, f + eps) - loss.value(y, f - eps)) / (2 * eps),
        rtol=1e-6,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        loss.d2(y, f), (loss.d1(y, f + eps) - loss.d1(y, f - eps)) / (2 * eps), rtol=1e-5, atol=1e-8
    )


def test_definitions():
    y = np.array([1.0, -1.0, 1.0])
    f = np.array([0.0, 2.0, 3.0])
    np.testing.assert_allclose(LOGISTIC.value(y, f), np.log(1 + np.exp(-y * f)))
    np.testing.assert_allclose(SQUARED.value(y, f), [1.0, 9.0, 4.0])
    np.testing.assert_allclose(HINGE.value(y, f), [1.0, 3.0, 0.0])
    np.testing.assert_allclose(HINGE.d1(y, f), [-1.0, 1.0, 0.0])
    assert LOGISTIC.value(np.array([1.0]), np.array([-800.0]))[0] == pytest.approx(800.0)
