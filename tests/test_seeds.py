"""Every seed is checked by one function, :func:`backdoor_curves._validation.check_seed`.

So every entry point that takes a seed answers the same way: a TypeError for anything but an
integer (a bool included), a ValueError for a negative one, each naming the argument as the caller
spelled it (``random_state``, ``trigger_seed``, ``param_grid['random_state']``).
"""

import numpy as np
import pytest

import backdoor_curves as bc
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
