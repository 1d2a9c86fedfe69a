"""secml 0.15.6 ``CExplainerInfluenceFunctions`` vs ``backdoor_slope``, in secml's own venv.

Runs in ``benchmarks/peers/.venv-secml`` (numpy 1.26.4, scikit-learn 1.7.2, secml 0.15.6 and
backdoor_curves; see ``requirements-secml.txt`` and ``make bench-peers``), so that our numbers
and secml's come from one process and the time ratios from one interleaved run.

What secml computes (read from its source, ``secml/explanation/c_explainer_influence_functions.py``
and the logistic gradient mixins), with ``explain(x, y)`` on a classifier trained by secml:

    v[t, j] = g_t^T  H(x)^{-1}  (g_j + [w; 0])

- ``g = (C / ln 2) Xa^T l'`` per point: the derivative of C times the log2 loss (``CLossLogistic``
  divides by ln 2), for the test points (``grad_loss_params``) and the training points of
  ``tr_ds`` (``grad_tr_params``, which also adds the regularizer's gradient [w; 0] to *every*
  column);
- ``H(x) = C Xa^T diag(p (1 - p)) Xa + diag(1, ..., 1, 0)`` (natural log, intercept unpenalized)
  computed at the points passed to ``explain`` -- the *test* points -- plus 1e-9 I, inverted
  explicitly (``pinv`` if |det| < 1e-6);
- the model is ``CClassifierLogistic`` = scikit-learn's liblinear, which penalizes the intercept
  (tol 1e-4); no minus sign.

Reduction to the slope (tr_ds = P, explain on V_t): with H = H0 and no regularizer term,
v[t, j] = (C / ln^2 2) grad l_t^T H0^{-1} C grad l_j, so

    derivative = -(ln 2)^2 / C * sum_j mean_t v[t, j].

Variants:

- ``shipped``: exactly the above (secml's fit, test-set Hessian, regularizer term), reduced with
  that formula;
- ``fixed``: theta0 of the tight scikit-learn fit (true convention) loaded into the secml
  classifier, and a two-method subclass of the explainer: ``hessian`` over the clean training set
  D (``hessian_tr_params(X_D, y_D)``) and ``grad_inner_loss_params`` = ``grad_loss_params`` (no
  regularizer term); secml's explicit inverse and its ``explain`` do the rest;
- ablations (untimed): each of the two fixes alone on secml's own fit.

Our side: ``backdoor_slope(LogisticLearner(C), data)`` (fit at beta = 0 included) and the slope
alone on the fitted model (``slope_terms``, the same work the peer does with a trained model).
All timed interleaved with ``bench_core.interleaved``, BLAS pinned to 1 thread for everyone.

Run:  benchmarks/peers/.venv-secml/bin/python benchmarks/peers/bench_secml.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (pins the thread pools before numpy loads)

_common_home = _common.HERE / ".secml-home"
os.environ.setdefault("SECML_HOME_DIR", str(_common_home))
os.environ.setdefault("SECML_PYTORCH_DIR", str(_common_home / "pytorch-data"))

import numpy as np  # noqa: E402
from bench_core import _ratio, interleaved, machine_info  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

DEFAULT_OUT = _common.RESULTS / "peers_secml.json"
LN2_SQ = np.log(2.0) ** 2


def _secml():
    import secml
    from secml.array import CArray
    from secml.data import CDataset
    from secml.explanation import CExplainerInfluenceFunctions
    from secml.ml.classifiers import CClassifierLogistic

    class TrainingHessianExplainer(CExplainerInfluenceFunctions):
        """secml's explainer with the two convention fixes (H over D, no regularizer term)."""

        def __init__(self, clf, tr_ds, h_ds, fix_hessian=True, fix_reg=True):
            super().__init__(clf, tr_ds)
            self._h_ds, self._fix_hessian, self._fix_reg = h_ds, fix_hessian, fix_reg

        def hessian(self, x, y):
            if self._fix_hessian:
                return self.clf.hessian_tr_params(self._h_ds.X, self._h_ds.Y)
            return super().hessian(x, y)

        def grad_inner_loss_params(self, x, y):
            if self._fix_reg:
                return self.clf.grad_loss_params(x, y)
            return super().grad_inner_loss_params(x, y)

    return {
        "version": secml.__version__,
        "CArray": CArray,
        "CDataset": CDataset,
        "Explainer": CExplainerInfluenceFunctions,
        "Fixed": TrainingHessianExplainer,
        "Logistic": CClassifierLogistic,
    }


