"""Every seed is checked by one function, :func:`backdoor_curves._validation.check_seed`.

So every entry point that takes a seed answers the same way: a TypeError for anything but an
integer (a bool included), a ValueError for a negative one, each naming the argument as the caller
spelled it (``random_state``, ``trigger_seed``, ``param_grid['random_state']``).
"""

import numpy as np
import pytest

import backdoor_curves as bc
from backdoor_curves._threads import BLAS_THREADS
from backdoor_curves._validation import check_random_state, check_seed
from backdoor_curves.attacks.poisoning import choose_poison_indices
from backdoor_curves.study.config import parse_config
from backdoor_curves.study.grid import grid_points

BAD_SEEDS = [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)]


@pytest.mark.parametrize("seed", [0, 7, np.int64(3), np.uint8(5)])
def test_check_seed_returns_a_python_int(seed):
    out = check_seed(seed, "seed")
    assert out == int(seed) and type(out) is int


@pytest.mark.parametrize(("seed", "exc"), [*BAD_SEEDS, (None, TypeError)])
def test_check_seed_rejects_naming_the_argument(seed, exc):
    with pytest.raises(exc, match="^my_seed must be a non-negative int"):
        check_seed(seed, "my_seed")


def test_check_seed_none_only_where_allowed():
    assert check_seed(None, "seed", allow_none=True) is None
    with pytest.raises(TypeError, match=r"^seed must be a non-negative int \(a seed\) or None"):
        check_seed(2.0, "seed", allow_none=True)


def test_check_random_state_builds_on_check_seed():
    gen = np.random.default_rng(0)
    assert check_random_state(gen) is gen
    assert check_random_state(4).integers(1000) == np.random.default_rng(4).integers(1000)
    with pytest.raises(ValueError, match="^random_state must be a non-negative int"):
        check_random_state(-2)
    with pytest.raises(TypeError, match="^random_state must be None, an int or a numpy Generator"):
        check_random_state(True)


ENTRY_POINTS = {
    "load_mnist_pair": (lambda seed: bc.load_mnist_pair(random_state=seed), "random_state"),
    "BadNetsPatch": (lambda seed: bc.BadNetsPatch(random_state=seed), "random_state"),
    "choose_poison_indices": (lambda seed: choose_poison_indices(10, 2, seed), "random_state"),
    "grid_points": (lambda seed: grid_points({"C": [1.0]}, random_state=seed), "random_state"),
    "grid_points param_grid": (
        lambda seed: grid_points({"C": [1.0], "random_state": [seed]}),
        r"param_grid\['random_state'\]",
    ),
    "grid_study": (
        lambda seed: bc.grid_study(
            bc.LogisticLearner(), lambda random_state: None, {"C": [1.0]}, random_state=seed
        ),
        "random_state",
    ),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("seed", "exc"), BAD_SEEDS)
def test_every_entry_point_checks_its_seed_alike(entry, seed, exc):
    call, name = ENTRY_POINTS[entry]
    with pytest.raises(exc, match=f"^{name} must be"):
        call(seed)


def test_a_config_names_the_key_of_a_bad_seed():
    # a config file's errors are all ValueErrors naming the key, the message is check_seed's
    raw = {"data": {"random_state": -1}, "learner": [{"kind": "logistic"}]}
    with pytest.raises(ValueError, match=r"'data.random_state': must be a non-negative int"):
        parse_config(raw)


# ---------------------------------------------------------------------------- same seed, same bits
#: One of each learner: closed form (ridge), Newton path (logistic), SVM paths (linear, RBF).
SEED_LEARNERS = {
    "logistic": bc.LogisticLearner(C=1.0),
    "ridge": bc.RidgeLearner(alpha=0.5),
    "linear_svm": bc.LinearSVMLearner(C=0.1),
    "rbf_svm": bc.RBFSVMLearner(C=1.0, gamma=0.01),
}
SEED_GRID = {"C": [0.1, 1.0], "fraction": [0.1, 0.2], "random_state": [3, 4]}


def seeded_digest(n_jobs: int = 1, backend: str | None = None) -> str:
    """SHA-256 of every number of the seeded pipeline, bit for bit: the poisoned data, each
    learner's curve and slope, and a grid table over fractions and seeds (but its wall times)."""
    import functools
    import hashlib

    from backdoor_curves.study.config import make_data

    h = hashlib.sha256()
    data = make_data(n_train=100, n_test=50, size=3, fraction=0.1, random_state=7)
    for name in bc.BackdoorData.ARRAYS:
        h.update(np.ascontiguousarray(getattr(data, name)).tobytes())
    for learner in SEED_LEARNERS.values():
        curve = bc.learning_curve(learner, data, bc.default_betas(6)).to_frame()
        h.update(curve.to_numpy(dtype=float).tobytes())
        slope = bc.backdoor_slope(learner, data)
        h.update(np.array([slope.derivative, slope.score, slope.condition_number]).tobytes())
    factory = functools.partial(make_data, n_train=100, n_test=50, size=3)
    table = bc.grid_study(bc.LogisticLearner(), factory, SEED_GRID, n_jobs=n_jobs, backend=backend)
    table = table.drop(columns="seconds")
    h.update(table.to_csv().encode())
    h.update(table.select_dtypes("number").to_numpy(dtype=float).tobytes())
    return h.hexdigest()


def test_same_seed_same_bits_in_a_fresh_interpreter():
    """Curves, slopes and a grid table: the same bits in another interpreter (another hash
    seed). (n_jobs 1 vs 2 and Dask: tests/study/test_grid.py; nn: tests/nn, test_interrupt.)"""
    import os
    import subprocess
    import sys

    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "from test_seeds import seeded_digest\n"
        "print(seeded_digest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    assert there == seeded_digest()


@pytest.mark.skipif(BLAS_THREADS != 1, reason="bit-identity needs BLAS pinned to one thread")
def test_grid_table_same_bits_on_threads():
    """joblib's threading backend gives the sequential table bit for bit.

    It did not (backdoor_loss_1, rho_ratio_1 and nu_1 differed in the last bits; loky and Dask
    agreed): threadpoolctl 3.8 lets only the thread that "controls" OpenBLAS change its
    process-wide thread count and silently ignores the others, and the main thread held that
    role, so the package's BLAS pin did nothing in pool threads and their fits ran OpenBLAS on
    two threads, whose reductions round differently. blas_limit now clears the role around its
    own changes (tests/test_threads.py checks the pin in a worker thread directly). Not thread
    scheduling: the differing cells were the same on every run, and threading agreed bit for bit
    under a process-wide threadpool_limits(1), and with threadpoolctl 3.6 (no such role)."""
    assert seeded_digest(n_jobs=2, backend="threading") == seeded_digest()
