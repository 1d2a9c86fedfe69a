"""Property-based tests of the poisoning (backdoor_curves.attacks) on random small image sets.

Drawn: the number of training and test images, the image shape (grayscale or channels last),
the float dtype, the two labels (or k classes), the poisoning fraction, the trigger (BadNets of
any size, also larger than the image; the invisible grid of any intensity) and the seeds.
Asserted against what the docstrings promise, computed here independently of the package:

- sizes: ``n_poison = floor(p n + 1e-9)``; fractions are drawn as ratios num/den, for which that
  rule is the exact integer ``(num * n) // den`` (the slack only absorbs the rounding of p * n),
  so no draw sits on a floating-point borderline;
- the chosen points are ``sorted(default_rng(seed).choice(n, n_poison, replace=False))`` (of the
  eligible points, multi-class), D keeps the others in order, D and P are disjoint and cover the
  training set;
- the labels of P are the attacker's (the other class; the target; c + 1 mod k);
- the trigger is on the pixels: the BadNets patch of the source class in the bottom-right corner
  and the rest untouched; ``min(1, x + b)`` on the even rows and columns and the rest untouched;
- V is the test set as given, V_t every (all-to-one: every non-target) test image triggered;
- every image stays in [0, 1]; the same seed gives identical arrays; chunking changes nothing;
- a draw the functions must refuse (P empty, D without a class, too few eligible points, no
  clean point left, V_t empty, a patch larger than the image) raises ValueError.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backdoor_curves.attacks.multiclass import poison_multiclass
from backdoor_curves.attacks.poisoning import n_poison_points, poison, poison_images
from backdoor_curves.attacks.triggers import BadNetsPatch, InvisibleGrid

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)
LABEL_PAIRS = [(0, 1), (3, 7), (-1, 1), ("cat", "dog"), (False, True)]


# ---------------------------------------------------------------------------- strategies
@st.composite
def fractions(draw, high: float = 1.0) -> tuple[float, int, int]:
    """A fraction num/den in (0, high] and < 1 as a float, with its exact numerator and
    denominator."""
    den = draw(st.integers(2, 400))
    num = draw(st.integers(1, max(1, min(den - 1, int(high * den)))))
    return num / den, num, den


@st.composite
def images(draw, n: int, shape: tuple[int, ...], dtype) -> np.ndarray:
    """n images in [0, 1], some pixels exactly 0 or 1 (the clip of the invisible grid)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.random((n, *shape))
    u = rng.random(X.shape)
    X[u < 0.1], X[u > 0.9] = 0.0, 1.0
    return X.astype(dtype)


@st.composite
def image_shapes(draw) -> tuple[int, ...]:
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    C = draw(st.sampled_from([None, 1, 3]))
    return (H, W) if C is None else (H, W, C)


@st.composite
def triggers(draw, shape: tuple[int, ...]):
    """(trigger argument, trigger params, the trigger object that does the same)."""
    if draw(st.booleans()):
        size = draw(st.integers(1, min(shape[:2]) + 1))  # sometimes larger than the image
        if draw(st.booleans()):  # by name: the patch seed is the default 0
            return "badnets", {"size": size}, BadNetsPatch(size, random_state=0)
        trig = BadNetsPatch(size, random_state=draw(st.integers(0, 2**31)))
        return trig, {}, trig
    intensity = draw(st.floats(1e-3, 1.0))
    if draw(st.booleans()):
        return "invisible", {"intensity": intensity}, InvisibleGrid(intensity)
    trig = InvisibleGrid(intensity)
    return trig, {}, trig


def _chosen(n_eligible: int, n_poison: int, seed: int) -> np.ndarray:
    """The documented choice of the poisoned points (positions among the eligible ones)."""
    return np.sort(np.random.default_rng(seed).choice(n_eligible, size=n_poison, replace=False))


def _stamped(trig, X: np.ndarray, ranks: np.ndarray, dtype) -> np.ndarray:
    """The trigger's formula written out again, in float64, cast to ``dtype``.

    BadNets: the patch of each source rank on the bottom-right t x t corner. Invisible grid:
    min(1, x + b) where the row and the column are even.
    """
    out = np.array(X, dtype=np.float64)
    if isinstance(trig, BadNetsPatch):
        t = trig.size
        channels = out.shape[3] if out.ndim == 4 else None
        for i, r in enumerate(ranks):
            out[i, out.shape[1] - t :, out.shape[2] - t :] = trig.patch(int(r), channels)
    else:
        rows, cols = np.arange(out.shape[1]) % 2 == 0, np.arange(out.shape[2]) % 2 == 0
        on = rows[:, None] & cols[None, :]
        out[:, on] = np.minimum(1.0, out[:, on] + trig.intensity)
    return out.astype(dtype)


