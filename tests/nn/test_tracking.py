"""Tracking (group-mean gradients, Delta vs the measured step, synchronization, the Tracker
callback) on real 14x14 digits with a ~1k-parameter CNN, against independent oracles: per-sample
gradients, a torch.optim.SGD step, explicit activations, the metrics on the recorded losses."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backdoor_curves.attacks.multiclass import poison_multiclass  # noqa: E402
from backdoor_curves.datasets.mnist import load_mnist_multiclass  # noqa: E402
from backdoor_curves.nn import tracking  # noqa: E402
from backdoor_curves.nn.metrics import (  # noqa: E402
    isolation_precision,
    mean_pairwise_cosine,
    poison_auroc,
)
from backdoor_curves.nn.models import SmallCNN  # noqa: E402
from backdoor_curves.nn.per_sample import (  # noqa: E402
    iter_per_sample_grads,
    per_sample_grads,
    per_sample_losses,
)
from backdoor_curves.nn.tracking import (  # noqa: E402
    LAYER_COLUMNS,
    TRACKER_COLUMNS,
    Tracker,
    group_mean_gradients,
    loss_reduction,
    stratified_subset,
    synchronization,
)
from backdoor_curves.nn.train import TrainConfig, train  # noqa: E402

F = torch.nn.functional


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the trainer uses (two threads on two busy cores are much slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    """200 real digits (ten classes, 2x2-pooled to 14x14), BadNets 3x3 all-to-one on 10 %."""
    X_train, y_train, X_test, y_test = load_mnist_multiclass(
        n_train=200, n_test=40, random_state=0, pool=2
    )
    return poison_multiclass(X_train, y_train, X_test, y_test, fraction=0.1, random_state=0, size=3)


def factory():
    return SmallCNN(n_classes=10, width=4)  # 1,066 parameters


def model64(seed=0):
    torch.manual_seed(seed)
    return factory().double()


CONFIG = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=0)


# -- group-mean gradients and Delta -------------------------------------------------------------


def test_group_mean_gradients_are_the_mean_per_sample_gradients(data):
    model = model64()
    X = data.to_nchw(data.X_train)
    g_b, g_c = group_mean_gradients(model, X, data.y_train, data.poisoned, batch_size=64)
    per = per_sample_grads(model, X, data.y_train)
    mask = torch.as_tensor(data.poisoned)
    for name in per:
        assert torch.allclose(g_b[name], per[name][mask].mean(0), atol=1e-12), name
        assert torch.allclose(g_c[name], per[name][~mask].mean(0), atol=1e-12), name
    assert all(p.grad is None for p in model.parameters())


def test_delta_matches_the_measured_step_to_first_order(data):
    # the relative gap between the prediction and the measurement is O(lr): it must shrink
    # with lr (by about 10x per decade; asserted: at least 3x)
    model = model64()
    X = data.to_nchw(data.X_train)
    gaps = {"delta": [], "poisoned": [], "clean": []}
    for lr in (0.5, 0.05, 0.005):
        r = loss_reduction(model, X, data.y_train, data.poisoned, lr)
        assert r["eta"] == pytest.approx(data.poison_rate)
        for key, (pred, meas) in {
            "delta": ("delta", "measured_delta"),
            "poisoned": ("predicted_poisoned", "measured_poisoned"),
            "clean": ("predicted_clean", "measured_clean"),
        }.items():
            gaps[key].append(abs(r[pred] - r[meas]) / abs(r[pred]))
    for key, values in gaps.items():
        assert values[1] < values[0] / 3 and values[2] < values[1] / 3, (key, values)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_measured_step_is_one_torch_sgd_step(data, beta):
    model = model64(1)
    X = data.to_nchw(data.X_train)
    before = copy.deepcopy(model.state_dict())
    lr = 0.1
    r = loss_reduction(model, X, data.y_train, data.poisoned, lr, beta=beta, batch_size=48)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # the model itself is not stepped
    # oracle: torch.optim.SGD on the weighted mean loss (1/n) sum_i w_i l_i, eval mode
    ref = copy.deepcopy(model).eval()
    opt = torch.optim.SGD(ref.parameters(), lr=lr)
    Xt, yt = torch.as_tensor(X).double(), torch.as_tensor(data.y_train)
    w = torch.as_tensor(data.sample_weight(beta))
    losses0 = F.cross_entropy(ref(Xt), yt, reduction="none")
    (w * losses0).mean().backward()
    opt.step()
    with torch.no_grad():
        losses1 = F.cross_entropy(ref(Xt), yt, reduction="none")
    m = torch.as_tensor(data.poisoned)
    drop = (losses0.detach() - losses1).numpy()
    assert r["measured_poisoned"] == pytest.approx(drop[m.numpy()].mean(), rel=1e-9)
    assert r["measured_clean"] == pytest.approx(drop[~m.numpy()].mean(), rel=1e-9)
    assert r["loss_poisoned"] == pytest.approx(losses0[m].mean().item(), rel=1e-12)


def test_loss_reduction_bad_inputs(data):
    model = model64()
    X, y = data.to_nchw(data.X_train), data.y_train
    with pytest.raises(ValueError, match="lr"):
        loss_reduction(model, X, y, data.poisoned, 0.0)
    with pytest.raises(ValueError, match="beta"):
        loss_reduction(model, X, y, data.poisoned, 0.1, beta=1.5)
    with pytest.raises(ValueError, match="poisoned"):
        loss_reduction(model, X, y, np.zeros(len(y), bool), 0.1)
    with pytest.raises(ValueError, match="poisoned"):
        group_mean_gradients(model, X, y, data.poisoned[:-1])
    with pytest.raises(TypeError, match="poisoned"):
        group_mean_gradients(model, X, y, data.poisoned.astype(float))
    with pytest.raises(ValueError, match="params"):
        group_mean_gradients(model, X, y, data.poisoned, params=["conv9"])


# -- synchronization ----------------------------------------------------------------------------


def test_synchronization_matches_explicit_gradients_and_activations(data):
    model = model64(2)
    idx = stratified_subset(data.groups(), 90, random_state=1)
    X = data.to_nchw(data.X_train[idx])
    y, codes = data.y_train[idx], data.groups()[idx]
    frame = synchronization(model, X, y, codes, batch_size=16)
    assert list(frame["layer"]) == ["conv1", "conv2", "fc"]
    assert list(frame["n_params"]) == [40, 296, 730]
    grads = per_sample_grads(model, X, y)
    with torch.no_grad():  # the SmallCNN forward written out: outputs of conv1, conv2 and fc
        xt = torch.as_tensor(X).double()
        a1 = model.conv1(xt)
        a2 = model.conv2(F.max_pool2d(F.relu(a1), 2))
        a3 = model(xt)
        acts = {"conv1": a1.mean(dim=(2, 3)), "conv2": a2.mean(dim=(2, 3)), "fc": a3}
    sets = {"poisoned": codes == 0, "target_clean": codes == 1, "other_clean": codes == 2}
    sets["clean"] = codes != 0
    for _, row in frame.iterrows():
        layer = row["layer"]
        G = torch.cat([grads[k].reshape(len(X), -1) for k in grads if k.startswith(layer + ".")], 1)
        for kind, V in (("grad", G.numpy()), ("act", acts[layer].numpy())):
            for name, sel in sets.items():
                assert row[f"{kind}_cos_{name}"] == pytest.approx(
                    mean_pairwise_cosine(V[sel]), abs=1e-10
                ), (layer, kind, name)
            assert row[f"{kind}_cos_poisoned_clean"] == pytest.approx(
                mean_pairwise_cosine(V[sets["poisoned"]], V[sets["clean"]]), abs=1e-10
            )
            assert row[f"{kind}_cos_poisoned_target_clean"] == pytest.approx(
                mean_pairwise_cosine(V[sets["poisoned"]], V[sets["target_clean"]]), abs=1e-10
            )


def test_synchronization_bad_inputs(data):
    model = model64()
    X, y = data.to_nchw(data.X_train[:20]), data.y_train[:20]
    with pytest.raises(ValueError, match="layers"):
        synchronization(model, X, y, data.groups()[:20], layers=["conv1", "head"])
    with pytest.raises(ValueError, match="groups"):
        synchronization(model, X, y, data.groups()[:19])
    with pytest.raises(ValueError, match="groups"):
        synchronization(model, X, y, np.full(20, 5))


# -- the budget ---------------------------------------------------------------------------------


def test_stratified_subset_keeps_the_shares_and_the_seed(data):
    codes = data.groups()
    sub = stratified_subset(codes, 57, random_state=3)
    assert len(sub) == 57 and len(np.unique(sub)) == 57 and np.all(np.diff(sub) > 0)
    for g in (0, 1, 2):
        assert abs((codes[sub] == g).sum() - 57 * (codes == g).mean()) <= 1, g
    assert np.array_equal(sub, stratified_subset(codes, 57, random_state=3))
    assert not np.array_equal(sub, stratified_subset(codes, 57, random_state=4))
    assert np.array_equal(stratified_subset(codes, 500), np.arange(len(codes)))
    rare = np.zeros(1000, int)
    rare[:3] = 1  # 0.3 %: still one sample of the rare group in a subset of 50
    assert (rare[stratified_subset(rare, 50)] == 1).sum() == 1
    with pytest.raises(ValueError, match="budget"):
        stratified_subset(codes, 0)
    with pytest.raises(TypeError, match="budget"):
        stratified_subset(codes, 10.0)


# -- the Tracker --------------------------------------------------------------------------------


class Snapshots:
    """A second callback: per-sample gradients of a fixed subset at every epoch end (oracle)."""

    def __init__(self, tracker):
        self.tracker, self.sq, self.lrs = tracker, [], []

    def on_epoch_end(self, state):
        sub = self.tracker.subset
        X = state.data.to_nchw(state.data.X_train[sub])
        g = per_sample_grads(state.model, X, state.data.y_train[sub], flatten=True)
        self.sq.append(g.double().pow(2).sum(1).numpy())
        self.lrs.append(state.lr)


def test_tracker_records_within_budget_and_leaves_training_unchanged(data, monkeypatch):
    plain = train(factory, data, 1.0, CONFIG)
    assert Tracker(budget=40).loss_samples == 80  # default: all losses up to twice the budget
    tracker = Tracker(budget=40, loss_samples=200, random_state=2)
    snaps = Snapshots(tracker)
    seen = []  # sizes of the sample sets whose per-sample gradients the tracker takes

    def spy(model, X, *args, **kwargs):
        seen.append(len(X))
        return iter_per_sample_grads(model, X, *args, **kwargs)

    monkeypatch.setattr(tracking, "iter_per_sample_grads", spy)
    tracked = train(factory, data, 1.0, CONFIG, callbacks=[tracker, snaps])
    assert seen == [40, 40, 40]  # epochs 0, 1, 2: only ever the budget subset
    for (name, p), q in zip(
        plain.model.named_parameters(), tracked.model.parameters(), strict=True
    ):
        assert torch.equal(p, q), name  # bit for bit: the tracker changes nothing

    # the budget: a stratified subset of 40 with the poisoned share (10 %)
    assert len(tracker.subset) == 40
    assert (data.poisoned[tracker.subset]).sum() == 4
    si = tracker.self_influence
    assert list(si.columns) == ["sample", "group", "poisoned", "self_influence"]
    assert len(si) == 40 and np.array_equal(si["sample"], tracker.subset)

    hist = tracker.history
    assert list(hist.columns) == TRACKER_COLUMNS
    assert list(hist["epoch"]) == [0, 1, 2]
    assert list(hist["step"]) == [0, 7, 14]
    assert set(hist["losses_on"]) == {"all"} and set(hist["n_losses"]) == {200}
    assert hist.drop(columns=["si_precision", "si_auroc"]).notna().all().all()
    assert hist["si_precision"].isna().tolist() == [True, False, False]
    layers = tracker.layer_history
    assert list(layers.columns) == LAYER_COLUMNS
    assert len(layers) == 3 * 3 and set(layers["layer"]) == {"conv1", "conv2", "fc"}
    shares = layers.groupby("epoch")["r_bb_share"].sum()
    assert np.allclose(shares, 1.0)  # the default layers hold every parameter

    # the loss columns are the metrics of the recorded losses
    losses = tracker.sample_losses
    assert len(losses) == 3 * 200
    for epoch, part in losses.groupby("epoch"):
        poisoned = (part["group"] == "poisoned").to_numpy()
        row = hist.set_index("epoch").loc[epoch]
        ip = isolation_precision(part["loss"].to_numpy(), poisoned, data.poison_rate)
        assert row["isolation_precision"] == ip
        assert row["auroc"] == poison_auroc(part["loss"].to_numpy(), poisoned)
    final = per_sample_losses(tracked.model, data.to_nchw(data.X_train), data.y_train)
    assert np.allclose(losses[losses["epoch"] == 2]["loss"], final, atol=1e-6)

    # self-influence: sum over the epoch ends of lr ||g_i||^2 (oracle: the second callback)
    expected = sum(lr * sq for lr, sq in zip(snaps.lrs, snaps.sq, strict=True))
    assert np.allclose(si["self_influence"], expected, rtol=1e-5)
    si_auroc = poison_auroc(expected, si["poisoned"], lower_is_poisoned=False)
    assert hist["si_auroc"].iloc[-1] == pytest.approx(si_auroc)

    # Delta of the last row = loss_reduction on the subset with the final model
    sub = tracker.subset
    X_sub = data.to_nchw(data.X_train[sub])
    r = loss_reduction(tracked.model, X_sub, data.y_train[sub], data.poisoned[sub], CONFIG.lr)
    # (the tracker takes g_b, g_c as means of its per-sample gradients, loss_reduction by two
    # backward passes: the same numbers up to float32 round-off)
    for key in ("r_bb", "r_cc", "r_bc", "delta"):
        assert hist[key].iloc[-1] == pytest.approx(r[key], rel=1e-5), key
    # a measured change is a difference of float32 mean losses: a few ulps of the loss
    ulps = 8 * float(np.finfo(np.float32).eps) * max(r["loss_poisoned"], r["loss_clean"])
    for key in ("measured_poisoned", "measured_clean", "measured_delta"):
        assert hist[key].iloc[-1] == pytest.approx(r[key], rel=0, abs=ulps), key


def test_tracker_on_the_budget_when_losses_are_not_cheap(data):
    tracker = Tracker(budget=30, layers=["fc"], every=2, track_initial=False)  # 200 > 2 x 30
    train(factory, data, 1.0, TrainConfig(epochs=3, batch_size=50, lr=0.05), callbacks=[tracker])
    hist = tracker.history
    assert list(hist["epoch"]) == [2, 3]  # every 2nd epoch and the last one
    assert set(hist["losses_on"]) == {"budget"} and set(hist["n_losses"]) == {30}
    assert set(tracker.sample_losses["sample"]) == set(tracker.subset)
    assert list(tracker.layer_history["layer"]) == ["fc", "fc"]


class RandomMask:
    """Clean digits with a random "poisoned" mask: the ImageBackdoorData fields the Tracker reads.

    No trigger and no relabelling: the mask carries no signal, so the loss ranks the masked
    samples like any others and IP is eta on average.
    """

    GROUPS = ("poisoned", "target_clean", "other_clean")

    def __init__(self, X, y, n_poison, seed):
        self.X_train, self.y_train = X, y
        self.poisoned = np.zeros(len(y), bool)
        self.poisoned[np.random.default_rng(seed).choice(len(y), n_poison, replace=False)] = True
        self.poison_rate = n_poison / len(y)
        self.to_nchw = staticmethod(lambda X: X[:, None].astype(np.float32))

    def groups(self):
        return np.where(self.poisoned, 0, 2).astype(np.int8)


def test_isolation_precision_of_an_unpoisoned_run_is_near_eta():
    X, y, _, _ = load_mnist_multiclass(n_train=200, n_test=10, random_state=1, pool=2)
    masks = [RandomMask(X, y, 20, seed) for seed in range(4)]
    trackers = [
        Tracker(budget=30, layers=["fc"], loss_samples=200, random_state=s) for s in range(4)
    ]
    torch.manual_seed(0)
    model = factory()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    Xt, yt = torch.as_tensor(X[:, None]), torch.as_tensor(y)

    class State:  # the TrainState fields the Tracker reads
        beta, lr, epoch, step, config = 1.0, 0.05, 0, 0, None

    states = []
    for mask in masks:
        state = State()
        state.model, state.data = model, mask
        states.append(state)
    for t, s in zip(trackers, states, strict=True):
        t.on_train_begin(s)
    order = np.random.default_rng(0).permutation(200)
    for epoch in range(1, 4):  # ordinary training on clean labels: the mask plays no part
        model.train()
        for rows in np.array_split(order, 10):
            opt.zero_grad()
            F.cross_entropy(model(Xt[rows]), yt[rows]).backward()
            opt.step()
        for t, s in zip(trackers, states, strict=True):
            s.epoch, s.step = epoch, epoch * 10
            t.on_epoch_end(s)
    ips = np.array([t.history["isolation_precision"].to_numpy()[1:] for t in trackers])
    assert ips.shape == (4, 3)
    # the trained model's losses are independent of the masks, so many more random masks on the
    # same recorded losses estimate E[IP] tightly: hypergeometric mean |B| / N = eta
    rng = np.random.default_rng(5)
    samples = []
    for _, part in trackers[0].sample_losses.groupby("epoch"):
        for _ in range(150):
            mask = np.zeros(200, bool)
            mask[rng.choice(200, 20, replace=False)] = True
            samples.append(isolation_precision(part["loss"].to_numpy(), mask, 0.1))
    samples = np.concatenate([ips.ravel(), samples])
    se = samples.std() / np.sqrt(len(samples))
    assert abs(samples.mean() - 0.1) < 4 * se
    assert abs(ips.mean() - 0.1) < 4 * samples.std() / np.sqrt(ips.shape[0])


def test_tracker_bad_arguments(data):
    with pytest.raises(ValueError, match="budget"):
        Tracker(budget=0)
    with pytest.raises(TypeError, match="budget"):
        Tracker(budget=2.5)
    with pytest.raises(ValueError, match="eta"):
        Tracker(eta=1.0)
    with pytest.raises(ValueError, match="every"):
        Tracker(every=0)
    with pytest.raises(ValueError, match="layers"):
        train(factory, data, 1.0, TrainConfig(epochs=1), callbacks=[Tracker(layers=["conv3"])])
    with pytest.raises(ValueError, match="eta"):  # floor(0.01 * 30) = 0 samples isolated
        tracker = Tracker(budget=30, eta=0.01, loss_samples=10)
        train(factory, data, 1.0, TrainConfig(epochs=1), callbacks=[tracker])
