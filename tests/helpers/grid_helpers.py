"""Helpers shared by the grid tests and the subprocess they kill (importable by module name)."""

from __future__ import annotations

import functools
import time

from backdoor_curves import LogisticLearner
from backdoor_curves.study.config import make_data

#: 120 training / 60 test MNIST 7 vs 1 digits, BadNets 3x3 on the poisoned fraction.
TINY_DATA = functools.partial(make_data, n_train=120, n_test=60, size=3)
KILL_GRID = {"C": [0.01, 0.1, 1.0, 10.0], "fraction": [0.1, 0.2], "random_state": [0, 1]}


def slow_logistic(C: float) -> LogisticLearner:
    """A logistic learner, returned after 0.15 s so that a run can be killed half-way."""
    time.sleep(0.15)
    return LogisticLearner(C=C)


#: Environment variable naming the file :class:`CountingLogistic` appends to when unpickled.
UNPICKLE_LOG = "BACKDOOR_CURVES_TEST_UNPICKLE_LOG"


class CountingLogistic(LogisticLearner):
    """A logistic learner that appends its process id to ``$UNPICKLE_LOG`` when unpickled: how
    often a study's learners (and the data travelling with them) reach a worker."""

    def __setstate__(self, state):
        import os

        path = os.environ.get(UNPICKLE_LOG)
        if path:
            with open(path, "a") as f:
                f.write(f"{os.getpid()}\n")
        super().__setstate__(state)

    def __deepcopy__(self, memo):
        """A copy made in the process (e.g. a warm start's model) is not a transfer: not counted."""
        import copy

        new = type(self).__new__(type(self))
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new
