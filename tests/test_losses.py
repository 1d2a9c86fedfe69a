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


# ---------------------------------------------------------------------------- large margins
# The logistic loss at every margin m = y f in +-[1e-8, 700] against 256-bit mpmath: the value and
# its three derivatives to a few ulps of relative error. s (1 - s) loses everything past m ~ 37
# (1 - s rounds to 0 while the curvature is ~exp(-m)), 1 - 2 s cancels near m = 0.
MARGINS = np.geomspace(1e-8, 700.0, 150)
MARGINS = np.r_[-MARGINS[::-1], MARGINS]
#: Relative error allowed: a few roundings of elementary functions (exp, log1p, tanh: <= 1 ulp in
#: glibc) and products; measured at most 2 eps (d3) on this range.
FEW_ULPS = 4 * np.finfo(float).eps


def _mp_closed_forms(mpmath, m):
    """(l, dl/dm, d2l/dm2, d3l/dm3) of log(1 + exp(-m)) at m, closed forms, exact at 256 bits."""
    sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
    s, r = sig(m), sig(-m)
    return mpmath.log1p(mpmath.exp(-m)), -r, s * r, s * r * (r - s)


def test_mpmath_closed_forms_are_the_derivatives_of_the_loss():
    """The oracle's closed forms against mpmath's own numerical derivatives of log1p(exp(-m))."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workprec(256):
        for m in (-30.0, -3.0, -1e-4, 1e-4, 0.5, 7.0, 30.0):
            loss = lambda t: mpmath.log1p(mpmath.exp(-t))  # noqa: E731
            forms = _mp_closed_forms(mpmath, mpmath.mpf(m))
            for n in (1, 2, 3):
                d = mpmath.diff(loss, mpmath.mpf(m), n)
                assert abs(d - forms[n]) <= mpmath.mpf(10) ** -40 * abs(forms[n]), (m, n)


@pytest.mark.parametrize("y", [1.0, -1.0])
def test_logistic_keeps_full_relative_accuracy_at_large_margins(y):
    mpmath = pytest.importorskip("mpmath")
    f = MARGINS / y  # exact: y is +-1, so m = y f runs over MARGINS
    with mpmath.workprec(256):
        ref = np.array(
            [[float(v) for v in _mp_closed_forms(mpmath, mpmath.mpf(m))] for m in MARGINS]
        )
    # chain rule from m = y f: d^n l/df^n = y^n d^n l/dm^n
    ref *= np.array([1.0, y, 1.0, y])
    assert np.all(ref != 0) and np.all(np.isfinite(ref))  # every reference is a normal float
    yy = np.full_like(f, y)
    got = np.column_stack([LOGISTIC.value(yy, f), LOGISTIC.d1(yy, f), LOGISTIC.d2(yy, f),
                           LOGISTIC.d3(yy, f)])  # fmt: skip
    rel = np.abs(got - ref) / np.abs(ref)
    for k, name in enumerate(["value", "d1", "d2", "d3"]):
        worst = int(np.argmax(rel[:, k]))
        assert rel[worst, k] <= FEW_ULPS, (name, MARGINS[worst], got[worst, k], ref[worst, k])


def test_logistic_curvature_decays_like_exp_of_the_margin():
    """Where the old s (1 - s) returned exactly 0: sigma(m) sigma(-m) = exp(-m) / (1 + exp(-m))^2
    and the third derivative keeps its sign, -sign(f) (d3 = -tanh(f / 2) sigma(m) sigma(-m))."""
    m = np.array([40.0, 100.0, 700.0])
    one = np.ones_like(m)
    np.testing.assert_allclose(LOGISTIC.d2(one, m), np.exp(-m) / (1 + np.exp(-m)) ** 2,
                               rtol=FEW_ULPS)  # fmt: skip
    assert np.all(LOGISTIC.d2(-one, -m) == LOGISTIC.d2(one, m))
    for y in (one, -one):
        assert np.all(LOGISTIC.d3(y, m) < 0) and np.all(LOGISTIC.d3(y, -m) > 0)