def _too_large(trig, shape) -> bool:
    return isinstance(trig, BadNetsPatch) and trig.size > min(shape[0], shape[1])


def _in_unit_interval(*arrays) -> bool:
    return all(a.size == 0 or (a.min() >= 0.0 and a.max() <= 1.0) for a in arrays)


# ---------------------------------------------------------------------------- the count
@SETTINGS
@given(frac=fractions(), n=st.integers(1, 10**6))
def test_poison_count_is_the_exact_floor_for_ratio_fractions(frac, n):
    """floor(p n + 1e-9) is floor(num n / den) exactly: the slack absorbs only rounding."""
    p, num, den = frac
    assert n_poison_points(p, n) == (num * n) // den


# ---------------------------------------------------------------------------- two classes
@st.composite
def binary_problems(draw):
    shape = draw(image_shapes())
    n, n_test = draw(st.integers(4, 40)), draw(st.integers(1, 8))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    X, X_te = draw(images(n, shape, dtype)), draw(images(n_test, shape, dtype))
    a, b = draw(st.sampled_from(LABEL_PAIRS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    code = rng.permutation(np.r_[0, 1, rng.integers(0, 2, n - 2)])  # both classes present
    labels = np.array([a, b])
    return X, labels[code], X_te, labels[rng.integers(0, 2, n_test)], labels, draw(triggers(shape))


@SETTINGS
@given(
    problem=binary_problems(),
    frac=fractions(high=0.6),
    seed=st.integers(0, 2**32 - 1),
    chunk=st.none() | st.integers(1, 5),
)
def test_poison_images_builds_D_P_V_Vt_as_documented(problem, frac, seed, chunk):
    X, y, X_te, y_te, labels, (trigger, params, same) = problem
    fraction, num, den = frac
    n = len(y)
    n_poison = (num * n) // den
    idx = _chosen(n, n_poison, seed)
    keep = np.setdiff1d(np.arange(n), idx)
    refused = n_poison == 0 or np.unique(y[keep]).size < 2 or _too_large(same, X.shape[1:])

    def run(chunk_size):
        return poison_images(
            X, y, X_te, y_te, trigger=trigger, fraction=fraction, random_state=seed,
            chunk_size=chunk_size, **params,
        )  # fmt: skip

    event("refused" if refused else "poisoned")
    if refused:
        with pytest.raises(ValueError, match="empty|needs both classes|larger than the image"):
            run(chunk)
        return
    sets = run(chunk)
    # sizes: |P| = floor(p n), |D| = n - |P|, |V| = |V_t| = n_test; P the documented choice
    assert len(sets.X_poison) == len(sets.y_poison) == n_poison
    assert len(sets.X_clean) == len(sets.y_clean) == n - n_poison
    assert len(sets.X_test) == len(sets.X_test_bd) == len(sets.y_test_bd) == len(y_te)
    assert sets.poison_indices.dtype == np.int64
    np.testing.assert_array_equal(sets.poison_indices, idx)
    # D and P: disjoint sources covering the training set; D untouched, in order
    assert np.intersect1d(keep, sets.poison_indices).size == 0
    assert np.union1d(keep, sets.poison_indices).tolist() == list(range(n))
    np.testing.assert_array_equal(sets.X_clean, X[keep])
    np.testing.assert_array_equal(sets.y_clean, y[keep])
    # labels of P and V_t: the other class; V as given
    other = {labels[0]: labels[1], labels[1]: labels[0]}
    assert sets.y_poison.tolist() == [other[v] for v in y[idx].tolist()]
    assert sets.y_test_bd.tolist() == [other[v] for v in y_te.tolist()]
    np.testing.assert_array_equal(sets.X_test, X_te)
    np.testing.assert_array_equal(sets.y_test, y_te)
    # the trigger is on the pixels, in the images' dtype (rank of the source class's label)
    assert sets.X_poison.dtype == sets.X_test_bd.dtype == X.dtype
    np.testing.assert_array_equal(
        sets.X_poison, _stamped(same, X[idx], np.searchsorted(labels, y[idx]), X.dtype)
    )
    np.testing.assert_array_equal(
        sets.X_test_bd, _stamped(same, X_te, np.searchsorted(labels, y_te), X.dtype)
    )
    assert _in_unit_interval(sets.X_clean, sets.X_poison, sets.X_test, sets.X_test_bd)
    # the same seed gives identical arrays, whatever the chunking
    again = run(None)
    for name in ("X_clean", "y_clean", "X_poison", "y_poison", "X_test_bd", "y_test_bd"):
        a, b = getattr(sets, name), getattr(again, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


@SETTINGS
@given(
    problem=binary_problems(),
    frac=fractions(high=0.6),
    seed=st.integers(0, 2**32 - 1),
)
def test_poison_flattens_the_float64_image_sets(problem, frac, seed):
    """``poison`` = the image sets of float64 images, flattened, with ``image_shape`` set."""
    X, y, X_te, y_te, labels, (trigger, params, same) = problem
    fraction, num, den = frac
    n, n_poison = len(y), (num * len(y)) // den
    idx = _chosen(n, n_poison, seed)
    keep = np.setdiff1d(np.arange(n), idx)

    def run(X_train, X_test, **kw):
        return poison(
            X_train, y, X_test, y_te, trigger=trigger, fraction=fraction, random_state=seed,
            return_indices=True, **params, **kw,
        )  # fmt: skip

    refused = n_poison == 0 or np.unique(y[keep]).size < 2 or _too_large(same, X.shape[1:])
    event("refused" if refused else "poisoned")
    if refused:
        with pytest.raises(ValueError, match="empty|needs both classes|larger than the image"):
            run(X, X_te)
        return
    data, got = run(X, X_te)
    shape, flat = X.shape[1:], int(np.prod(X.shape[1:]))
    X64, X_te64 = X.astype(np.float64), X_te.astype(np.float64)
    np.testing.assert_array_equal(got, idx)
    assert data.image_shape == shape and data.n_features == flat
    assert (data.n_clean, data.n_poison) == (n - n_poison, n_poison)
    np.testing.assert_array_equal(data.X_clean, X64[keep].reshape(-1, flat))
    ranks = np.searchsorted(labels, y[idx])
    expected_P = _stamped(same, X64[idx], ranks, np.float64).reshape(-1, flat)
    np.testing.assert_array_equal(data.X_poison, expected_P)
    np.testing.assert_array_equal(data.X_test, X_te64.reshape(-1, flat))
    ranks_te = np.searchsorted(labels, y_te)
    expected_Vt = _stamped(same, X_te64, ranks_te, np.float64).reshape(-1, flat)
    np.testing.assert_array_equal(data.X_test_bd, expected_Vt)
    assert np.all(data.y_poison != y[idx])
    assert np.all(data.y_test_bd != y_te)
    assert _in_unit_interval(data.X_clean, data.X_poison, data.X_test, data.X_test_bd)
    # flattened input with image_shape: the same data set
    flat_data, flat_idx = run(X.reshape(n, flat), X_te.reshape(len(X_te), flat), image_shape=shape)
    np.testing.assert_array_equal(flat_idx, idx)
    for name in data.ARRAYS:
        assert np.array_equal(getattr(flat_data, name), getattr(data, name)), name


# ---------------------------------------------------------------------------- k classes
@st.composite
def multiclass_problems(draw):
    shape = draw(image_shapes())
    k = draw(st.integers(2, 5))
    n, n_test = draw(st.integers(2 * k, 40)), draw(st.integers(1, 8))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    X, X_te = draw(images(n, shape, dtype)), draw(images(n_test, shape, dtype))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = rng.permutation(np.r_[np.arange(k), rng.integers(0, k, n - k)])  # every class present
    y_te = rng.integers(0, k, n_test)
    return X, y, X_te, y_te, k, draw(triggers(shape))


@SETTINGS
@given(
    problem=multiclass_problems(),
    mode=st.sampled_from(["all-to-one", "all-to-all"]),
    target_draw=st.integers(0, 4),
    exclude_target=st.booleans(),
    names=st.booleans(),
    frac=fractions(high=0.6),
    seed=st.integers(0, 2**32 - 1),
    chunk=st.none() | st.integers(1, 5),
)
def test_poison_multiclass_as_documented(
    problem, mode, target_draw, exclude_target, names, frac, seed, chunk
):
    X, y, X_te, y_te, k, (trigger, params, same) = problem
    fraction, num, den = frac
    target = target_draw % k if mode == "all-to-one" else None
    # class names (sorted like the class indices) or the indices themselves
    label_of = np.array([f"class-{c}" for c in range(k)]) if names else np.arange(k)
    n, n_poison = len(y), (num * len(y)) // den
    excluding = mode == "all-to-one" and exclude_target
    eligible = np.flatnonzero(y != target) if excluding else np.arange(n)
    test_rows = np.flatnonzero(y_te != target) if mode == "all-to-one" else np.arange(len(y_te))
    refused = (
        n_poison == 0
        or n_poison > eligible.size
        or n_poison == n
        or test_rows.size == 0
        or _too_large(same, X.shape[1:])
    )

    def run(chunk_size):
        return poison_multiclass(
            X, label_of[y], X_te, label_of[y_te], mode=mode,
            target=0 if target is None else label_of[target].item(), fraction=fraction,
            trigger=trigger, exclude_target=exclude_target, random_state=seed,
            chunk_size=chunk_size, **params,
        )  # fmt: skip

    event("refused" if refused else "poisoned")
    if refused:
        with pytest.raises(ValueError):
            run(chunk)
        return
    data = run(chunk)
    idx = eligible[_chosen(eligible.size, n_poison, seed)]
    poisoned = np.zeros(n, dtype=bool)
    poisoned[idx] = True
    X32, X_te32 = X.astype(np.float32), X_te.astype(np.float32)
    # sizes and the poisoned rows: the documented choice among the eligible points
    assert data.n_train == n and data.n_poison == n_poison
    np.testing.assert_array_equal(data.poisoned, poisoned)
    if excluding:
        assert np.all(y[poisoned] != target)
    # clean rows untouched (as float32); poisoned rows triggered from their true class
    assert data.X_train.dtype == np.float32
    np.testing.assert_array_equal(data.X_train[~poisoned], X32[~poisoned])
    np.testing.assert_array_equal(data.X_train[idx], _stamped(same, X32[idx], y[idx], np.float32))
    # labels: before poisoning kept; after, the attacker's on P only
    np.testing.assert_array_equal(data.y_source, y)
    np.testing.assert_array_equal(data.y_train[~poisoned], y[~poisoned])
    attacker = np.full(n_poison, target) if target is not None else (y[idx] + 1) % k
    np.testing.assert_array_equal(data.y_train[idx], attacker)
    # V as given (float32), V_t the triggered (non-target) test images with the attacker's labels
    np.testing.assert_array_equal(data.X_test, X_te32)
    np.testing.assert_array_equal(data.y_test, y_te)
    assert len(data.X_test_bd) == len(data.y_test_bd) == test_rows.size
    np.testing.assert_array_equal(
        data.X_test_bd, _stamped(same, X_te32[test_rows], y_te[test_rows], np.float32)
    )
    expected_bd = np.full(test_rows.size, target) if target is not None else (y_te + 1) % k
    np.testing.assert_array_equal(data.y_test_bd, expected_bd)
    assert data.target == target and data.n_classes == k
    if names:
        assert data.classes.tolist() == label_of.tolist()
    assert _in_unit_interval(data.X_train, data.X_test, data.X_test_bd)
    # same seed, identical arrays (whatever the chunking)
    again = run(None)
    for name in ("X_train", "y_train", "poisoned", "y_source", "X_test_bd", "y_test_bd"):
        assert np.array_equal(getattr(data, name), getattr(again, name)), name


# ---------------------------------------------------------------------------- the triggers
@SETTINGS
@given(
    shape=image_shapes(),
    n=st.integers(0, 12),
    k=st.integers(2, 4),
    size=st.integers(1, 7),
    patch_seed=st.integers(0, 2**31),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_badnets_stamps_only_its_corner_and_ignores_batching(
    shape, n, k, size, patch_seed, data_seed
):
    rng = np.random.default_rng(data_seed)
    X = rng.random((n, *shape))
    labels = 10 * rng.integers(0, k, n) + 3  # labels that are not ranks: 3, 13, 23, ...
    classes = 10 * np.arange(k)[::-1] + 3  # in any order
    trig = BadNetsPatch(size, random_state=patch_seed)
    before = X.copy()
    if size > min(shape[0], shape[1]):
        with pytest.raises(ValueError, match="larger than the image"):
            trig.apply(X, labels, classes)
        return
    out = trig.apply(X, labels, classes)
    np.testing.assert_array_equal(X, before)  # the input is not modified
    assert out.dtype == np.float64 and out.shape == X.shape
    np.testing.assert_array_equal(out, _stamped(trig, X, (labels - 3) // 10, np.float64))
    assert _in_unit_interval(out)
    # one image at a time, or in reverse order: the same images
    if n:
        single = np.concatenate(
            [trig.apply(X[i : i + 1], labels[i : i + 1], classes) for i in range(n)]
        )
        np.testing.assert_array_equal(single, out)
        np.testing.assert_array_equal(trig.apply(X[::-1], labels[::-1], classes), out[::-1])


@SETTINGS
@given(
    shape=image_shapes(),
    n=st.integers(0, 12),
    intensity=st.floats(1e-3, 1.0),
    data_seed=st.integers(0, 2**32 - 1),
)
def test_invisible_grid_brightens_even_pixels_and_clips(shape, n, intensity, data_seed):
    rng = np.random.default_rng(data_seed)
    X = rng.random((n, *shape))
    X[rng.random(X.shape) < 0.2] = 1.0
    labels = rng.integers(0, 2, n)
    before = X.copy()
    out = InvisibleGrid(intensity).apply(X, labels, [0, 1])
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(out, _stamped(InvisibleGrid(intensity), X, labels, np.float64))
    assert _in_unit_interval(out) and np.all(out >= X)
    on = InvisibleGrid.grid_mask(*shape[:2])
    np.testing.assert_array_equal(out[:, ~on], X[:, ~on])  # off the grid: untouched
