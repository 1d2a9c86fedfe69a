"""pyDVL 0.10.0 `DirectInfluence` and captum 0.9.0 `NaiveInfluenceFunction` vs `backdoor_slope`.

Runs in ``benchmarks/peers/.venv-torch`` (numpy 1.26.4, torch 2.14.1, pyDVL 0.10.0, captum 0.9.0
and backdoor_curves; see ``requirements-torch.txt`` and ``make bench-peers``): both peers and our
toolkit in one process, timed interleaved with ``bench_core.interleaved``; BLAS and torch pinned
to 1 thread for everyone. The logistic model is a float64 ``torch.nn.Linear`` with
``BCEWithLogits`` (natural log, labels 0/1, 1 = ``data.classes[1]``).

What they compute (their docs and source):

- pyDVL ``DirectInfluence(model, loss, regularization=lam).fit(loader_D)`` builds
  ``H_p = mean_D hess l + lam I`` (``torch.func.hessian``, batch-weighted mean, ``lam I`` on *all*
  parameters, the bias included) and ``influences(x_t, y_t, x_P, y_P, mode="up")`` returns
  ``I[t, j] = + grad l_t^T H_p^{-1} grad l_j``. With ``lam = 1 / (C n_D)``, ``H0 = C n_D H_p``, so

      derivative = -(1 / n_D) * sum_j mean_t I[t, j].

- captum ``NaiveInfluenceFunction(model, train_dataset=P, hessian_dataset=D,
  hessian_reg=1/C, projection_dim=n_params)`` forms ``H_c = sum_D hess l + hessian_reg I`` (the
  Hessian of the *summed* loss, eigendecomposed; all eigenpairs kept at full ``projection_dim``,
  the default 50 would truncate) and ``influence((x_t, y_t))`` returns
  ``I[t, j] = + grad l_t^T H_c^{-1} grad l_j``. ``H0 = C H_c``, so

      derivative = -sum_j mean_t I[t, j].

Both regularize the intercept (``lam I`` / ``hessian_reg I`` cover every parameter), i.e. they
differentiate J + 1/2 b^2 (the ``bias_reg`` convention of ``_common``). Variants:

- ``shipped``: ``nn.Linear(784, 1)`` at the optimum of J + 1/2 b^2 (tight scikit-learn fit on
  [X, 1] without intercept), compared with re-training in that convention *and* in
  scikit-learn's;
- ``fixed``: the intercept re-parametrized as b = s * b' (``nn.Linear(785, 1, bias=False)`` on
  [X, s]) at scikit-learn's optimum: the same ``lam I`` then penalizes b by lam / s^2, i.e.
  (s = ``--bias-scale``, default 1e3) the intercept is unpenalized to 1e-6 relative, and the
  derivative is invariant under the re-parametrization. Compared with scikit-learn re-training.

Untimed extra: captum at its default ``projection_dim=50`` (the top 50 of 785 eigenpairs), compared
with re-training in its own convention.

Our side: ``backdoor_slope(LogisticLearner(C), data)`` (fit at beta = 0 included) and the slope on
the already fitted model (``slope_terms``: what the peers do with a trained model). Peer times
exclude training (they are handed theta0) but include building H from the data.

Run:  benchmarks/peers/.venv-torch/bin/python benchmarks/peers/bench_torch_peers.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (pins the thread pools before numpy / torch load)
import numpy as np  # noqa: E402
from bench_core import _ratio, interleaved, machine_info  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

DEFAULT_OUT = _common.RESULTS / "peers_torch.json"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Problem:
    """Torch tensors of D, P, V_t for one parametrization (plain or bias-rescaled)."""

    def __init__(self, torch, data, bias_scale: float | None):
        t = torch

        def X(a):
            a = np.asarray(a, dtype=np.float64)
            if bias_scale is not None:
                a = np.hstack([a, np.full((a.shape[0], 1), bias_scale)])
            return t.from_numpy(a)

        def Y(a):
            return t.from_numpy(_common.encode(data, a).astype(np.float64)).reshape(-1, 1)

        self.bias_scale = bias_scale
        self.n_features = data.n_features
        self.X_D, self.y_D = X(data.X_clean), Y(data.y_clean)
        self.X_P, self.y_P = X(data.X_poison), Y(data.y_poison)
        self.X_t, self.y_t = X(data.X_test_bd), Y(data.y_test_bd)

    def model(self, torch, w: np.ndarray, b: float):
        nn = torch.nn
        if self.bias_scale is None:
            m = nn.Linear(self.n_features, 1, bias=True).double()
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w).reshape(1, -1))
                m.bias.fill_(b)
        else:
            m = nn.Linear(self.n_features + 1, 1, bias=False).double()
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.r_[w, b / self.bias_scale]).reshape(1, -1))
        return m.eval()

    @property
    def n_params(self) -> int:
        return self.n_features + 1


def make_pydvl(torch, prob: Problem, model, C: float):
    from pydvl.influence.torch import DirectInfluence
    from torch.utils.data import DataLoader, TensorDataset

    F = torch.nn.functional
    n_D = prob.X_D.shape[0]
    loader = DataLoader(TensorDataset(prob.X_D, prob.y_D), batch_size=n_D)

    def run() -> float:
        inf = DirectInfluence(
            model, F.binary_cross_entropy_with_logits, regularization=1 / (C * n_D)
        )
        inf = inf.fit(loader)
        I = inf.influences(prob.X_t, prob.y_t, prob.X_P, prob.y_P, mode="up")
        return float(-I.mean(dim=0).sum() / n_D)

    return run


def make_captum(torch, prob: Problem, model, C: float, ckpt: Path, projection_dim=None):
    from captum.influence import NaiveInfluenceFunction
    from torch.utils.data import DataLoader, TensorDataset

    torch.save(model.state_dict(), ckpt)
    train = DataLoader(TensorDataset(prob.X_P, prob.y_P), batch_size=prob.X_P.shape[0])
    hess = DataLoader(TensorDataset(prob.X_D, prob.y_D), batch_size=prob.X_D.shape[0])

    def run() -> float:
        inf = NaiveInfluenceFunction(
            model,
            train_dataset=train,
            checkpoint=str(ckpt),
            loss_fn=torch.nn.BCEWithLogitsLoss(reduction="sum"),
            sample_wise_grads_per_batch=True,
            hessian_dataset=hess,
            projection_dim=prob.n_params if projection_dim is None else projection_dim,
            hessian_reg=1.0 / C,
        )
        I = inf.influence((prob.X_t, prob.y_t))
        return float(-I.mean(dim=0).sum())

    return run


def run_C(torch, data, C: float, repeats: int, bias_scale: float, tmp: Path) -> dict:
    refit = {conv: _common.Refit(data, C, conv) for conv in _common.CONVENTIONS}
    theta = {conv: r.theta0() for conv, r in refit.items()}
    plain = Problem(torch, data, None)
    scaled = Problem(torch, data, bias_scale)
    m_shipped = plain.model(torch, *theta["bias_reg"])
    m_fixed = scaled.model(torch, *theta["sklearn"])

    funcs = _common.ours(data, C)
    errors = {}
    for peer, make in (("pydvl", make_pydvl), ("captum", make_captum)):
        for variant, prob, model in (("shipped", plain, m_shipped), ("fixed", scaled, m_fixed)):
            name = f"{peer}_{variant}"
            try:
                if peer == "pydvl":
                    f = make(torch, prob, model, C)
                else:
                    f = make(torch, prob, model, C, tmp / f"{name}_C{C:g}.pt")
                f()  # fail here, not inside the timer
                funcs[name] = f
            except Exception as exc:  # record why the peer could not run instead of faking it
                errors[name] = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "tb": traceback.format_exc(),
                }
                _log(f"  {name} failed: {errors[name]['error']}")

    def limited(f):
        def g():
            with threadpool_limits(limits=1, user_api="blas"):
                return f()

        return g

    stats, values = interleaved({k: limited(f) for k, f in funcs.items()}, repeats)
    # untimed extra: captum at its default projection_dim (50 of 785 eigenpairs kept)
    extra = {}
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            extra["captum_shipped_projection_dim_50"] = make_captum(
                torch, plain, m_shipped, C, tmp / f"captum_50_C{C:g}.pt", projection_dim=50
            )()
    except Exception as exc:
        errors["captum_shipped_projection_dim_50"] = {
            "error": f"{type(exc).__name__}: {exc}",
            "tb": traceback.format_exc(),
        }
    t0 = time.perf_counter()
    refs = {conv: r.derivative() for conv, r in refit.items()}
    refs_seconds = time.perf_counter() - t0
    ref, ref_b = refs["sklearn"]["derivative"], refs["bias_reg"]["derivative"]

    rel_err = {"ours": _common.rel(values["ours"], ref)}
    ratio = {}
    for name in funcs:
        if name.startswith("ours"):
            continue
        rel_err[name] = _common.rel(values[name], ref)
        if name.endswith("shipped"):
            rel_err[f"{name}_vs_bias_reg_retraining"] = _common.rel(values[name], ref_b)
        ratio[f"{name}/ours"] = _ratio(stats[name], stats["ours"])
        ratio[f"{name}/ours_given_fit"] = _ratio(stats[name], stats["ours_given_fit"])
    for name, v in extra.items():
        rel_err[f"{name}_vs_bias_reg_retraining"] = _common.rel(v, ref_b)
    return {
        "C": C,
        "bias_scale": bias_scale,
        "untimed": extra,
        "derivative": dict(values),
        "reference": refs,
        "reference_seconds": refs_seconds,
        "rel_err_vs_retraining": rel_err,
        "bias_reg_vs_sklearn_retraining": _common.rel(ref_b, ref),
        "time": stats,
        "ratio": ratio,
        "errors": errors,
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--C", type=float, nargs="+", default=[1.0, 100.0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--bias-scale", type=float, default=1e3)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    result = {"meta": machine_info(), "peers": ["pydvl", "captum"], "runs": []}
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        versions = result["meta"]["versions"]
        versions["torch"] = torch.__version__
        for pkg in ("pydvl", "captum"):
            try:
                versions[pkg] = __import__(pkg).__version__
            except Exception as exc:
                versions[pkg] = f"import failed: {type(exc).__name__}: {exc}"
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        torch = None
    if torch is not None:
        data = _common.load_data()
        result["data"] = repr(data)
        with tempfile.TemporaryDirectory() as tmp:
            for C in args.C:
                _log(f"torch peers: C = {C:g}")
                try:
                    result["runs"].append(
                        run_C(torch, data, C, args.repeats, args.bias_scale, Path(tmp))
                    )
                except Exception as exc:
                    result["runs"].append(
                        {
                            "C": C,
                            "error": f"{type(exc).__name__}: {exc}",
                            "tb": traceback.format_exc(),
                        }
                    )
    result["meta"]["wall_seconds"] = time.perf_counter() - t_start
    _common.write_json(args.out, result)
    _log(f"wrote {args.out} in {result['meta']['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
