"""Neural-network adapter benchmark (issue #11, item 9): per-sample gradients, tracking, derivative.

(a) Per-sample gradients on the CPU: ``backdoor_curves.nn.per_sample.per_sample_grads``
    (``vmap(grad)`` in chunks; every chunk size of ``--chunks``) against a plain Python loop over
    the samples at its fair best (one forward + one backward per sample into a preallocated
    output, two variants: ``torch.autograd.grad`` + ``torch.cat(out=)``, and ``backward()`` + copy
    of ``.grad`` under ``no_grad``; the input pre-split into single samples) and against the
    floor, the plain batched backward of the *mean* loss (one gradient per chunk, no per-sample
    output; vmap cannot beat it by much). A forward-only loop (``inference_mode``) shows the
    loop's fixed per-call cost. Models in eval mode (as ``per_sample_grads`` runs them): SmallCNN
    (width 8) on ``--n-samples`` 28x28 digits from ``load_mnist_multiclass`` with 1 and 2 torch
    threads, SmallCNN (width 16) on 14x14 digits, and torchvision's ResNet-18 (random weights,
    10-class head) on ``--resnet-samples`` random ``3 x --resnet-size x --resnet-size`` images
    with ``--resnet-threads`` threads.
(b) Tracking overhead: one epoch of ``train()`` (SmallCNN width 8, ``--track-train`` 28x28
    digits, BadNets all-to-one on 10 %) without callbacks and with ``Tracker(budget=1000)``: its
    defaults (records epoch 0 and epoch 1), without the epoch-0 record (one record: the cost per
    tracked epoch of a longer run), with ``loss_samples=n_train`` (the losses of every sample,
    ABL's IP), and with ``grad_batch_size=256``. Overhead = extra time / time of the plain epoch.
(c) The exact derivative ``training_derivative`` against one training run (``train`` at beta = 0
    + ``evaluate``, what one point of a finite difference costs) on ``--exact-train`` digits for
    two epochs, and its agreement with the forward differences (L(h) - L(0)) / h of ``train`` runs
    at h = 0.1, 0.01, 0.001 (relative difference), for two SGD settings.
(d) FD slope cost per h: each ``train(h) + evaluate`` timed as its own member of (c) (L(0) is the
    shared training run), and one ``nn_backdoor_slope(h=(0.1, 0.01, 0.001))`` call (1 + 3 runs).

Timing: every case is timed interleaved (A, B, C, A, B, C, ...) after one warm-up call of each
(``bench_core.interleaved``), ``--repeats`` rounds (``--resnet-repeats`` for ResNet-18,
``--exact-repeats`` for (c)), stopping early once ``--case-budget`` seconds are used. Reported:
medians, ratios of medians and [min-max] of the per-round ratios. Threads are pinned explicitly:
``torch.set_num_threads`` per case in (a); ``TrainConfig(threads=--train-threads)`` (default 1,
set by the trainer's ``deterministic()``) in (b) and (c).

Run:  python benchmarks/bench_nn.py --out benchmarks/results/nn.json   (``make bench-nn``)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import _fmt_ratio, _log, _ratio, interleaved, machine_info, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "nn.json"
FD_STEPS = (0.1, 0.01, 0.001)
#: SGD settings of (b) and (c): batch 32, lr 0.02 as the CPU experiment's configuration; lr 0.05
#: trains further in two epochs (the agreement with the finite differences is worse there).
EXACT_SETTINGS = ({"batch_size": 32, "lr": 0.02}, {"batch_size": 32, "lr": 0.05})


def _discard(f):
    """Call ``f`` and drop its value (so ``interleaved`` keeps no large tensors alive)."""

    def g():
        f()

    return g


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _digits(n_train: int, n_test: int, pool: int = 1):
    from backdoor_curves.attacks.multiclass import poison_multiclass
    from backdoor_curves.datasets.mnist import load_mnist_multiclass

    X_tr, y_tr, X_te, y_te = load_mnist_multiclass(
        n_train=n_train, n_test=n_test, random_state=0, pool=pool
    )
    return poison_multiclass(
        X_tr, y_tr, X_te, y_te, mode="all-to-one", target=0, fraction=0.1, random_state=0
    )


# ------------------------------------------------------------------ (a) per-sample gradients
def _per_sample_members(model, X, y, chunks, floor_chunks):
    """The timed members of one per-sample case and the loop's output buffers."""
    import torch

    from backdoor_curves.nn.per_sample import per_sample_grads

    F = torch.nn.functional
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    params = [dict(model.named_parameters())[k] for k in names]
    n = len(X)
    xs, ys = list(X.split(1)), list(y.split(1))  # pre-split: no slicing inside the loop
    flat = torch.empty(n, sum(p.numel() for p in params))  # preallocated, reused by every call
    views = [torch.empty((n, *p.shape)) for p in params]

    def loop_grad():
        for i in range(n):
            loss = F.cross_entropy(model(xs[i]), ys[i])
            grads = torch.autograd.grad(loss, params)
            torch.cat([g.reshape(-1) for g in grads], out=flat[i])

    def loop_backward():
        for i in range(n):
            for p in params:
                p.grad = None
            F.cross_entropy(model(xs[i]), ys[i]).backward()
            with torch.no_grad():
                for v, p in zip(views, params, strict=True):
                    v[i].copy_(p.grad)
        for p in params:
            p.grad = None

    def loop_forward():
        with torch.inference_mode():
            for i in range(n):
                model(xs[i])

    def floor(c):
        def f():
            for s in range(0, n, c):
                loss = F.cross_entropy(model(X[s : s + c]), y[s : s + c])
                torch.autograd.grad(loss, params)

        return f

    members = {
        f"vmap_chunk{c}": _discard(functools.partial(per_sample_grads, model, X, y, batch_size=c))
        for c in chunks
    }
    members["loop_autograd_grad"] = loop_grad
    members["loop_backward"] = loop_backward
    members.update({f"batched_chunk{c}": floor(c) for c in floor_chunks})
    members["loop_forward_only"] = loop_forward
    return members, names, flat, views


