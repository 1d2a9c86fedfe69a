"""Grid-study benchmark: a 10 C x 5 gamma RBF-SVM grid on MNIST 7 vs 1, ours vs the naive way.

Problem: ``bench_core.load_mnist()`` (MNIST 7 vs 1, 750 train / 250 test, BadNets 3x3 on 10 %,
seed 0); grid C = geomspace(0.1, 100, 10), gamma = geomspace(5e-4, 5e-2, 5) (paper 001's MNIST
RBF grid, 50 points). Every member computes, per point, the backdoor slope at beta = 0 and the
clean and backdoor accuracy at beta = 1.

Members, timed interleaved (A, B, C, D, A, ...) ``--repeats`` times after one warm-up each:

- ``ours_n1``: ``grid_study(RBFSVMLearner(), data, grid, n_jobs=1)`` (one beta = 0 fit shared by
  the slope and the deviation reference, the exact KKT slope, one beta = 1 fit per point; BLAS
  pinned to 1 thread by the package);
- ``ours_n2``: the same with ``n_jobs=2`` (loky worker processes, already started by the warm-up);
- ``ours_n1_blas2``: ``ours_n1`` with the package's BLAS pin lifted and BLAS allowed 2 threads
  (``threadpoolctl``), to measure what the pin is worth here;
- ``naive_n1``: scikit-learn ``SVC(kernel="rbf", C, gamma)`` re-fitted per point at beta = 0
  (weight 0 on P), beta = h = 1e-3 and beta = 1, the slope as the forward difference
  (L(h) - L(0)) / h of the mean hinge loss on V_t, the accuracies from the beta = 1 fit.

Then the linear learners' C grids on the same data, 10 values of C = geomspace(1e-3, 100)
(ridge: alpha = 1 / (2 C)), ours at n_jobs=1 against naive scikit-learn re-fits at beta = 0,
h and 1 per point (``LogisticRegression(C)``, ``RidgeClassifier(alpha)``, ``SVC(kernel="linear",
C)`` at their default tolerances), timed interleaved the same way (``linear_<learner>_ours`` /
``linear_<learner>_naive``), ``--linear-repeats`` rounds (a round takes about 10 s; more rounds
than the RBF grid's, since ours takes 0.1-0.5 s there and a burst of load on a shared machine
moves a single round's ratio by a factor of 1.5).

Every timed call starts after a pause of ``bench_core.SETTLE_SECONDS``, so that BLAS threads a
2-thread member left spinning do not slow the member after it.

Then the same grids (RBF at n_jobs 1 and 2, the linear C grids at n_jobs 1 and 2) on a stand-in
of the paper's feature experiments: 1,500 training points of 4,096 features (fc7's shape; see
:func:`standin`), ``--standin-repeats`` rounds (default 1: a naive round takes minutes).

Reported: medians and min/max of each member, ratios of medians (with min/max of the per-round
ratios), and the largest difference between our accuracies and the naive ones (they should agree
up to points on the decision boundary; scikit-learn's default tolerance is 1e-3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

import backdoor_curves._threads as bc_threads
from backdoor_curves import LinearSVMLearner, LogisticLearner, RBFSVMLearner, RidgeLearner
from backdoor_curves.study.grid import grid_study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import (  # noqa: E402
    _fmt_ratio,
    _hinge_loss,
    _log,
    _ratio,
    interleaved,
    load_mnist,
    machine_info,
    write_results,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "grid.json"
C_GRID = np.geomspace(0.1, 100.0, 10)
GAMMA_GRID = np.geomspace(5e-4, 5e-2, 5)
FD_STEP = 1e-3
LINEAR_C = np.geomspace(1e-3, 100.0, 10)
LINEAR = {
    "logistic": (LogisticLearner(), lambda C: LogisticRegression(C=C, max_iter=1000)),
    "ridge": (RidgeLearner(), lambda C: RidgeClassifier(alpha=1.0 / (2.0 * C))),
    "linear_svm": (LinearSVMLearner(), lambda C: SVC(kernel="linear", C=C)),
}


def linear_ours(kind: str, data, n_jobs: int = 1):
    learner, _ = LINEAR[kind]
    grid = {"alpha": list(1.0 / (2.0 * LINEAR_C))} if kind == "ridge" else {"C": list(LINEAR_C)}
    return grid_study(learner, data, grid, n_jobs=n_jobs)


def linear_naive(kind: str, data) -> None:
    _, make = LINEAR[kind]
    for C in LINEAR_C:
        for beta in (0.0, FD_STEP, 1.0):
            make(C).fit(data.X_train, data.y_train, sample_weight=data.sample_weight(beta))


def naive_point(data, C: float, gamma: float) -> dict:
    """One grid point the naive way: three scikit-learn SVC fits and a forward difference."""
    X, y = data.X_train, data.y_train
    pos = np.unique(y)[1]
    y_bd = np.where(data.y_test_bd == pos, 1.0, -1.0)
    losses = {}
    for beta in (0.0, FD_STEP, 1.0):
        svc = SVC(kernel="rbf", C=C, gamma=gamma).fit(X, y, sample_weight=data.sample_weight(beta))
        losses[beta] = float(np.mean(_hinge_loss(y_bd, svc.decision_function(data.X_test_bd))))
    derivative = (losses[FD_STEP] - losses[0.0]) / FD_STEP
    return {
        "derivative": derivative,
        "clean_accuracy": float(np.mean(svc.predict(data.X_test) == data.y_test)),
        "backdoor_accuracy": float(np.mean(svc.predict(data.X_test_bd) == data.y_test_bd)),
    }


def naive_grid(data, n_jobs: int = 1, gammas=GAMMA_GRID) -> list[dict]:
    points = [(C, g) for C in C_GRID for g in gammas]
    return Parallel(n_jobs=n_jobs)(delayed(naive_point)(data, C, g) for C, g in points)


def ours(data, n_jobs: int, gammas=GAMMA_GRID):
    return grid_study(RBFSVMLearner(), data, {"C": C_GRID, "gamma": gammas}, n_jobs=n_jobs)


def ours_blas2(data):
    saved = bc_threads.BLAS_THREADS
    bc_threads.BLAS_THREADS = 0  # the package's pin steps aside ...
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # ... and BLAS may use 2 threads
            return ours(data, 1)
    finally:
        bc_threads.BLAS_THREADS = saved


def standin(repeats: int) -> dict:
    """The same grids on the paper's feature shape: 1,500 points of 4,096 features.

    Data: ``bench_scale.scale_data(1500, 4096)`` (MNIST digits 0-4 vs 5-9 through a fixed random
    ReLU layer of fc7's width; BadNets 3x3 on 10 %, 500 + 500 test points). The RBF gammas are
    sklearn's ``"scale"`` value 1 / (p var(X)) times geomspace(0.1, 10, 5); C and the linear
    grids as on MNIST. Everything was warmed up by the MNIST part (same process), so each member
    is timed ``repeats`` times without a warm-up of its own (a naive round takes minutes).
    """
    from bench_scale import scale_data

    data = scale_data(1500, 4096)
    shape = {"n_train": int(data.X_train.shape[0]), "n_features": int(data.n_features)}
    g0 = 1.0 / (data.n_features * float(np.var(data.X_train)))
    gammas = g0 * np.geomspace(0.1, 10.0, 5)
    members = {
        "rbf_ours_n1": lambda: ours(data, 1, gammas),
        "rbf_ours_n2": lambda: ours(data, 2, gammas),
        "rbf_naive_n1": lambda: naive_grid(data, 1, gammas),
    }
    for kind in LINEAR:
        members[f"linear_{kind}_ours"] = lambda kind=kind: linear_ours(kind, data)
        members[f"linear_{kind}_ours_n2"] = lambda kind=kind: linear_ours(kind, data, 2)
        members[f"linear_{kind}_naive"] = lambda kind=kind: linear_naive(kind, data)
    stats, values = interleaved(members, repeats, warmup=False)
    table, naive = values["rbf_ours_n1"], values["rbf_naive_n1"]
    acc = max(
        abs(row[c] - ref[c])
        for (_, row), ref in zip(table.iterrows(), naive, strict=True)
        for c in ("clean_accuracy", "backdoor_accuracy")
    )
    ratios = {
        "rbf_naive_over_ours": _ratio(stats["rbf_naive_n1"], stats["rbf_ours_n1"]),
        "rbf_naive_over_ours_n2": _ratio(stats["rbf_naive_n1"], stats["rbf_ours_n2"]),
        **{
            f"linear_{kind}": _ratio(stats[f"linear_{kind}_naive"], stats[f"linear_{kind}_ours"])
            for kind in LINEAR
        },
        **{
            f"linear_{kind}_n2": _ratio(
                stats[f"linear_{kind}_naive"], stats[f"linear_{kind}_ours_n2"]
            )
            for kind in LINEAR
        },
    }
    return {
        "shape": shape,
        "gammas": gammas.tolist(),
        "repeats": repeats,
        "timings": stats,
        "ratios": ratios,
        "accuracy_max_abs": acc,
        "failed_points": int((table["error"] != "").sum()),
    }


def standin_markdown(r: dict) -> list[str]:
    t, q = r["timings"], r["ratios"]
    lines = [
        "",
        f"## The same on the fc7-shaped stand-in ({r['shape']['n_train']} training points, "
        f"{r['shape']['n_features']} features)",
        "",
        f"{r['repeats']} timed round(s) after the MNIST part warmed everything up; gamma = "
        "geomspace(0.1, 10, 5) / (p var(X)); ratios naive n_jobs=1 over ours.",
        "",
        "| grid | ours n_jobs=1 s | ours n_jobs=2 s | naive n_jobs=1 s | naive / ours n1 "
        "| naive / ours n2 |",
        "|---|---|---|---|---|---|",
        f"| RBF 10 C x 5 gamma | {t['rbf_ours_n1']['median']:.1f} | "
        f"{t['rbf_ours_n2']['median']:.1f} | {t['rbf_naive_n1']['median']:.1f} | "
        f"{_fmt_ratio(q['rbf_naive_over_ours'])} | {_fmt_ratio(q['rbf_naive_over_ours_n2'])} |",
    ]
    for kind in LINEAR:
        lines.append(
            f"| {kind} 10 C | {t[f'linear_{kind}_ours']['median']:.1f} | "
            f"{t[f'linear_{kind}_ours_n2']['median']:.1f} | "
            f"{t[f'linear_{kind}_naive']['median']:.1f} | {_fmt_ratio(q[f'linear_{kind}'])} | "
            f"{_fmt_ratio(q[f'linear_{kind}_n2'])} |"
        )
    lines += [
        "",
        f"RBF accuracies against the naive re-fits: {r['accuracy_max_abs']:.4f} largest absolute "
        f"difference; points without an exact slope: {r['failed_points']}.",
        "",
    ]
    return lines


def markdown(result: dict) -> str:
    t, r = result["timings"], result["ratios"]
    lines = [
        "# Grid benchmark: 10 C x 5 gamma RBF-SVM grid, MNIST 7 vs 1",
        "",
        f"Run {result['machine']['date']} on {result['machine']['nproc']} cores (load at start "
        f"{result['machine']['loadavg_at_start']}); {result['repeats']} interleaved repeats; "
        "ratios are of medians, [min-max] of the per-round ratios.",
        "",
        "| member | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    for name, s in t.items():
        lines.append(f"| {name} | {s['median']:.2f} | {s['min']:.2f} | {s['max']:.2f} |")
    lines += [
        "",
        "| ratio | value |",
        "|---|---|",
        f"| ours n_jobs=1 / ours n_jobs=2 (parallel speed-up) | {_fmt_ratio(r['n1_over_n2'])} |",
        f"| naive n_jobs=1 / ours n_jobs=1 | {_fmt_ratio(r['naive_over_ours'])} |",
        f"| naive n_jobs=1 / ours n_jobs=2 | {_fmt_ratio(r['naive_over_ours_n2'])} |",
        f"| ours with 2 BLAS threads / ours pinned to 1 | {_fmt_ratio(r['blas2_over_blas1'])} |",
        "",
        f"Linear learners, 10 C values each, n_jobs=1 "
        f"({result.get('linear_repeats', result['repeats'])} interleaved repeats):",
        "",
        "| learner | ours median s | naive median s | naive / ours |",
        "|---|---|---|---|",
        *(
            f"| {kind} | {t[f'linear_{kind}_ours']['median']:.2f} | "
            f"{t[f'linear_{kind}_naive']['median']:.2f} | {_fmt_ratio(r[f'linear_{kind}'])} |"
            for kind in LINEAR
            if f"linear_{kind}" in r
        ),
        "",
        f"Accuracy agreement with the naive re-fits: {result['agreement']['accuracy_max_abs']:.4f} "
        "largest absolute difference (clean or backdoor) over the 50 points; slope score "
        f"difference {result['agreement']['score_max_abs']:.3f} at most (the naive slope is a "
        f"forward difference at h = {FD_STEP:g} of default-tolerance fits).",
        "",
        f"Points without an exact slope (recorded in the table's `error` column): "
        f"{len(result['failed_points'])}"
        + "".join(
            f"; C = {p['C']:.3g}, gamma = {p['gamma']:.3g}: {p['error'].split(' (')[0]}"
            for p in result["failed_points"]
        )
        + ".",
        "",
    ]
    if "standin" in result:
        lines += standin_markdown(result["standin"])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--linear-repeats", type=int, default=9, help="timed rounds of the linear C grids"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--standin-repeats",
        type=int,
        default=1,
        help="timed rounds on the 1,500 x 4,096 stand-in (0: skip it; a round takes minutes)",
    )
    parser.add_argument(
        "--standin-only",
        action="store_true",
        help="run only the stand-in and add it to the existing results (--out)",
    )
    args = parser.parse_args(argv)
    if args.standin_only:
        result = json.loads(args.out.read_text())
        mnist = load_mnist()  # warm-up (compiled SMO, worker pool), as the MNIST part would
        ours(mnist, 1, GAMMA_GRID[:1])
        ours(mnist, 2, GAMMA_GRID[:1])
        for kind in LINEAR:
            linear_ours(kind, mnist)
            linear_ours(kind, mnist, 2)
        start = time.perf_counter()
        _log("grid benchmark: the 1,500 x 4,096 stand-in")
        result["standin"] = standin(max(args.standin_repeats, 1))
        result["standin"]["wall_seconds"] = time.perf_counter() - start
        write_results(args.out, result, markdown(result), seconds=result["standin"]["wall_seconds"])
        return 0
    data = load_mnist()
    machine = machine_info()
    _log(f"grid benchmark: {len(C_GRID) * len(GAMMA_GRID)} points, {args.repeats} repeats")
    start = time.perf_counter()
    stats, values = interleaved(
        {
            "ours_n1": lambda: ours(data, 1),
            "ours_n2": lambda: ours(data, 2),
            "ours_n1_blas2": lambda: ours_blas2(data),
            "naive_n1": lambda: naive_grid(data, 1),
        },
        args.repeats,
    )
    members = {}
    for kind in LINEAR:
        members[f"linear_{kind}_ours"] = lambda kind=kind: linear_ours(kind, data)
        members[f"linear_{kind}_naive"] = lambda kind=kind: linear_naive(kind, data)
    linear_stats, _ = interleaved(members, args.linear_repeats)
    stats.update(linear_stats)
    table, naive = values["ours_n1"], values["naive_n1"]
    failed = table["error"] != ""  # e.g. no margin support vector at beta = 0: no exact slope
    acc = max(
        abs(row[c] - ref[c])
        for (_, row), ref in zip(table.iterrows(), naive, strict=True)
        for c in ("clean_accuracy", "backdoor_accuracy")
    )
    score = max(
        abs(row["score"] - float(-2 / np.pi * np.arctan(ref["derivative"])))
        for (_, row), ref in zip(table.iterrows(), naive, strict=True)
        if np.isfinite(row["score"])
    )
    result = {
        "machine": machine,
        "repeats": args.repeats,
        "linear_repeats": args.linear_repeats,
        "grid": {"C": C_GRID.tolist(), "gamma": GAMMA_GRID.tolist(), "fd_step": FD_STEP},
        "timings": stats,
        "ratios": {
            "n1_over_n2": _ratio(stats["ours_n1"], stats["ours_n2"]),
            "naive_over_ours": _ratio(stats["naive_n1"], stats["ours_n1"]),
            "naive_over_ours_n2": _ratio(stats["naive_n1"], stats["ours_n2"]),
            "blas2_over_blas1": _ratio(stats["ours_n1_blas2"], stats["ours_n1"]),
            **{
                f"linear_{kind}": _ratio(
                    stats[f"linear_{kind}_naive"], stats[f"linear_{kind}_ours"]
                )
                for kind in LINEAR
            },
        },
        "agreement": {"accuracy_max_abs": acc, "score_max_abs": score},
        "failed_points": table.loc[failed, ["C", "gamma", "error"]].to_dict("records"),
    }
    result["wall_seconds"] = time.perf_counter() - start
    write_results(args.out, result, markdown(result))  # kept even if the stand-in fails
    if args.standin_repeats > 0:
        _log("grid benchmark: the 1,500 x 4,096 stand-in")
        result["standin"] = standin(args.standin_repeats)
        result["wall_seconds"] = time.perf_counter() - start
        write_results(args.out, result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
