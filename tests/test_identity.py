"""Tests of backdoor_curves._identity: results kept per read-only array while it lives."""

import gc

import numpy as np
import pytest

from backdoor_curves._identity import IdentityMemo, is_immutable


def test_is_immutable_follows_the_base_chain():
    a = np.arange(6.0).reshape(2, 3).copy()
    assert not is_immutable(a) and not is_immutable([1.0])
    a.flags.writeable = False
    assert is_immutable(a) and is_immutable(a[:1])  # a view of a read-only array
    b = np.arange(3.0)
    view = b[:]
    view.flags.writeable = False
    assert not is_immutable(view)  # its memory can still change through b


def test_memo_computes_once_per_array_and_key_and_forgets_dead_arrays():
    memo = IdentityMemo("test", max_keys=2)
    calls = []

    def compute(value):
        calls.append(value)
        return np.full(2, value)

    a = np.ones(3)
    a.flags.writeable = False
    first = memo.get(a, lambda: compute(1.0))
    assert memo.get(a, lambda: compute(2.0)) is first and calls == [1.0]
    assert not first.flags.writeable  # shared results are read-only
    memo.get(a, lambda: compute(3.0), key="k")
    memo.get(a, lambda: compute(4.0), key="j")  # a third key drops the oldest (None)
    memo.get(a, lambda: compute(5.0))
    assert calls == [1.0, 3.0, 4.0, 5.0]
    writable = np.ones(3)
    memo.get(writable, lambda: compute(6.0))
    memo.get(writable, lambda: compute(7.0))
    assert calls[-2:] == [6.0, 7.0]  # never remembered
    assert "1 arrays" in repr(memo)
    del a
    gc.collect()
    assert "0 arrays" in repr(memo)


@pytest.mark.parametrize("shape", [(5, 1), (40, 3)])
def test_equilibration_stops_at_its_fixed_point(shape):
    """The early stop returns the scaling all twelve passes would (steps of 0 change nothing)."""
    from backdoor_curves import linalg

    rng = np.random.default_rng(0)
    B = rng.normal(size=(shape[0], shape[0])) * np.exp2(rng.integers(-20, 20, shape[0]))
    A = np.block([[np.zeros((1, 1)), np.ones((1, shape[0]))], [np.ones((shape[0], 1)), B @ B.T]])
    scale = linalg._symmetric_equilibration(A)
    absA, full = np.abs(A), np.ones(A.shape[0])
    for _ in range(linalg._EQUILIBRATION_PASSES):  # the plain iteration, every pass
        rows = (absA * full[None, :]).max(axis=1) * full
        full = full * np.exp2(-np.round(0.5 * np.log2(np.where(rows > 0, rows, 1.0))))
    np.testing.assert_array_equal(scale, full)