def bench_per_sample(label, model, X, y, threads, chunks, floor_chunks, repeats, budget) -> dict:
    import torch

    from backdoor_curves.nn.per_sample import per_sample_grads

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.eval()
    try:
        members, names, flat, views = _per_sample_members(model, X, y, chunks, floor_chunks)
        _log(f"(a) {label}: {len(X)} samples, {threads} thread(s), {len(members)} members")
        load = _loadavg()
        stats, _ = interleaved(members, repeats, budget=budget)
        # agreement of vmap with both loops' outputs (outside the timing), at the largest chunk
        # and at chunk 1: a chunk of one sample computes what the loop computes, a larger chunk
        # may differ where a ReLU input sits within rounding of 0 (batch-size-dependent rounding
        # of the convolution flips it; plain batched autograd does the same)
        diffs = {}
        for c in (max(chunks), 1):
            ref = per_sample_grads(model, X, y, batch_size=c)
            scale = max(float(ref[k].abs().max()) for k in names)
            flat_ref = torch.cat([ref[k].reshape(len(X), -1) for k in names], dim=1)
            diffs[f"chunk{c}"] = {
                "autograd_grad": float((flat_ref - flat).abs().max()),
                "backward": max(
                    float((ref[k] - v).abs().max()) for k, v in zip(names, views, strict=True)
                ),
            }
            del ref, flat_ref
    finally:
        torch.set_num_threads(before)
    n = len(X)
    for s in stats.values():
        s["samples_per_s"] = n / s["median"]
    loops = ("loop_autograd_grad", "loop_backward")  # not the forward-only diagnostic
    best = {
        kind: min(keys, key=lambda k: stats[k]["median"])
        for kind, keys in (
            ("vmap", [k for k in stats if k.startswith("vmap_")]),
            ("loop", loops),
            ("floor", [k for k in stats if k.startswith("batched_")]),
        )
    }
    v, lp, fl = (stats[best[k]] for k in ("vmap", "loop", "floor"))
    out = {
        "label": label,
        "n_samples": n,
        "input_shape": list(X.shape[1:]),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "threads": threads,
        "loadavg_before": load,
        "timings": stats,
        "best": best,
        "ratios": {
            "loop_over_vmap": _ratio(lp, v),
            "vmap_over_floor": _ratio(v, fl),
            "loop_over_floor": _ratio(lp, fl),
        },
        "ms_per_sample": {
            "loop": 1e3 * lp["median"] / n,
            "loop_forward_only": 1e3 * stats["loop_forward_only"]["median"] / n,
            "vmap": 1e3 * v["median"] / n,
            "floor": 1e3 * fl["median"] / n,
        },
        "max_abs_diff_vmap_vs_loop": diffs,
        "max_abs_grad": scale,
    }
    r = out["ratios"]
    _log(
        f"    loop {best['loop']} {n / lp['median']:.0f}/s, vmap {best['vmap']} "
        f"{n / v['median']:.0f}/s, floor {best['floor']} {n / fl['median']:.0f}/s; "
        f"loop/vmap {_fmt_ratio(r['loop_over_vmap'])}, "
        f"loop/floor {_fmt_ratio(r['loop_over_floor'])}"
    )
    return out


