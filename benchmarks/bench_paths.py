"""Path benchmark: exact learning-curve paths (method="auto") vs re-fits, on 784 and 4096 features.

Two problems:

(1) ``mnist``: MNIST 7 vs 1 as in ``bench_core.py`` (750 train / 250 test, 784 pixels, BadNets 3x3
    on 10% of the training set); RBF gamma = 5e-3.
(2) ``fc7``: a 4096-feature stand-in for AlexNet fc7 features: seeded Gaussian points, two classes
    at +-SEP along a random unit direction, passed through a ReLU (non-negative, like fc7); 750
    train / 250 test. The poisoning set is 10% of the training points plus a fixed non-negative
    random "trigger" vector (norm TRIGGER_NORM) with flipped labels; the backdoor test set is every
    test point plus the trigger with flipped labels. RBF gamma = 1 / (n_features * variance of the
    training features), scikit-learn's ``gamma="scale"`` computed once.

Per learner (LogisticLearner(C=1), RidgeLearner(alpha=0.5), LinearSVMLearner(C=0.1),
RBFSVMLearner(C=10, gamma)) it times, interleaved,

- ``auto21``: ``learning_curve(learner, data, default_betas(), method="auto")`` (the exact path);
- ``auto201``: the same on ``np.r_[0, np.geomspace(1e-3, 1, 200)]``;
- ``refit21``: ``learning_curve(..., method="refit")`` on the 21 betas;
- ``sklearn21``: re-fitting the scikit-learn counterpart from scratch at each of the 21 betas with
  sample weights 1 on D, beta on P, at matched accuracy (the cheapest setting whose MNIST curve
  agrees with ours to 1e-6 relative: LogisticRegression(solver="newton-cg", tol=1e-8);
  SVC(tol=1e-7), whose RBF curve stops at libsvm's 1.5e-6 plateau; RidgeClassifier defaults),
  with BLAS pinned to 1 thread (as backdoor_curves pins itself);

and reports the ratios of medians sklearn21/auto21, auto201/auto21, refit21/auto21 (with the min /
max of the per-round ratios) and the largest relative difference between the auto21 backdoor
losses and the scikit-learn ones (mean natural log-loss, (y - f)^2 or hinge on V_t, y in {-1, +1},
+1 = data.classes[1]).

Each case runs ``--repeats`` interleaved rounds after one warm-up round, but stops repeating once
a round ends past ``--case-budget`` seconds (at least one round). On the fc7 problem there is no
warm-up round (every call is dominated by dense 4096-dimensional linear algebra, nothing to warm
up). The JSON records how many rounds were timed.

Run:  python benchmarks/bench_paths.py --out benchmarks/results/paths.json   (about 10 minutes)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from backdoor_curves import (
    BackdoorData,
    default_betas,
    learning_curve,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import (  # noqa: E402
    CASES,
    Case,
    SklearnOracle,
    _fmt_ratio,
    _log,
    _ratio,
    interleaved,
    load_mnist,
    machine_info,
    write_results,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "paths.json"
QUICK_OUT = ROOT / "benchmarks" / "results" / "paths_quick.json"
MNIST_GAMMA = 5e-3
FC7 = {
    "n_train": 750,
    "n_test": 250,
    "n_features": 4096,
    "sep": 3.0,
    "trigger_norm": 40.0,
    "fraction": 0.1,
    "seed": 0,
}
LEARNERS = ("logistic", "ridge", "linear_svm", "rbf_svm")


def betas_201() -> np.ndarray:
    return np.r_[0.0, np.geomspace(1e-3, 1.0, 200)]


def cases(gamma: float) -> dict[str, Case]:
    """bench_core's learners, each with its *matched* scikit-learn counterpart in every slot.

    Matched: the cheapest setting whose MNIST curve agrees with ours to 1e-6 relative (the
    accuracy issue #3 asks of a re-fit; see bench_core.CASES): ``LogisticRegression`` with
    newton-cg at tol=1e-8, ``SVC`` at tol=1e-7 (the RBF curve stops at libsvm's 1.5e-6 plateau),
    ``RidgeClassifier``'s exact default. The RBF learner and SVC use ``gamma`` here.
    """

    def at_gamma(make):
        return lambda: make().set_params(gamma=gamma)

    out = {}
    for name, case in CASES.items():
        if name == "rbf_svm":
            case = dataclasses.replace(
                case, ours=at_gamma(case.ours), sklearn_matched=at_gamma(case.sklearn_matched)
            )
        matched = case.sklearn_matched
        out[name] = dataclasses.replace(
            case, sklearn=matched, sklearn_matched=matched, sklearn_tight=matched
        )
    return out


# ---------------------------------------------------------------------------------- data
def make_fc7_like(
    n_train: int = 750,
    n_test: int = 250,
    n_features: int = 4096,
    sep: float = 3.0,
    trigger_norm: float = 40.0,
    fraction: float = 0.1,
    seed: int = 0,
) -> BackdoorData:
    """Seeded ReLU'd-Gaussian two-class problem with an additive trigger (see module docstring)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n_features)
    u /= np.linalg.norm(u)
    trigger = np.abs(rng.normal(size=n_features))
    trigger *= trigger_norm / np.linalg.norm(trigger)

    def draw(n):
        y = rng.integers(0, 2, size=n)
        Z = rng.normal(size=(n, n_features)) + np.outer(np.where(y == 1, sep, -sep), u)
        return np.maximum(Z, 0.0), y

    X_tr, y_tr = draw(n_train)
    X_te, y_te = draw(n_test)
    perm = rng.permutation(n_train)
    n_poison = int(round(fraction * n_train))
    p_idx, c_idx = perm[:n_poison], perm[n_poison:]
    return BackdoorData(
        X_tr[c_idx],
        y_tr[c_idx],
        X_tr[p_idx] + trigger,
        1 - y_tr[p_idx],
        X_te,
        y_te,
        X_te + trigger,
        1 - y_te,
    )


# ---------------------------------------------------------------------------------- timing
def _max_rel(a: np.ndarray, ref: np.ndarray, betas: np.ndarray) -> tuple[float, float]:
    rel = np.abs(a - ref) / np.maximum(np.abs(ref), 1e-300)
    return float(rel.max()), float(betas[int(rel.argmax())])


def bench_case(
    case: Case, data, betas: np.ndarray, repeats: int, warmup: bool, budget: float | None
) -> dict:
    learner = case.ours()
    oracle = SklearnOracle(case.sklearn(), case, data, blas_threads=1)
    b201 = betas_201()
    stats, values = interleaved(
        {
            "auto21": lambda: learning_curve(learner, data, betas, method="auto"),
            "auto201": lambda: learning_curve(learner, data, b201, method="auto"),
            "refit21": lambda: learning_curve(learner, data, betas, method="refit"),
            "sklearn21": lambda: oracle.curve(betas),
        },
        repeats,
        warmup,
        budget,
        budget_includes_warmup=True,
    )
    auto = values["auto21"]["backdoor_loss"]
    refit = values["refit21"]["backdoor_loss"]
    sk = values["sklearn21"]
    max_rel, at = _max_rel(auto, sk, betas)
    max_rel_refit, at_refit = _max_rel(refit, sk, betas)
    max_rel_auto_refit, at_auto_refit = _max_rel(auto, refit, betas)
    ev = values["auto201"].events
    return {
        "ours": repr(learner),
        "sklearn": repr(case.sklearn()),
        "rounds": stats["auto21"]["n"],
        "warmup": warmup,
        "time": stats,
        "ratio_sklearn21_over_auto21": _ratio(stats["sklearn21"], stats["auto21"]),
        "ratio_auto201_over_auto21": _ratio(stats["auto201"], stats["auto21"]),
        "ratio_refit21_over_auto21": _ratio(stats["refit21"], stats["auto21"]),
        "max_rel_diff_auto_vs_sklearn": max_rel,
        "argmax_beta": at,
        "max_rel_diff_refit_vs_sklearn": max_rel_refit,
        "argmax_beta_refit": at_refit,
        "max_rel_diff_auto_vs_refit": max_rel_auto_refit,
        "argmax_beta_auto_refit": at_auto_refit,
        "n_path_events_201": int(len(ev)) if ev is not None else 0,
        "betas": betas.tolist(),
        "backdoor_loss_auto": auto.tolist(),
        "backdoor_loss_refit": refit.tolist(),
        "backdoor_loss_sklearn": sk.tolist(),
        "backdoor_accuracy_auto": values["auto21"]["backdoor_accuracy"].tolist(),
        "clean_accuracy_auto": values["auto21"]["clean_accuracy"].tolist(),
    }


# ---------------------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    meta, cfg = result["meta"], result["config"]
    lines = [
        '# bench_paths: exact paths (method="auto") vs re-fits',
        "",
        f"{cfg['repeats']} interleaved rounds requested (fewer where noted); "
        f"{meta['date']}, commit {str(meta['git']['commit'])[:10]}, nproc {meta['nproc']}; "
        "scikit-learn pinned to 1 BLAS thread.",
        "Ratios are ratios of medians with [min-max] of the per-round ratios. "
        "sklearn/auto > 1 and refit/auto > 1 mean the path is faster; 201/21 is the cost of ten "
        "times as many betas. Max rel diff: auto21 backdoor loss vs scikit-learn re-fits "
        "(matched accuracy, see the module docstring).",
        "",
        "| data | learner | rounds | auto21 (s) | auto201 (s) | refit21 (s) | sklearn21 (s) | "
        "sklearn/auto (21) | 201-auto / 21-auto | refit/auto (21) | max rel diff vs sklearn |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dname, dres in result["datasets"].items():
        for lname, r in dres["learners"].items():
            t = r["time"]
            lines.append(
                f"| {dname} | {lname} | {r['rounds']}{'' if r['warmup'] else ' (no warm-up)'} | "
                f"{t['auto21']['median']:.3f} | {t['auto201']['median']:.3f} | "
                f"{t['refit21']['median']:.3f} | {t['sklearn21']['median']:.3f} | "
                f"{_fmt_ratio(r['ratio_sklearn21_over_auto21'])} | "
                f"{_fmt_ratio(r['ratio_auto201_over_auto21'])} | "
                f"{_fmt_ratio(r['ratio_refit21_over_auto21'])} | "
                f"{r['max_rel_diff_auto_vs_sklearn']:.1e} (beta={r['argmax_beta']:.3g}) |"
            )
    lines += [
        "",
        "## Data",
        "",
        "| data | description | RBF gamma | backdoor loss / attack success (auto, beta=0 -> 1) |",
        "|---|---|---|---|",
    ]
    for dname, dres in result["datasets"].items():
        curves = "; ".join(
            f"{ln}: {r['backdoor_loss_auto'][0]:.3g} -> {r['backdoor_loss_auto'][-1]:.3g} / "
            f"{r['backdoor_accuracy_auto'][0]:.2f} -> {r['backdoor_accuracy_auto'][-1]:.2f}"
            for ln, r in dres["learners"].items()
        )
        lines.append(f"| {dname} | {dres['description']} | {dres['gamma']:.3g} | {curves} |")
    if result.get("warnings"):
        lines += ["", "Warnings: " + "; ".join(result["warnings"])]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help=f"JSON output (default {DEFAULT_OUT})")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, no warm-up, fc7 stand-in with 1024 features and no logistic "
        "(default output paths_quick.json)",
    )
    p.add_argument(
        "--case-budget",
        type=float,
        default=40.0,
        help="seconds after which a case stops repeating (at least one round; default 40)",
    )
    p.add_argument("--datasets", nargs="+", choices=["mnist", "fc7"], default=["mnist", "fc7"])
    p.add_argument("--learners", nargs="+", choices=LEARNERS, default=list(LEARNERS))
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    betas = default_betas(21)
    result = {
        "meta": machine_info(),
        "config": {
            "repeats": args.repeats,
            "case_budget_seconds": args.case_budget,
            "quick": args.quick,
            "n_betas": [21, 201],
            "betas_201": "np.r_[0, np.geomspace(1e-3, 1, 200)]",
            "fc7": FC7,
            "argv": sys.argv[1:] if argv is None else list(argv),
        },
        "datasets": {},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for dname in args.datasets:
            if dname == "mnist":
                data = load_mnist()
                gamma = MNIST_GAMMA
                desc = "MNIST 7 vs 1, BadNets 3x3, p = 0.1 (as bench_core)"
            else:
                params = dict(FC7, n_features=1024) if args.quick else FC7
                data = make_fc7_like(**params)
                X = np.vstack([data.X_clean, data.X_poison])
                gamma = float(1.0 / (X.shape[1] * X.var()))
                desc = (
                    f"ReLU'd Gaussian, {params['n_features']} features, classes at "
                    f"+-{params['sep']:g} along a random direction, additive non-negative trigger "
                    f"of norm {params['trigger_norm']:g} on {params['fraction']:.0%} of the "
                    f"training set, seed {params['seed']}"
                )
            _log(f"{dname}: {data}; gamma {gamma:.3g}")
            entry = {"description": desc, "data": repr(data), "gamma": gamma, "learners": {}}
            for lname, case in cases(gamma).items():
                if lname not in args.learners:
                    continue
                if args.quick and dname == "fc7" and lname == "logistic":
                    continue
                heavy = dname == "fc7"
                repeats = 1 if (heavy and lname == "logistic") else args.repeats
                warmup = not (heavy or args.quick)
                _log(f"  {lname}: {repeats} round(s), warm-up {warmup}")
                t0 = time.perf_counter()
                entry["learners"][lname] = bench_case(
                    case, data, betas, repeats, warmup, args.case_budget
                )
                r = entry["learners"][lname]
                _log(
                    f"    {time.perf_counter() - t0:.0f} s; sklearn/auto "
                    f"{r['ratio_sklearn21_over_auto21']['median']:.2f}, 201/21 "
                    f"{r['ratio_auto201_over_auto21']['median']:.2f}, refit/auto "
                    f"{r['ratio_refit21_over_auto21']['median']:.2f}, max rel diff "
                    f"{r['max_rel_diff_auto_vs_sklearn']:.1e}"
                )
            result["datasets"][dname] = entry
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    result["meta"]["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["meta"]["wall_seconds"] = time.perf_counter() - t_start

    write_results(args.out, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
