"""Shared context of the bad-input catalogue: small real data, fitted models, files; the summary.

The :class:`Context` builds each resource on first use (so a run of one test module builds only
what it needs) from small real data: the ``mnist_small`` fixture (MNIST 7 vs 1, 14 x 14), the
embedded MNIST digits (:func:`backdoor_curves.load_mnist_pair`) and, for the neural-network
adapter, a ten-class set of 14 x 14 digits.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bad_input_catalogue import KINDS, REGISTRY, toml_text  # noqa: E402

import backdoor_curves as bc  # noqa: E402


def _pool(X, k: int = 2):
    n, h, w = X.shape
    return X.reshape(n, h // k, k, w // k, k).mean(axis=(2, 4))


class Context:
    """Lazily built, session-wide inputs of the baseline calls."""

    def __init__(self, mnist_small, tmp: Path):
        self.data = mnist_small
        self.tmp = tmp

    # ------------------------------------------------------------------ two-class images
    @functools.cached_property
    def images(self):
        """(X_train, y_train, X_test, y_test): 60 / 20 real MNIST 7-vs-1 digits, 14 x 14."""
        X_train, y_train, X_test, y_test = bc.load_mnist_pair((7, 1), random_state=3)
        return _pool(X_train[:60]), y_train[:60], _pool(X_test[:20]), y_test[:20]

    # ------------------------------------------------------------------ fitted learners
    @functools.cache  # noqa: B019 - one session-wide context
    def fitted(self, name: str):
        cls = getattr(bc, name)
        return cls().fit(self.data.X_clean, self.data.y_clean)

    @functools.cached_property
    def ridge_curve(self):
        return bc.learning_curve(bc.RidgeLearner(alpha=1.0), self.data, [0.0, 0.5, 1.0])

    # ------------------------------------------------------------------ files
    def file(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return str(path)

    @functools.cached_property
    def empty_dir(self) -> str:
        path = self.tmp / "empty_dir"
        path.mkdir()
        return str(path)

    @functools.cached_property
    def curves_csv(self) -> str:
        return str(bc.write_curves(self.ridge_curve, self.tmp / "curves.csv"))

    @functools.cached_property
    def study_store(self) -> str:
        store = self.tmp / "study.sqlite"
        bc.grid_study(bc.RidgeLearner(), self.data, {"alpha": [1.0]}, store=store)
        return str(store)

    @functools.cached_property
    def study_csv(self) -> str:
        table = bc.read_study(self.study_store)
        path = self.tmp / "table.csv"
        table.to_csv(path, index=False)
        return str(path)

    def config_file(self, name: str, doc) -> str:
        return self.file(name, toml_text(doc))

    # ------------------------------------------------------------------ neural networks
    @functools.cached_property
    def nn_images(self):
        """Ten-class embedded digits, 14 x 14: 100 training / 30 test images."""
        from backdoor_curves.datasets.mnist import load_mnist_multiclass

        return load_mnist_multiclass(n_train=100, n_test=30, random_state=0, pool=2)

    @functools.cached_property
    def nn_data(self):
        X_train, y_train, X_test, y_test = self.nn_images
        return bc.poison_multiclass(
            X_train, y_train, X_test, y_test, target=0, fraction=0.1, size=2, random_state=0
        )

    @functools.cached_property
    def cnn_factory(self):
        from backdoor_curves.nn.models import SmallCNN

        return functools.partial(SmallCNN, n_classes=10, in_channels=1, width=2)

    @functools.cached_property
    def cnn(self):
        import torch

        torch.manual_seed(0)
        return self.cnn_factory().eval()

    @functools.cached_property
    def nn_batch(self):
        """(X, y) of the tiny CNN: 12 training images (n, 1, 14, 14) and their labels."""
        data = self.nn_data
        return data.to_nchw(data.X_train[:12]), data.y_train[:12].copy()

    @functools.cached_property
    def train_config(self):
        from backdoor_curves.nn.train import TrainConfig

        return TrainConfig(epochs=1, batch_size=50, lr=0.05)


@pytest.fixture(scope="session")
def ctx(mnist_small, tmp_path_factory) -> Context:
    return Context(mnist_small, tmp_path_factory.mktemp("bad_inputs"))


# ---------------------------------------------------------------------------- the summary
_OUTCOMES: dict[str, int] = {}
_STARTED = time.perf_counter()


def pytest_runtest_logreport(report):
    if "test_bad_input[" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        _OUTCOMES[outcome] = _OUTCOMES.get(outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if not REGISTRY.entries:
        return
    cases = REGISTRY.cases
    kinds = REGISTRY.kinds()
    xfails = sum(1 for _, c in cases if c.xfail)
    write = terminalreporter.write_line
    terminalreporter.section("bad-input catalogue")
    write(
        f"{len(cases)} cases, {len(REGISTRY.entries)} entry points, {len(kinds)} kinds of bad "
        f"input ({len(KINDS)} defined), {xfails} cases marked xfail"
    )
    if _OUTCOMES:
        shown = ", ".join(f"{n} {k}" for k, n in sorted(_OUTCOMES.items()))
        write(f"run: {shown} in {time.perf_counter() - _STARTED:.1f} s")
    per_kind = {k: sum(1 for _, c in cases if c.kind == k) for k in KINDS}
    write("per kind: " + ", ".join(f"{k} {n}" for k, n in per_kind.items() if n))
