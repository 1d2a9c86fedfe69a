"""Feature-extraction benchmark (issue #5, item 7): images/second, cache speed-up, grid share.

(a) Throughput: ``AlexNetFeatures`` and ``ResNetFeatures("resnet18" | "resnet50")`` (random
    weights; the cost does not depend on their values) on random 32 x 32 RGB images upsampled to
    224 x 224: for each ``--batch-sizes`` value, one ``transform`` call on exactly one batch of
    that many images (after a warm-up call that builds the network), against a plain per-image
    loop (one ``transform`` call per image, ``--loop-images`` images). Batch sizes are run in
    increasing order until ``--budget`` seconds per model are used; the rest are reported skipped.
(b) Cache: ``--cache-images`` images extracted with ``cache_dir`` set: the first call (miss:
    extract + write) and the median of ``--repeats`` further calls (hit: hash the images, read
    and verify the file).
(c) Grid share: ``extractors.load_backdoor_data`` (embedded MNIST 7 vs 1, ``--grid-train`` /
    ``--grid-test`` images, ResNet-18 features, BadNets 3 x 3 on 10 %) followed by a small grid
    study on the features (``backdoor_slope`` + ``learning_curve`` for ridge at three alphas and
    logistic regression at three Cs), once with a cold cache and once with a warm one; reported:
    the share of the total time spent loading + extracting.

(d) Threads: ResNet-18 on one batch of ``--thread-images`` images with 1 and 2 torch threads,
    interleaved ``--repeats`` times.

torch runs with ``--threads`` intra-op threads (default 2, this machine's core count) outside
(d); BLAS in backdoor_curves stays pinned to one thread as usual.

Run:  python benchmarks/bench_extract.py --out benchmarks/results/extract.json  (make bench-extract)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import backdoor_curves as bc
from extractors import load_backdoor_data, make_extractor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import _log, machine_info, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "extract.json"
MODELS = ("alexnet", "resnet18", "resnet50")


def _timed(f):
    t0 = time.perf_counter()
    value = f()
    return time.perf_counter() - t0, value


def bench_model(
    name: str, X: np.ndarray, batch_sizes, loop_images: int, cache_images: int, repeats: int,
    budget: float,
) -> dict:  # fmt: skip
    """Throughput per batch size (one batch each), per-image loop, cache miss / hit."""
    ext = make_extractor(name, weights=None).fit()
    ext.transform(X[:2])  # warm-up: builds the network
    out = {"batches": {}, "skipped_batch_sizes": []}
    start = time.perf_counter()
    for bs in sorted(batch_sizes):
        if time.perf_counter() - start > budget:
            out["skipped_batch_sizes"].append(bs)
            _log(f"{name} batch {bs}: skipped (budget of {budget:.0f} s used)")
            continue
        ext.set_params(batch_size=bs)
        sec, _ = _timed(lambda e=ext, n=bs: e.transform(X[:n]))
        out["batches"][bs] = {"seconds": sec, "n_images": bs, "images_per_s": bs / sec}
        _log(f"{name} batch {bs}: {bs / sec:.1f} images/s")
    sec, _ = _timed(lambda: [ext.transform(X[i : i + 1]) for i in range(loop_images)])
    out["per_image_loop"] = {
        "seconds": sec,
        "n_images": loop_images,
        "images_per_s": loop_images / sec,
    }
    _log(f"{name} per-image loop: {loop_images / sec:.1f} images/s")
    Xc = X[:cache_images]
    with tempfile.TemporaryDirectory() as tmp:
        cached = make_extractor(name, weights=None, batch_size=64, cache_dir=tmp).fit()
        miss, _ = _timed(lambda: cached.transform(Xc))
        hits = [_timed(lambda: cached.transform(Xc))[0] for _ in range(repeats)]
    hit = statistics.median(hits)
    out["cache"] = {
        "n_images": len(Xc),
        "miss_seconds": miss,
        "miss_images_per_s": len(Xc) / miss,
        "hit_seconds": hits,
        "hit_median_seconds": hit,
        "hit_images_per_s": len(Xc) / hit,
        "speedup": miss / hit,
    }
    _log(f"{name} cache ({len(Xc)} images): miss {miss:.2f} s, hit {hit:.4f} s ({miss / hit:.0f}x)")
    return out


def bench_threads(X: np.ndarray, threads: list[int], repeats: int) -> dict:
    """ResNet-18 on one batch of ``len(X)`` images with each torch thread count, interleaved."""
    import torch

    before = torch.get_num_threads()
    ext = make_extractor("resnet18", weights=None, batch_size=len(X)).fit()
    ext.transform(X[:2])
    samples = {t: [] for t in threads}
    try:
        for _ in range(repeats):
            for t in threads:
                torch.set_num_threads(t)
                samples[t].append(_timed(lambda: ext.transform(X))[0])
    finally:
        torch.set_num_threads(before)
    out = {
        t: {"seconds": v, "images_per_s": len(X) / statistics.median(v)} for t, v in samples.items()
    }
    _log("threads: " + ", ".join(f"{t}: {r['images_per_s']:.1f} images/s" for t, r in out.items()))
    return {"n_images": len(X), "by_threads": out}


def grid_study(data) -> None:
    """Slope + 21-point curve for ridge (3 alphas) and logistic regression (3 Cs)."""
    learners = [bc.RidgeLearner(alpha=a) for a in (1.0, 10.0, 100.0)]
    learners += [bc.LogisticLearner(C=c) for c in (0.01, 0.1, 1.0)]
    for learner in learners:
        bc.backdoor_slope(learner, data)
        bc.learning_curve(learner, data)


def bench_grid(n_train: int, n_test: int) -> dict:
    kw = {
        "dataset": "mnist", "extractor": "resnet18", "weights": None, "n_train": n_train,
        "n_test": n_test, "fraction": 0.1, "size": 3, "batch_size": 64,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cold, data = _timed(lambda: load_backdoor_data(**kw, cache_dir=tmp))
        grid, _ = _timed(lambda: grid_study(data))
        warm, data2 = _timed(lambda: load_backdoor_data(**kw, cache_dir=tmp))
    assert np.array_equal(data.X_poison, data2.X_poison)
    pixels, _ = _timed(lambda: load_backdoor_data(**{**kw, "extractor": "none"}))
    n_images = data.n_clean + data.n_poison + 2 * len(data.y_test)
    res = {
        "problem": repr(data),
        "images_extracted": n_images,
        "load_extract_cold_seconds": cold,
        "load_extract_warm_seconds": warm,
        "load_pixels_only_seconds": pixels,
        "grid_seconds": grid,
        "share_before_cache": cold / (cold + grid),
        "share_after_cache": warm / (warm + grid),
    }
    _log(
        f"grid: load+extract {cold:.1f} s cold / {warm:.2f} s warm, grid {grid:.1f} s; share "
        f"{res['share_before_cache']:.0%} -> {res['share_after_cache']:.0%}"
    )
    return res


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Feature extraction: throughput, cache, share of a grid study",
        "",
        f"{meta['date']}, nproc {meta['nproc']}, torch threads {result['torch_threads']}, "
        f"load average at start {meta['loadavg_at_start']}, torch {result['torch_version']}. "
        "Random weights, 32 x 32 RGB inputs upsampled to 224 x 224; one timed call per cell, "
        "so expect +-30 % noise on this shared machine.",
        "",
        "## Images per second",
        "",
    ]
    bss = sorted(
        {b for r in result["models"].values() for b in (*r["batches"], *r["skipped_batch_sizes"])}
    )
    lines.append(
        "| model | " + " | ".join(f"batch {b}" for b in bss) + " | per-image loop | "
        "cache miss (images/s) | cache hit (images/s) | hit speed-up |"
    )
    lines.append("|---" * (len(bss) + 5) + "|")
    for name, r in result["models"].items():
        c = r["cache"]
        cells = [
            f"{r['batches'][b]['images_per_s']:.1f}" if b in r["batches"] else "skipped"
            for b in bss
        ]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {r['per_image_loop']['images_per_s']:.1f} | {c['miss_images_per_s']:.1f} | "
            f"{c['hit_images_per_s']:.0f} | {c['speedup']:.0f}x |"
        )
    g = result["grid"]
    lines += [
        "",
        "Each batch-size cell times one batch of that many images; `skipped` = the model's time "
        "budget was used up. Cache columns: the same "
        f"{next(iter(result['models'].values()))['cache']['n_images']} images extracted with "
        "`cache_dir` set, first call (miss: extract + write) and median of the repeated calls "
        "(hit: hash the images + read + verify the checksum); speed-up = miss / hit.",
        "",
        "## Share of a small grid study spent loading + extracting",
        "",
        f"Problem: {g['problem']}; {g['images_extracted']} images through ResNet-18. Grid: "
        "`backdoor_slope` + 21-point `learning_curve` for ridge (alpha 1, 10, 100) and logistic "
        "regression (C 0.01, 0.1, 1).",
        "",
        "| | load + extract (s) | grid (s) | share extracting |",
        "|---|---|---|---|",
        f"| cold cache | {g['load_extract_cold_seconds']:.2f} | {g['grid_seconds']:.2f} | "
        f"{g['share_before_cache']:.0%} |",
        f"| warm cache | {g['load_extract_warm_seconds']:.2f} | {g['grid_seconds']:.2f} | "
        f"{g['share_after_cache']:.0%} |",
        "",
        f"Loading and poisoning the pixels alone takes {g['load_pixels_only_seconds']:.2f} s.",
        "",
        "## torch threads",
        "",
        f"ResNet-18, one batch of {result['threads']['n_images']} images, median of "
        f"{len(next(iter(result['threads']['by_threads'].values()))['seconds'])} interleaved "
        "repeats:",
        "",
        "| threads | images/s |",
        "|---|---|",
        *(f"| {t} | {r['images_per_s']:.1f} |" for t, r in result["threads"]["by_threads"].items()),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64, 128, 256])
    p.add_argument("--loop-images", type=int, default=8, help="images in the per-image loop")
    p.add_argument("--cache-images", type=int, default=64, help="images of the cache test")
    p.add_argument("--budget", type=float, default=150.0, help="seconds per model for batches")
    p.add_argument("--repeats", type=int, default=3, help="cache-hit repeats")
    p.add_argument("--grid-train", type=int, default=200)
    p.add_argument("--grid-test", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--thread-images", type=int, default=32, help="images of the 1-vs-2 test")
    p.add_argument("--quick", action="store_true", help="smoke run: batches 4 8, few images")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    if args.quick:
        args.batch_sizes, args.loop_images, args.cache_images = [4, 8], 2, 8
        args.grid_train, args.grid_test, args.thread_images = 40, 10, 4
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    X = np.random.default_rng(0).random((max(args.batch_sizes + [args.cache_images]), 32, 32, 3))
    result = {
        "meta": machine_info(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "models": {
            m: bench_model(
                m,
                X,
                args.batch_sizes,
                args.loop_images,
                args.cache_images,
                args.repeats,
                args.budget,
            )
            for m in args.models
        },
        "grid": bench_grid(args.grid_train, args.grid_test),
        "threads": bench_threads(X[: args.thread_images], [1, 2], args.repeats),
    }
    result["meta"]["wall_seconds"] = time.perf_counter() - start
    write_results(args.out, result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
