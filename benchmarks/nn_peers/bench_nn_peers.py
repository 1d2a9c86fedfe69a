"""Deep-model peers vs the exact backdoor slope of a training run (issue #17).

Problem: the embedded ten-class MNIST digits (``load_mnist_multiclass``, 2x2-pooled to 14x14,
seed 0), BadNets all-to-one (target 0, 3x3 patch, source classes only) on 10 % of the training
set, ``SmallCNN`` trained by SGD (batch 32, lr 0.02, momentum 0.9, weight decay 5e-4, seed 0;
experiments/nn/mnist_badnets_cpu.toml) at beta = 0 for each epoch budget of ``--epochs``.

Per budget:

- exact: ``training_derivative`` (forward mode through every SGD step): dL(V_t)/dbeta at 0;
  ``point_derivatives`` on ``--points`` poisoned rows: dL/dw_j (the tangents batched with
  ``torch.func.vmap``, one chunk);
- finite differences (L(h) - L(0)) / h of ``train`` runs at each ``--h``;
- peers, each reduced to dL/dw_j for every poisoned row j (``conventions.py`` states the
  mapping), summed over the poisoned rows for the slope, and compared on the subset by
  Spearman's rank correlation with the exact dL/dw_j:
  kronfluence EK-FAC (mapped: factors on the clean rows, damping lambda_wd n / n_c; as shipped:
  factors on every training row, default damping 1e-8), TRAK (traker; projected margin
  gradients of one checkpoint, lambda_reg = n lambda_wd, TRAK's normalisation of (X^T X)^-1
  undone), dattri CG, LiSSA, Arnoldi (all parameters) and explicit (last layer ``fc`` only;
  the full explicit Hessian does not fit in memory).

Time: every member once after one warm-up training and derivative (no repeats), divided by
the time of one training run at the same budget (``train`` + ``evaluate``), torch on
``--threads`` threads. Output: ``--out`` (JSON) and the same path with ``.md``.

Other models and data (issue #17 item 3): ``--model resnet18`` (torchvision's ResNet18, a new
10-class head, ImageNet input normalisation; ``--weights none|imagenet|<state dict>``, read
offline), ``--dataset cifar10 --root DIR`` (all ten CIFAR-10 classes from
``DIR/cifar-10-batches-py``, never downloaded; the same BadNets attack), ``--device cuda``,
``--batch-size`` and ``--lr`` of SGD. The defaults are the SmallCNN problem above. Peers that
cannot handle a model are left out by default with the reason recorded (``NOT_RUN_BY_MODEL``);
for the ResNet the peers' per-sample gradients run in batches of ``--peer-batch-size`` and
kronfluence sums the query gradients over V_t (``aggregate_query_gradients``: one
preconditioned query gradient instead of one per backdoor test image).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(HERE))

import bench_core  # noqa: E402
import conventions as cv  # noqa: E402
import report  # noqa: E402

PEERS = (
    "reference_if_ggn",
    "kronfluence_ekfac",
    "kronfluence_ekfac_shipped",
    "trak",
    "dattri_cg",
)
#: Peers left out of the default run, and why (measured; ``--peers`` can still name them).
NOT_RUN = {
    "dattri_lissa": (
        "diverges: H_c is indefinite (the network is not at a minimum), so LiSSA's Neumann "
        "series has no limit; depth 1,000, scaling 50, damping lambda gave -5.9e15 at 1 epoch "
        "(264 s) and -1.2e22 at 5 epochs (768 s)"
    ),
    "dattri_arnoldi": (
        "NaN at 1 epoch (58 s, 100 eigenpairs, float32) and OOM-killed (24 GB) at 5 epochs"
    ),
    "reference_if_hessian": (
        "the dense exact Hessian from 2,698 Hessian-vector-product columns took 498 s on the "
        "500-row smoke run (450 clean rows, 1 epoch: 1,266 negative eigenvalues; its influence "
        "function -0.947 against dattri CG's -0.977, the same quantity solved iteratively)"
    ),
    "dattri_explicit_fc": (
        "OOM-killed (24 GB) on a 500-row smoke run even restricted to the fc layer (1,450 "
        "parameters): its torch.func.hessian (jacfwd over jacrev) batches one tangent per "
        "parameter through the whole forward pass over the clean batch; dattri sums the "
        "explicit IHVPs over batches, so smaller batches would not give H_c^-1"
    ),
}
MODELS = ("small_cnn", "resnet18")
DATASETS = ("mnist", "cifar10")
#: Further peers left out by default for a model (on top of ``NOT_RUN``), and why.
NOT_RUN_BY_MODEL = {
    "small_cnn": {},
    "resnet18": {
        "reference_if_ggn": (
            "a dense P x P curvature matrix with P = 11.2 million parameters (1e15 bytes in "
            "float64) and its eigh: only for SmallCNN-sized models"
        ),
        "reference_if_hessian": (
            "a dense P x P Hessian with P = 11.2 million parameters (1e15 bytes in float64): "
            "only for SmallCNN-sized models"
        ),
        "dattri_cg": (
            "dattri sums the IHVPs over its loader's batches, so H_c must be one batch: all n_c "
            "clean rows through ResNet18's double backward at once (several GB per thousand "
            "32x32 images); runs with --peers dattri_cg for a few hundred rows"
        ),
    },
}


def not_run(model: str) -> dict:
    """Peers left out of the default run for ``model``, with the reasons."""
    prefix = "" if model == "small_cnn" else "measured on SmallCNN: "
    return {**{k: prefix + v for k, v in NOT_RUN.items()}, **NOT_RUN_BY_MODEL[model]}


def default_peers(model: str) -> list:
    return [name for name in PEERS if name not in not_run(model)]


# ------------------------------------------------------------------------------ data and runs


def load_data(n_train: int, n_test: int, dataset: str = "mnist", root=None):
    """BadNets all-to-one (target 0, 3x3 patch, source classes only) on 10 %, split seed 0.

    mnist: the embedded digits 2x2-pooled to 14x14; cifar10: all ten classes of
    ``root``/cifar-10-batches-py (32x32 RGB; a missing folder raises at once, naming it).
    """
    from backdoor_curves.nn.config import make_nn_data

    extra = {"pool": 2} if dataset == "mnist" else {"root": root}
    return make_nn_data(dataset=dataset, n_train=n_train, n_test=n_test, split_seed=0,
                        mode="all-to-one", target=0, fraction=0.1, trigger="badnets", size=3,
                        exclude_target=True, random_state=0, **extra)  # fmt: skip


def describe_data(dataset: str, data) -> str:
    side = "x".join(str(v) for v in data.image_shape[:2])
    if dataset == "mnist":
        return f"the embedded ten-class digits ({side})"
    return f"CIFAR-10, all ten classes ({side} RGB)"


def make_factory(args, data):
    """A picklable factory of the model ``args.model`` for ``data``, and its description."""
    from backdoor_curves.nn.models import MODEL_KINDS

    in_channels = 1 if data.X_train.ndim == 3 else int(data.X_train.shape[-1])
    if args.model == "small_cnn":
        params = {"width": args.width}
    else:
        weights = None if args.weights.lower() in ("none", "random") else args.weights
        params = {"weights": weights}
    factory = functools.partial(MODEL_KINDS[args.model], n_classes=data.n_classes,
                                in_channels=in_channels, **params)  # fmt: skip
    n_params = sum(q.numel() for q in factory().parameters())
    if args.model == "small_cnn":
        return factory, f"SmallCNN(width={args.width}), {n_params} parameters"
    what = "random" if weights is None else str(args.weights)
    return factory, (f"ResNet18 (torchvision, {what} weights, new 10-class fc, ImageNet input "
                     f"normalisation), {n_params} parameters")  # fmt: skip


def tensors(data):
    import torch

    from backdoor_curves.data import ImageBackdoorData

    X = torch.from_numpy(ImageBackdoorData.to_nchw(data.X_train)).float()
    y = torch.from_numpy(data.y_train)
    Xb = torch.from_numpy(ImageBackdoorData.to_nchw(data.X_test_bd)).float()
    yb = torch.from_numpy(data.y_test_bd)
    return X, y, Xb, yb


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# ------------------------------------------------------------------------------ peers


def kronfluence_peer(model, data, ctx, *, shipped: bool) -> dict:
    import torch
    import torch.nn.functional as F
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    class Classification(Task):
        def compute_train_loss(self, batch, model, sample=False):
            x, y = batch
            logits = model(x)
            if sample:  # the true Fisher: labels sampled from the model (kronfluence's default)
                with torch.no_grad():
                    y = torch.multinomial(torch.softmax(logits.detach(), -1), 1).flatten()
            return F.cross_entropy(logits, y, reduction="sum")

        def compute_measurement(self, batch, model):
            x, y = batch
            return F.cross_entropy(model(x), y, reduction="sum")

    X, y, Xb, yb = ctx["tensors"]
    clean, poison = ctx["clean_rows"], ctx["poison_rows"]
    fit_rows = np.arange(data.n_train) if shipped else clean
    ds = torch.utils.data.TensorDataset
    fit_set = ds(X[fit_rows], y[fit_rows])
    train_set = ds(X[poison], y[poison])
    query_set = ds(Xb, yb)
    task = Classification()
    model = prepare_model(model, task)
    damping = 1e-8 if shipped else cv.mapped_damping(ctx["wd"], data.n_train, len(clean))
    batch, aggregate = ctx["peer_batch"], ctx["aggregate_queries"]
    query_batch = batch if aggregate else len(query_set)
    with tempfile.TemporaryDirectory() as tmp:
        analyzer = Analyzer("nn_peers", model=model, task=task, cpu=ctx["device"] == "cpu",
                            output_dir=tmp, disable_tqdm=True,
                            log_level=logging.WARNING)  # fmt: skip
        analyzer.fit_all_factors(
            "ekfac", dataset=fit_set, per_device_batch_size=batch,
            factor_args=FactorArguments(strategy="ekfac"), overwrite_output_dir=True,
        )  # fmt: skip
        analyzer.compute_pairwise_scores(
            "scores", factors_name="ekfac", query_dataset=query_set, train_dataset=train_set,
            per_device_query_batch_size=query_batch, per_device_train_batch_size=batch,
            score_args=ScoreArguments(damping_factor=damping,
                                      aggregate_query_gradients=aggregate),
            overwrite_output_dir=True,
        )  # fmt: skip
        scores = analyzer.load_pairwise_scores("scores")["all_modules"].double().cpu().numpy()
    if aggregate:  # one row: the sum over V_t of the scores
        scores = scores.reshape(-1) / len(query_set)
    n_fit = len(fit_rows)
    per_row = cv.from_mean_hessian_scores(scores, n_fit)
    if shipped:
        # H_all = (1/n) sum_all (poisoned rows at weight 1): (1/n_fit) with n_fit = n; the
        # Hessian itself differs from H_c (the poisoned rows enter it) and so does the damping
        convention = ("factors on all n rows (poisoned rows at weight 1), damping 1e-8 "
                      "(default), -(1/n) mean_t score")  # fmt: skip
    else:
        convention = (f"factors on the n_c clean rows, damping lambda_wd n/n_c = {damping:.3g}, "
                      "-(1/n_c) mean_t score (score = +g_t^T (F_c + lambda)^-1 g_j, true "
                      "Fisher, all Conv2d/Linear)")  # fmt: skip
    if aggregate:
        convention += "; query gradients summed over V_t (aggregate_query_gradients) / |V_t|"
    return {"per_row": per_row, "convention": convention, "damping": damping}


def trak_peer(model, data, ctx) -> dict:
    import torch
    from trak import TRAKer

    X, y, Xb, yb = ctx["tensors"]
    dev, step = ctx["device"], ctx["peer_batch"]
    lam = data.n_train * ctx["wd"]
    n_params = sum(p.numel() for p in model.parameters())
    proj_dim = min(ctx["trak_proj_dim"], n_params)
    projector = None
    if proj_dim <= 100:
        # traker 0.3.2's BasicProjector with one block (proj_dim <= its block size 100) frees
        # its matrix in finalize_features and never regenerates it (AttributeError when
        # scoring); two blocks regenerate theirs on every call
        from trak.projectors import BasicProjector, ProjectionType

        kind = ProjectionType.normal if dev == "cpu" else ProjectionType.rademacher
        projector = BasicProjector(grad_dim=n_params, proj_dim=proj_dim, seed=0, proj_type=kind,
                                   block_size=(proj_dim + 1) // 2, dtype=torch.float32,
                                   device=dev)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traker = TRAKer(model=model, task="image_classification", train_set_size=data.n_train,
                        save_dir=tmp, device=dev, proj_dim=proj_dim, projector=projector,
                        use_half_precision=False, lambda_reg=lam,
                        logging_level=logging.WARNING)  # fmt: skip
        traker.load_checkpoint(model.state_dict(), model_id=0)
        for start in range(0, data.n_train, step):
            batch = (X[start : start + step].to(dev), y[start : start + step].to(dev))
            traker.featurize(batch=batch, num_samples=len(batch[0]))
        traker.finalize_features()
        traker.start_scoring_checkpoint(exp_name="vt", checkpoint=model.state_dict(),
                                        model_id=0, num_targets=len(yb))  # fmt: skip
        for start in range(0, len(yb), step):
            batch = (Xb[start : start + step].to(dev), yb[start : start + step].to(dev))
            traker.score(batch=batch, num_samples=len(batch[0]))
        scores = np.asarray(traker.finalize_scores(exp_name="vt"), dtype=np.float64)
        # undo TRAK's xtx_inv /= mean|xtx_inv| from its own stored projected gradients
        grads = torch.as_tensor(
            np.asarray(traker.saver.current_store["grads"]), dtype=torch.float32
        )
        xtx = grads.T @ grads + lam * torch.eye(grads.shape[1])
        scale = float(torch.linalg.inv(xtx).abs().mean())
    chunk = ctx["eval_batch"] or len(yb)  # None: V_t in one forward pass
    with torch.no_grad():
        probs = [torch.softmax(model(Xb[i : i + chunk].to(dev)), -1).cpu()
                 for i in range(0, len(yb), chunk)]  # fmt: skip
        p_test = torch.cat(probs)[torch.arange(len(yb)), yb].double().numpy()
    poison = ctx["poison_rows"]
    per_row = cv.from_trak_scores(scores[poison], p_test, scale)
    per_row_unscaled = cv.from_trak_scores(scores[poison], p_test, 1.0)
    return {
        "per_row": per_row,
        "total_as_shipped_scale": float(per_row_unscaled.sum()),
        "xtx_inv_scale": scale,
        "proj_dim": proj_dim,
        "convention": (f"one checkpoint, proj_dim {proj_dim} (of {n_params}), X^T X over all n "
                       f"rows (no per-sample weights: poisoned rows included), lambda_reg = "
                       f"n lambda_wd = {lam:.3g}; dL/dw_j = -mean_t (1 - p_t) tau_jt c, "
                       f"c = mean|(X^T X + lambda)^-1| = {scale:.3g} undone"
                       + ("" if projector is None else
                          f"; BasicProjector in blocks of {projector.block_size}")),
    }  # fmt: skip


def dattri_peer(model, data, ctx, method: str) -> dict:
    import torch
    import torch.nn.functional as F
    from dattri.algorithm.influence_function import (
        IFAttributorArnoldi,
        IFAttributorCG,
        IFAttributorExplicit,
        IFAttributorLiSSA,
    )
    from dattri.task import AttributionTask

    X, y, Xb, yb = ctx["tensors"]
    clean, poison = ctx["clean_rows"], ctx["poison_rows"]
    lam = cv.mapped_damping(ctx["wd"], data.n_train, len(clean))
    dev = ctx["device"]

    def loss_func(params, batch):  # mean CE: per-sample for one row, H_c over the clean batch
        x, t = batch
        x = x.reshape(-1, *X.shape[1:])
        logits = torch.func.functional_call(model, params, x)
        return F.cross_entropy(logits, t.reshape(-1).long())

    task = AttributionTask(loss_func=loss_func, model=model, checkpoints=model.state_dict())
    dl = torch.utils.data.DataLoader
    ds = torch.utils.data.TensorDataset
    if method == "lissa":
        full = dl(ds(X[clean], y[clean]), batch_size=64, shuffle=True,
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    else:  # the IHVP is summed over the batches of this loader: one batch = H_c
        full = dl(ds(X[clean], y[clean]), batch_size=len(clean))
    train = dl(ds(X[poison], y[poison]), batch_size=len(poison))
    # one "test sample" = all of V_t: its loss is the mean backdoor loss (one IHVP)
    test = dl(ds(Xb[None], yb[None]), batch_size=1)
    layer = None
    if method == "cg":
        att = IFAttributorCG(task=task, device=dev, regularization=lam, max_iter=ctx["cg_iter"])
        what = f"CG ({ctx['cg_iter']} iterations max, tol 1e-7)"
    elif method == "lissa":
        att = IFAttributorLiSSA(task=task, device=dev, damping=lam, scaling=ctx["lissa_scaling"],
                                recursion_depth=ctx["lissa_depth"], num_repeat=1)  # fmt: skip
        what = (f"LiSSA (depth {ctx['lissa_depth']}, batches of 64, scaling "
                f"{ctx['lissa_scaling']:g})")  # fmt: skip
    elif method == "arnoldi":
        att = IFAttributorArnoldi(task=task, device=dev, regularization=lam, proj_dim=100,
                                  max_iter=100)  # fmt: skip
        what = "Arnoldi (top 100 eigenpairs, 100 iterations)"
    elif method == "explicit_fc":
        layer = ["fc.weight", "fc.bias"]
        att = IFAttributorExplicit(task=task, layer_name=layer, device=dev, regularization=lam)
        what = "explicit Hessian of the fc layer only (fc.weight, fc.bias)"
    else:
        raise ValueError(method)
    att.cache(full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = att.attribute(train, test).detach().double().cpu().numpy()  # (n_poison, 1)
    per_row = cv.from_mean_hessian_scores(scores[:, 0], len(clean))
    return {
        "per_row": per_row,
        "convention": f"{what}; H_c over the n_c clean rows (mean CE) + lambda_wd n/n_c "
        f"= {lam:.3g}; test = mean CE over V_t; -(1/n_c) score",
        "layers": layer or "all",
    }


def reference_if(model, data, ctx, *, hessian: bool) -> dict:
    """Koh and Liang's influence function (1) with a dense curvature matrix, in float64.

    ``hessian=False``: the exact Gauss-Newton matrix G_c = (1/n_c) sum_i J_i^T (diag(p_i) -
    p_i p_i^T) J_i (J_i the Jacobian of the logits, per-sample by ``vmap(jacrev)``), what
    EK-FAC and TRAK approximate. ``hessian=True``: the exact Hessian H_c of the mean clean
    cross-entropy, column by column from Hessian-vector products (``vmap`` of ``jvp`` of
    ``grad``). Both with lambda_wd n / n_c I, solved by ``eigh`` (the spectrum is recorded).
    Not a peer: the reference that separates the influence function's own error (the network
    is not at an optimum) from a library's approximation of it.
    """
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, jacrev, jvp, vmap

    X, y, Xb, yb = ctx["tensors"]
    clean, poison = ctx["clean_rows"], ctx["poison_rows"]
    model = model.double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    names = list(params)
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]

    def unflat(v):
        return dict(
            zip(
                names,
                (t.reshape(s) for t, s in zip(v.split(sizes), shapes, strict=True)),
                strict=True,
            )
        )

    flat = torch.cat([params[k].reshape(-1) for k in names])
    P = flat.numel()
    Xc, yc = X[clean].double(), y[clean]

    def loss(v, xb, yb_):
        return F.cross_entropy(functional_call(model, unflat(v), (xb,)), yb_, reduction="sum")

    def per_sample_grad(v, x, t):
        return grad(lambda w: loss(w, x[None], t[None]))(v)

    g_rows = vmap(per_sample_grad, in_dims=(None, 0, 0))(flat, X[poison].double(), y[poison])
    g_t = grad(lambda w: loss(w, Xb.double(), yb) / len(yb))(flat)
    chunks = [np.arange(len(clean))[i : i + 300] for i in range(0, len(clean), 300)]
    M = torch.zeros(P, P, dtype=torch.float64)
    if hessian:
        eye = torch.eye(P, dtype=torch.float64)
        for c in chunks:
            xb, tb = Xc[c], yc[c]

            def hvp(v, xb=xb, tb=tb):
                return jvp(lambda w: grad(lambda u: loss(u, xb, tb))(w), (flat,), (v,))[1]

            for i in range(0, P, 64):
                M[i : i + 64] += vmap(hvp)(eye[i : i + 64])
        M = (M + M.T) / 2
    else:

        def logits_of(v, x):
            return functional_call(model, unflat(v), (x[None],))[0]

        for c in chunks:
            J = vmap(jacrev(logits_of), in_dims=(None, 0))(flat, Xc[c])  # (b, 10, P)
            p = torch.softmax(vmap(logits_of, in_dims=(None, 0))(flat, Xc[c]), -1)
            A = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
            evals, evecs = torch.linalg.eigh(A)
            root = evecs * evals.clamp_min(0).sqrt()[:, None, :] @ evecs.transpose(1, 2)
            B = (root @ J).reshape(-1, P)
            M += B.T @ B
    M /= len(clean)
    lam = cv.mapped_damping(ctx["wd"], data.n_train, len(clean))
    evals, evecs = torch.linalg.eigh(M)
    coef = (evecs.T @ g_t) / (evals + lam)
    x = evecs @ coef  # (M + lam I)^-1 g_t
    per_row = -(g_rows @ x).numpy() / len(clean)
    return {
        "per_row": per_row,
        "lambda": lam,
        "eig_min": float(evals[0]),
        "eig_max": float(evals[-1]),
        "n_negative": int((evals < 0).sum()),
        "n_below_lambda": int((evals.abs() < lam).sum()),
        "convention": ("exact " + ("Hessian" if hessian else "Gauss-Newton matrix")
                       + f" of the mean clean CE (dense, {P} x {P}) + lambda_wd n/n_c = "
                       f"{lam:.3g}, float64, eigh; -(1/n_c) g_t^T (M + lambda)^-1 g_j"),
    }  # fmt: skip


def run_peer(name, model_factory, trained_state, data, ctx) -> dict:
    import torch

    model = model_factory()
    model.load_state_dict(trained_state)
    # the dense references run on the CPU (float64 eigh); the libraries on --device
    model.to("cpu" if name.startswith("reference_if") else ctx["device"])
    model.eval()
    torch.manual_seed(0)
    if name.startswith("reference_if"):
        fn = functools.partial(reference_if, hessian=name.endswith("hessian"))
    elif name.startswith("kronfluence"):
        fn = functools.partial(kronfluence_peer, shipped=name.endswith("shipped"))
    elif name == "trak":
        fn = trak_peer
    else:
        fn = functools.partial(dattri_peer, method=name.removeprefix("dattri_"))
    try:
        out, seconds = timed(lambda: fn(model, data, ctx))
    except Exception as exc:  # recorded in the table, never silently dropped
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                "traceback": traceback.format_exc()[-2000:]}  # fmt: skip
    out["seconds"] = seconds
    return out


# ------------------------------------------------------------------------------ one budget


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def run_budget(epochs: int, data, factory, args) -> dict:
    import torch

    from backdoor_curves.nn.exact import point_derivatives, training_derivative
    from backdoor_curves.nn.train import TrainConfig, evaluate, train

    cfg = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, momentum=0.9,
                      weight_decay=5e-4, optimizer="sgd", seed=0, device=args.device,
                      threads=args.threads)  # fmt: skip
    res = {"epochs": epochs, "config": cfg.describe()}
    (base, scores0), t_run = timed(
        lambda: (r := train(factory, data, 0.0, cfg), evaluate(r.model, data))
    )
    res["train_seconds"] = t_run
    res["beta0"] = scores0
    print(f"[{epochs} ep] train {t_run:.1f}s  {scores0}", flush=True)
    exact, t = timed(lambda: training_derivative(factory, data, cfg))
    res["exact"] = {"derivative": exact.derivative, "seconds": t, "ratio": t / t_run}
    print(f"[{epochs} ep] exact {exact.derivative:.6g} in {t:.1f}s", flush=True)
    poison = np.flatnonzero(data.poisoned)
    subset = np.sort(np.random.default_rng(0).choice(poison, size=min(args.points, poison.size),
                                                     replace=False))  # fmt: skip
    pts, t = timed(lambda: point_derivatives(factory, data, cfg, rows=subset,
                                             chunk_size=args.points))  # fmt: skip
    res["points"] = {"rows": subset, "derivatives": pts.derivatives, "seconds": t,
                     "ratio": t / t_run, "chunk_size": args.points}  # fmt: skip
    print(f"[{epochs} ep] {subset.size} point derivatives in {t:.1f}s", flush=True)
    fd = []
    for h in args.h:
        (at, t) = timed(lambda h=h: evaluate(train(factory, data, h, cfg).model, data))
        d = (at["backdoor_loss"] - scores0["backdoor_loss"]) / h
        fd.append({"h": h, "derivative": d, "rel_err": cv.relative_error(d, exact.derivative),
                   "seconds": t, "ratio": t / t_run})  # fmt: skip
        print(f"[{epochs} ep] FD h={h:g}: {d:.6g}", flush=True)
    res["finite_differences"] = fd
    ctx = {
        "tensors": tensors(data),
        "clean_rows": np.flatnonzero(~data.poisoned),
        "poison_rows": poison,
        "wd": cfg.weight_decay,
        "trak_proj_dim": args.trak_proj_dim,
        "cg_iter": args.cg_iter,
        "lissa_depth": args.lissa_depth,
        "lissa_scaling": args.lissa_scaling,
        "device": args.device,
        "peer_batch": args.peer_batch_size,
        "aggregate_queries": args.model != "small_cnn",
        "eval_batch": None if args.model == "small_cnn" else args.peer_batch_size,
    }
    state = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    where = {int(r): k for k, r in enumerate(poison)}
    sub_idx = np.array([where[int(r)] for r in subset])
    res["peers"] = {}
    for name in args.peers:
        torch.set_num_threads(args.threads)
        out = run_peer(name, factory, state, data, ctx)
        if "per_row" in out:
            per_row = out.pop("per_row")
            total = float(per_row.sum())
            out.update(
                derivative=total,
                rel_err=cv.relative_error(total, exact.derivative),
                spearman=spearman(per_row[sub_idx], pts.derivatives),
                subset_estimates=per_row[sub_idx],
                ratio=out["seconds"] / t_run,
            )
            print(f"[{epochs} ep] {name}: {total:.6g} (rel {out['rel_err']:+.2e}, rho "
                  f"{out['spearman']:.3f}) in {out['seconds']:.1f}s", flush=True)  # fmt: skip
        else:
            print(f"[{epochs} ep] {name}: FAILED {out['error']}", flush=True)
        res["peers"][name] = out
    return res


# ------------------------------------------------------------------------------ main


def versions() -> dict:
    out = {}
    for pkg in ("torch", "kronfluence", "traker", "dattri", "numpy", "scipy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", choices=MODELS, default="small_cnn")
    p.add_argument("--weights", default="none",
                   help="resnet18: none (random), imagenet (torchvision's cache, never "
                        "downloaded) or a state-dict path")  # fmt: skip
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--root", type=Path, default=None,
                   help="cifar10: the folder holding cifar-10-batches-py/")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=32, help="SGD batch")
    p.add_argument("--lr", type=float, default=0.02, help="SGD learning rate")
    p.add_argument("--peer-batch-size", type=int, default=256,
                   help="batch of the peers' per-sample gradients and factors")  # fmt: skip
    p.add_argument("--note", default="", help="free text added to the table's header")
    p.add_argument("--epochs", type=int, nargs="+", default=[1, 5, 20])
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--points", type=int, default=32, help="poisoned rows of the per-point view")
    p.add_argument("--h", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1, 1.0])
    p.add_argument("--peers", nargs="+", default=None, choices=(*PEERS, *NOT_RUN),
                   help="default: PEERS less the model's NOT_RUN_BY_MODEL")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--trak-proj-dim", type=int, default=2048)
    p.add_argument("--cg-iter", type=int, default=100)
    p.add_argument("--lissa-depth", type=int, default=1000)
    p.add_argument("--lissa-scaling", type=float, default=50.0)
    p.add_argument("--out", type=Path, default=BENCH / "results" / "nn_peers.json")
    args = p.parse_args(argv)
    if args.peers is None:
        args.peers = default_peers(args.model)
    if args.dataset == "cifar10" and args.root is None:
        p.error("--dataset cifar10 needs --root (the folder holding cifar-10-batches-py/)")
    if args.model == "small_cnn" and args.weights.lower() not in ("none", "random"):
        p.error("--weights is for --model resnet18")

    import torch

    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    start = time.perf_counter()
    data = load_data(args.n_train, args.n_test, args.dataset, args.root)
    factory, model_text = make_factory(args, data)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": bench_core._git_commit(),
        "nproc": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "versions": versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": {
            "n_train": data.n_train,
            "n_poison": data.n_poison,
            "n_clean": int((~data.poisoned).sum()),
            "n_test_bd": len(data.y_test_bd),
            "image_shape": list(data.image_shape),
        },  # fmt: skip
        "model": model_text,
        "data_description": describe_data(args.dataset, data),
        "device": args.device,
        "train": {"batch_size": args.batch_size, "lr": args.lr},
        "note": args.note,
        "not_run": {k: v for k, v in not_run(args.model).items() if k not in args.peers},
    }
    # warm-up (torch's first-call costs), so that no budget's denominator includes them
    from backdoor_curves.nn.exact import training_derivative
    from backdoor_curves.nn.train import TrainConfig, train

    warm = TrainConfig(epochs=1, batch_size=args.batch_size, lr=args.lr, device=args.device,
                       threads=args.threads)  # fmt: skip
    train(factory, data, 0.0, warm)
    training_derivative(factory, data, warm)
    runs = []
    for epochs in args.epochs:
        runs.append(run_budget(epochs, data, factory, args))
        meta["wall_seconds"] = time.perf_counter() - start
        out = {"meta": meta, "runs": runs}
        text = json.dumps(out, indent=2, default=bench_core._json_default) + "\n"
        bench_core._write_text(args.out, text)
        bench_core._write_text(args.out.with_suffix(".md"), report.markdown(json.loads(text)))
    print(report.markdown(json.loads(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