def run_C(S, data, C: float, repeats: int) -> dict:
    CArray, CDataset = S["CArray"], S["CDataset"]
    enc = _common.encode
    ds_D = CDataset(CArray(data.X_clean), CArray(enc(data, data.y_clean)))
    ds_P = CDataset(CArray(data.X_poison), CArray(enc(data, data.y_poison)))
    x_t, y_t = CArray(data.X_test_bd), CArray(enc(data, data.y_test_bd))

    # secml's own fit (liblinear, intercept penalized), as a secml user gets it
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        clf_shipped = S["Logistic"](C=C)
        clf_shipped.fit(ds_D.X, ds_D.Y)
    fit_shipped_seconds = time.perf_counter() - t0
    # theta0 of the tight scikit-learn fit (true convention) loaded into a secml classifier
    w0, b0 = _common.Refit(data, C, "sklearn").theta0()
    clf_fixed = S["Logistic"](C=C)
    with threadpool_limits(limits=1, user_api="blas"):
        clf_fixed.fit(ds_D.X, ds_D.Y)
    clf_fixed._sklearn_model.coef_[:] = w0
    clf_fixed._sklearn_model.intercept_[:] = b0

    def reduce(v) -> float:
        v = v.tondarray()
        return float(-LN2_SQ / C * v.mean(axis=0).sum())

    def shipped():
        with threadpool_limits(limits=1, user_api="blas"):
            return reduce(S["Explainer"](clf_shipped, ds_P).explain(x_t, y_t))

    def fixed():
        with threadpool_limits(limits=1, user_api="blas"):
            return reduce(S["Fixed"](clf_fixed, ds_P, ds_D).explain(x_t, y_t))

    stats, values = interleaved(
        {
            **_common.ours(data, C),
            "secml_shipped": shipped,
            "secml_fixed": fixed,
        },
        repeats,
    )
    ablation = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, kw in {
            "shipped_fit_hessian_on_D_only": {"fix_hessian": True, "fix_reg": False},
            "shipped_fit_no_reg_term_only": {"fix_hessian": False, "fix_reg": True},
            "shipped_fit_both_fixes": {"fix_hessian": True, "fix_reg": True},
            "sklearn_theta_no_fix": {"fix_hessian": False, "fix_reg": False},
        }.items():
            clf = clf_fixed if name.startswith("sklearn") else clf_shipped
            ablation[name] = reduce(S["Fixed"](clf, ds_P, ds_D, **kw).explain(x_t, y_t))

    t0 = time.perf_counter()
    refs = {conv: _common.Refit(data, C, conv).derivative() for conv in _common.CONVENTIONS}
    refs_seconds = time.perf_counter() - t0
    ref, ref_b = refs["sklearn"]["derivative"], refs["bias_reg"]["derivative"]
    w_s = clf_shipped.w.tondarray().ravel()
    out = {
        "C": C,
        "derivative": {
            "ours": values["ours"],
            "ours_given_fit": values["ours_given_fit"],
            "secml_shipped": values["secml_shipped"],
            "secml_fixed": values["secml_fixed"],
            **{f"ablation_{k}": v for k, v in ablation.items()},
        },
        "reference": refs,
        "reference_seconds": refs_seconds,
        "rel_err_vs_retraining": {
            "ours": _common.rel(values["ours"], ref),
            "secml_shipped": _common.rel(values["secml_shipped"], ref),
            "secml_shipped_vs_bias_reg_retraining": _common.rel(values["secml_shipped"], ref_b),
            "secml_fixed": _common.rel(values["secml_fixed"], ref),
            **{f"ablation_{k}": _common.rel(v, ref) for k, v in ablation.items()},
        },
        "secml_fit": {
            "seconds": fit_shipped_seconds,
            "theta_rel_diff_to_sklearn": float(
                np.linalg.norm(
                    np.r_[w_s - w0, float(clf_shipped._sklearn_model.intercept_[0]) - b0]
                )
                / np.linalg.norm(np.r_[w0, b0])
            ),
        },
        "time": stats,
        "ratio": {
            "secml_shipped/ours": _ratio(stats["secml_shipped"], stats["ours"]),
            "secml_fixed/ours": _ratio(stats["secml_fixed"], stats["ours"]),
            "secml_shipped/ours_given_fit": _ratio(stats["secml_shipped"], stats["ours_given_fit"]),
            "secml_fixed/ours_given_fit": _ratio(stats["secml_fixed"], stats["ours_given_fit"]),
        },
    }
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--C", type=float, nargs="+", default=[1.0, 100.0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    result = {"meta": machine_info(), "peer": "secml", "runs": []}
    try:
        S = _secml()
        result["meta"]["versions"]["secml"] = S["version"]
    except Exception as exc:  # record why the peer could not run instead of faking it
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        S = None
    if S is not None:
        data = _common.load_data()
        result["data"] = repr(data)
        for C in args.C:
            bench_core_log(f"secml: C = {C:g}")
            try:
                result["runs"].append(run_C(S, data, C, args.repeats))
            except Exception as exc:
                result["runs"].append(
                    {"C": C, "error": f"{type(exc).__name__}: {exc}", "tb": traceback.format_exc()}
                )
    result["meta"]["wall_seconds"] = time.perf_counter() - t_start
    _common.write_json(args.out, result)
    bench_core_log(f"wrote {args.out} in {result['meta']['wall_seconds']:.0f} s")
    return 0


def bench_core_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