def section_per_sample(args) -> list[dict]:
    import torch

    from backdoor_curves.datasets.mnist import load_mnist_multiclass
    from backdoor_curves.nn.models import SmallCNN
    from backdoor_curves.nn.train import init_model

    cases = []
    for pool, width, thread_list in ((1, 8, args.cnn_threads), (2, 16, [1])):
        X, y, _, _ = load_mnist_multiclass(
            n_train=args.n_samples, n_test=100, random_state=0, pool=pool
        )
        Xt, yt = torch.from_numpy(np.ascontiguousarray(X[:, None])), torch.from_numpy(y)
        model = init_model(functools.partial(SmallCNN, n_classes=10, width=width), 0)
        side = 28 // pool
        for t in thread_list:
            cases.append(
                bench_per_sample(
                    f"SmallCNN width {width}, {side}x{side}",
                    model,
                    Xt,
                    yt,
                    t,
                    args.chunks,
                    args.chunks,
                    args.repeats,
                    args.case_budget,
                )
            )
    return cases


def section_resnet(args) -> list[dict]:
    import torch

    from backdoor_curves.nn.models import resnet
    from backdoor_curves.nn.train import init_model

    n, s = args.resnet_samples, args.resnet_size
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(n, 3, s, s, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    model = init_model(functools.partial(resnet, "resnet18", n_classes=10), 0)
    chunks = sorted({c for c in args.resnet_chunks if c <= n})
    return [
        bench_per_sample(
            f"ResNet-18 (random weights), 3x{s}x{s}",
            model,
            X,
            y,
            t,
            chunks,
            [n],
            args.resnet_repeats,
            args.case_budget,
        )
        for t in args.resnet_threads
    ]


# ------------------------------------------------------------------ (b) tracking overhead
def section_tracking(args) -> dict:
    from backdoor_curves.nn.models import SmallCNN
    from backdoor_curves.nn.tracking import Tracker
    from backdoor_curves.nn.train import TrainConfig, train

    data = _digits(args.track_train, args.track_test)
    factory = functools.partial(SmallCNN, n_classes=10, width=8)
    config = TrainConfig(epochs=1, threads=args.train_threads, **EXACT_SETTINGS[0])
    n = data.n_train
    variants = {
        "plain": None,
        "tracker_default": {},
        "tracker_no_initial": {"track_initial": False},
        "tracker_all_losses": {"loss_samples": n},
        "tracker_all_losses_no_initial": {"loss_samples": n, "track_initial": False},
        "tracker_grad_batch256_no_initial": {"grad_batch_size": 256, "track_initial": False},
    }
    last = {}

    def run(name, kw):
        def f():
            cbs = () if kw is None else (Tracker(budget=args.budget, **kw),)
            result = train(factory, data, 1.0, config, callbacks=cbs)
            last[name] = (result, cbs)

        return f

    _log(f"(b) tracking: {n} training digits, 1 epoch, budget {args.budget}")
    load = _loadavg()
    stats, _ = interleaved(
        {k: run(k, kw) for k, kw in variants.items()}, args.repeats, budget=args.case_budget
    )
    plain = stats["plain"]
    out = {
        "n_train": n,
        "n_poison": int(data.n_poison),
        "budget": args.budget,
        "config": config.describe(),
        "loadavg_before": load,
        "timings": stats,
        "epoch_seconds_plain": float(last["plain"][0].history["seconds"].iloc[0]),
        "variants": {},
    }
    for name, kw in variants.items():
        if kw is None:
            continue
        tracker = last[name][1][0]
        hist = tracker.history
        r = _ratio(stats[name], plain)
        overhead = {key: value - 1.0 for key, value in r.items()}
        out["variants"][name] = {
            "settings": {**kw, "budget": args.budget},
            "records": len(hist),
            "losses_on": str(hist["losses_on"].iloc[-1]),
            "tracker_seconds_per_record": hist["seconds"].tolist(),
            "overhead_fraction_of_epoch": overhead,
            "overhead_per_record": {k: v / len(hist) for k, v in overhead.items()},
        }
        _log(
            f"    {name}: +{overhead['median']:.2f} epoch ({len(hist)} record(s); tracker's own "
            f"{', '.join(f'{s:.2f}' for s in hist['seconds'])} s)"
        )
    return out


# ------------------------------------------------------------------ (c, d) exact derivative, FD
def section_exact(args) -> list[dict]:
    from backdoor_curves.nn.curves import nn_backdoor_slope
    from backdoor_curves.nn.models import SmallCNN
    from backdoor_curves.nn.train import TrainConfig, evaluate, train

    try:
        from backdoor_curves.nn.exact import training_derivative
    except ImportError as exc:  # being written elsewhere: the FD part still runs
        training_derivative = None
        _log(f"(c) backdoor_curves.nn.exact not importable ({exc}); timing the FD only")

    data = _digits(args.exact_train, args.exact_test)
    factory = functools.partial(SmallCNN, n_classes=10, width=8)
    out = []
    for setting in EXACT_SETTINGS:
        config = TrainConfig(epochs=args.exact_epochs, threads=args.train_threads, **setting)
        values = {}

        def point(beta, key, config=config, values=values):
            def f():
                values[key] = evaluate(train(factory, data, beta, config).model, data)

            return f

        members = {"train_run": point(0.0, "train_run")}
        if training_derivative is not None:

            def exact(config=config, values=values):
                values["exact"] = training_derivative(factory, data, config)

            members["exact"] = exact
        members.update({f"fd_h{h:g}": point(h, f"fd_h{h:g}") for h in FD_STEPS})
        _log(f"(c) {data.n_train} digits, {config.epochs} epochs, {setting}")
        load = _loadavg()
        stats, _ = interleaved(members, args.exact_repeats, budget=args.case_budget)
        base = values["train_run"]
        res = {
            "n_train": data.n_train,
            "n_backdoor_test": len(data.y_test_bd),
            "config": config.describe(),
            "loadavg_before": load,
            "timings": stats,
            "at_beta0": base,
            "fd": {},
        }
        if "exact" in values:
            ex = values["exact"]
            res["exact"] = {
                "derivative": ex.derivative,
                "score": ex.score,
                "backdoor_loss": ex.backdoor_loss,
                "primal_loss_minus_train_loss": ex.backdoor_loss - base["backdoor_loss"],
                "n_steps": ex.n_steps,
                "ratio_exact_over_train_run": _ratio(stats["exact"], stats["train_run"]),
            }
        for h in FD_STEPS:
            key = f"fd_h{h:g}"
            derivative = (values[key]["backdoor_loss"] - base["backdoor_loss"]) / h
            row = {
                "h": h,
                "derivative": derivative,
                "backdoor_loss_h": values[key]["backdoor_loss"],
                "ratio_cost_over_train_run": _ratio(stats[key], stats["train_run"]),
            }
            if "exact" in res:
                e = res["exact"]["derivative"]
                row["rel_diff_to_exact"] = abs(derivative - e) / abs(e)
            res["fd"][key] = row
        # the public API once: L(0) + one run per h, the same numbers
        t0 = time.perf_counter()
        slope = nn_backdoor_slope(factory, data, config, h=FD_STEPS)
        res["nn_backdoor_slope"] = {
            "seconds": time.perf_counter() - t0,
            "derivative": slope.derivative.tolist(),
            "same_as_members": bool(
                np.array_equal(
                    slope.derivative, [res["fd"][f"fd_h{h:g}"]["derivative"] for h in FD_STEPS]
                )
            ),
        }
        res["nn_backdoor_slope"]["ratio_over_train_run_median"] = (
            res["nn_backdoor_slope"]["seconds"] / stats["train_run"]["median"]
        )
        msg = f"    train run {stats['train_run']['median']:.2f} s"
        if "exact" in res:
            e = res["exact"]
            msg += (
                f", exact {stats['exact']['median']:.2f} s "
                f"({_fmt_ratio(e['ratio_exact_over_train_run'])}), derivative "
                f"{e['derivative']:.4g}; FD rel diff "
                + ", ".join(f"{r['rel_diff_to_exact']:.2g}" for r in res["fd"].values())
            )
        _log(msg)
        out.append(res)
    return out


# ------------------------------------------------------------------ report
def _fmt_load(load) -> str:
    return "n/a" if load is None else "/".join(f"{x:.2f}" for x in load)


def _case_rows(cases) -> list[str]:
    lines = [
        "| case | threads | samples | loop samples/s (variant) | vmap samples/s (chunk) | "
        "batched floor samples/s (chunk) | **vmap / loop** | floor / vmap | loop / floor "
        "(ceiling of vmap / loop) | ms per sample: loop, forward-only loop, vmap, floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        t, b, r, ms = c["timings"], c["best"], c["ratios"], c["ms_per_sample"]
        inv = {k: 1.0 / v for k, v in r["vmap_over_floor"].items()}
        inv = {"median": inv["median"], "min": inv["max"], "max": inv["min"]}
        lines.append(
            f"| {c['label']} ({c['n_parameters']:,} params) | {c['threads']} | {c['n_samples']} "
            f"| {t[b['loop']]['samples_per_s']:.0f} ({b['loop'].removeprefix('loop_')}) "
            f"| {t[b['vmap']]['samples_per_s']:.0f} ({b['vmap'].removeprefix('vmap_chunk')}) "
            f"| {t[b['floor']]['samples_per_s']:.0f} ({b['floor'].removeprefix('batched_chunk')}) "
            f"| **{_fmt_ratio(r['loop_over_vmap'])}** | {_fmt_ratio(inv)} "
            f"| {_fmt_ratio(r['loop_over_floor'])} | {ms['loop']:.3g}, "
            f"{ms['loop_forward_only']:.3g}, {ms['vmap']:.3g}, {ms['floor']:.3g} |"
        )
    return lines


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# bench_nn: per-sample gradients, tracking overhead, exact derivative, FD slopes",
        "",
        f"Run {meta['date']} on {meta['nproc']} cores, load average (1, 5, 15 min) at start "
        f"{_fmt_load(meta['loadavg_at_start'])}, at the end {_fmt_load(result['loadavg_at_end'])}"
        f"; torch "
        f"{result['torch_version']} (CPU); commit {str(meta['git']['commit'])[:10]}"
        f"{' (dirty tree)' if meta['git']['dirty'] else ''}; wall time "
        f"{meta['wall_seconds']:.0f} s. Threads pinned explicitly (`torch.set_num_threads` per "
        f"case; training at `TrainConfig(threads={result['args']['train_threads']})`). Every "
        "case is timed interleaved after one warm-up call of each member; ratios are ratios of "
        "medians with [min-max] of the per-round ratios.",
        "",
    ]
    cases = result.get("per_sample", []) + result.get("resnet", [])
    if cases:
        rounds = sorted({c["timings"][c["best"]["vmap"]]["n"] for c in cases})
        lines += [
            "## (a) Per-sample gradients: `per_sample_grads` (vmap) vs a Python loop",
            "",
            "Loop: one forward + backward per sample into a preallocated output, the faster of "
            "`autograd.grad` + `cat(out=)` and `backward()` + `.grad` copy; vmap: the fastest "
            f"chunk of {result['args']['chunks']} (ResNet: {result['args']['resnet_chunks']}); "
            "floor: the plain batched backward of the mean loss (no per-sample output), fastest "
            "chunk. Models in eval mode. Rounds per case: "
            f"{', '.join(map(str, rounds))}.",
            "",
            *_case_rows(cases),
            "",
            "vmap / loop can be at most about loop / floor: vmap does at least the floor's work "
            "(and writes n x p gradients). On SmallCNN the loop's time per sample is mostly a "
            "fixed per-call cost (dispatching ~10 ops forward and ~15 backward, autograd "
            "bookkeeping; the forward-only loop alone costs about the floor's whole forward + "
            "backward), so the ceiling is the loop's overhead over the batched compute; on "
            "ResNet-18 the compute per sample dominates, the loop is within about 1.3x of the "
            "floor, and vmap is slower than the loop: functorch's batching rule for "
            "`convolution_backward` computes the per-sample weight gradients as grouped "
            "convolutions with the chunk folded into the groups, in separate calls from the "
            "input gradients (a profile at chunk 2: 99 convolution calls for the network's 20 "
            "convolutions, 76 % of the time). Load average (1 min) before each case: "
            + "; ".join(
                f"{c['label']}, {c['threads']} thr: {_fmt_load(c['loadavg_before'][:1])}"
                for c in cases
                if c["loadavg_before"]
            )
            + ". Largest |vmap - loop| per case at the largest chunk / at chunk 1: "
            + "; ".join(
                f"{c['label']}, {c['threads']} thr: "
                + " / ".join(
                    f"{max(d.values()):.1e}" for d in c["max_abs_diff_vmap_vs_loop"].values()
                )
                + f" (|g| <= {c['max_abs_grad']:.2g})"
                for c in cases
            )
            + ". A difference at the larger chunk but none at chunk 1 is PyTorch's batch-size-"
            "dependent rounding of the convolution flipping a ReLU whose input is within ~1e-8 "
            "of 0 (the plain batched backward does the same), not a vmap error.",
            "",
        ]
    if "tracking" in result:
        tr = result["tracking"]
        plain = tr["timings"]["plain"]
        lines += [
            "## (b) Tracking overhead: one epoch of `train()` with `Tracker`",
            "",
            f"SmallCNN width 8, {tr['n_train']:,} training digits (28x28, {tr['n_poison']} "
            f"poisoned), batch {tr['config']['batch_size']}, lr {tr['config']['lr']}, 1 epoch; "
            f"plain run {plain['median']:.2f} s (median of {plain['n']}; the epoch itself "
            f"{tr['epoch_seconds_plain']:.2f} s). Overhead = (tracked - plain) / plain.",
            "",
            "| Tracker settings | records | losses on | median s | **overhead, fraction of an "
            "epoch** | per record | tracker's own s per record |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, v in tr["variants"].items():
            s = {k: x for k, x in v["settings"].items() if k != "budget"}
            desc = f"budget={v['settings']['budget']}" + "".join(f", {k}={x}" for k, x in s.items())
            lines.append(
                f"| {desc} | {v['records']} | {v['losses_on']} | "
                f"{tr['timings'][name]['median']:.2f} | "
                f"**{_fmt_ratio(v['overhead_fraction_of_epoch'])}** | "
                f"{v['overhead_per_record']['median']:.2f} | "
                + ", ".join(f"{x:.2f}" for x in v["tracker_seconds_per_record"])
                + " |"
            )
        lines.append("")
    if "exact" in result:
        lines += [
            "## (c) Exact derivative vs one training run, and (d) FD slope cost per h",
            "",
            "One training run = `train(beta=0)` + `evaluate` (one point of a finite "
            "difference); exact = `training_derivative` (its own primal run, the tangents and "
            "the derivative of the test loss). FD(h) = (L(h) - L(0)) / h from `train` runs with "
            "the same seed and batches; each h costs one more run (L(0) shared). "
            "`nn_backdoor_slope(h=(0.1, 0.01, 0.001))` is timed once as a check.",
            "",
            "| SGD setting | steps | clean acc. / ASR at beta = 0 | run s | exact s | **exact / "
            "run** | exact dL/dbeta | FD(0.1): cost / run, rel. diff | FD(0.01) | FD(0.001) | "
            "nn_backdoor_slope s (/ run) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for res in result["exact"]:
            t, cfg, b = res["timings"], res["config"], res["at_beta0"]
            e = res.get("exact")
            fd_cells = []
            for row in res["fd"].values():
                rel = f", {row['rel_diff_to_exact']:.2g}" if "rel_diff_to_exact" in row else ""
                fd_cells.append(
                    f"{_fmt_ratio(row['ratio_cost_over_train_run'])}{rel} ({row['derivative']:.4g})"
                )
            s = res["nn_backdoor_slope"]
            lines.append(
                f"| {res['n_train']} digits, {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
                f"lr {cfg['lr']} | {e['n_steps'] if e else '-'} | {b['clean_accuracy']:.2f} / "
                f"{b['backdoor_accuracy']:.2f} | {t['train_run']['median']:.2f} | "
                + (
                    f"{t['exact']['median']:.2f} | **{_fmt_ratio(e['ratio_exact_over_train_run'])}"
                    f"** | {e['derivative']:.4g} | "
                    if e
                    else "- | - | - | "
                )
                + " | ".join(fd_cells)
                + f" | {s['seconds']:.2f} ({s['ratio_over_train_run_median']:.1f}) |"
            )
        lines += [
            "",
            "FD cells: cost of that h / one run [min-max], relative difference |FD - exact| / "
            "|exact|, and (the FD value). SmallCNN (ReLU, max-pool) makes L(beta) only piecewise "
            "smooth and the float32 training amplifies rounding, so FD(h) need not converge to "
            "the derivative as h shrinks; the further the network trains, the larger the gap "
            "(tests/nn/test_exact.py checks convergence in float64 at h <= 1e-4 and on a smooth "
            "network).",
            "",
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------ main
SECTIONS = ("per_sample", "resnet", "tracking", "exact")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help=f"JSON output (default {DEFAULT_OUT})")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--repeats", type=int, default=5, help="rounds for SmallCNN cases, tracking")
    p.add_argument("--resnet-repeats", type=int, default=3, help="rounds for ResNet-18")
    p.add_argument("--exact-repeats", type=int, default=3, help="rounds for (c)")
    p.add_argument(
        "--case-budget",
        type=float,
        default=60.0,
        help="seconds per case after the warm-up; stop repeating past it",
    )
    p.add_argument("--n-samples", type=int, default=1000, help="digits of the SmallCNN cases")
    p.add_argument("--chunks", nargs="+", type=int, default=[32, 64, 128, 256, 1000])
    p.add_argument("--cnn-threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--resnet-samples", type=int, default=8)
    p.add_argument("--resnet-size", type=int, default=224)
    p.add_argument("--resnet-chunks", nargs="+", type=int, default=[2, 4, 8])
    p.add_argument("--resnet-threads", nargs="+", type=int, default=[1])
    p.add_argument("--budget", type=int, default=1000, help="Tracker(budget=...)")
    p.add_argument("--track-train", type=int, default=4800, help="training digits of (b)")
    p.add_argument("--track-test", type=int, default=200)
    p.add_argument("--exact-train", type=int, default=2000, help="training digits of (c)")
    p.add_argument("--exact-test", type=int, default=500)
    p.add_argument("--exact-epochs", type=int, default=2)
    p.add_argument("--train-threads", type=int, default=1, help="TrainConfig(threads=...)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~30 s): 1 round, small sizes; default output nn_quick.json",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = args.resnet_repeats = args.exact_repeats = 1
        args.n_samples, args.chunks = 200, [64, 200]
        args.resnet_samples, args.resnet_size, args.resnet_chunks = 2, 64, [2]
        args.budget, args.track_train, args.exact_train, args.exact_test = 300, 1000, 500, 200
    if args.out is None:
        args.out = DEFAULT_OUT.with_name("nn_quick.json") if args.quick else DEFAULT_OUT
    return args


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notes
    torch.set_num_threads(1)  # every section sets its own count explicitly
    start = time.perf_counter()
    result = {
        "meta": machine_info(),
        "torch_version": torch.__version__,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if "per_sample" in args.sections:
        result["per_sample"] = section_per_sample(args)
    if "tracking" in args.sections:
        result["tracking"] = section_tracking(args)
    if "exact" in args.sections:
        result["exact"] = section_exact(args)
    if "resnet" in args.sections:
        result["resnet"] = section_resnet(args)
    result["loadavg_at_end"] = _loadavg()
    result["meta"]["wall_seconds"] = time.perf_counter() - start
    write_results(args.out, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
