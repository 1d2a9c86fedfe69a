"""Run a neural-network study configuration (``backdoor-curves nn CONFIG.toml --out DIR``).

For every data setting of the configuration (:class:`~backdoor_curves.nn.config.NNConfig`; the
data are built once per setting) and every model:

0. with ``[convex]``: the data setting's trigger on a two-class MNIST problem with a convex
   learner (:func:`~backdoor_curves.nn_comparison.convex_attack_scores`); with ``[dynamics]``:
   one training at beta = 1 with :class:`~backdoor_curves.dynamics.callback.InformationDynamics`
   and the stealthiness score;
1. with ``[tracking]``: one training at beta = 1 with a
   :class:`~backdoor_curves.nn.tracking.Tracker` (isolation precision, AUROC and early-fitting
   gap per epoch, Delta predicted beside the measured one-step change, synchronization by layer,
   self-influence);
2. for each epoch budget, in increasing order: the learning curve
   (:func:`~backdoor_curves.nn.curves.nn_learning_curve`), with ``[slope]`` the finite-difference
   slopes over h and seeds (:func:`~backdoor_curves.nn.curves.nn_backdoor_slope`, sharing the
   curve's trainings) and, with ``exact = true``, the exact derivative of each seed's training
   run (:func:`~backdoor_curves.nn.exact.training_derivative`).

Outputs in ``DIR`` (each written atomically):

- ``curves.csv``: one row per (model, setting, epochs, beta): backdoor and clean loss and
  accuracy, rho, rho_ratio, nu;
- ``slopes.csv``: one row per (model, setting, epochs, seed, h): L(0), L(h), the derivative
  (L(h) - L(0)) / h, its score, accuracies at 0 and h;
- ``exact.csv``: one row per (model, setting, epochs, seed): the exact derivative, its score,
  L(0) and accuracies, seconds, and the finite difference of the smallest h of the same seed
  beside it (``fd_h``, ``fd_derivative``, ``fd_relative_difference``);
- ``tracking.csv`` (per epoch of the tracked run), ``layers.csv`` (per epoch and layer) and
  ``self_influence.csv`` (per sample of the budget);
- ``summary.csv``: one row per (model, setting, epochs): accuracies at beta = 0 and 1, the mean
  derivative and score per h, the exact derivative (paper 001's Table 1 layout);
- ``dynamics.csv``: with ``[dynamics]``, one row per (model, setting, checkpoint, group): I(X;T)
  and I(T;Y_hat) in nats (``mi_xt``, ``mi_ty``), the group's sample size, seconds;
- ``attacks.csv``: with ``[[attack]]``, the attack table of
  :func:`~backdoor_curves.nn_comparison.attack_table` (one row per attack and model);
- PNG figures (with ``[dynamics]``: ``information_plane*.png``, the information plane and the MI
  by epoch) and ``report.md`` with the numbers and the figures;
- ``checkpoints/``: every training's per-epoch checkpoint, and the finished exact derivatives and
  tracked runs. A re-run with the same ``--out`` resumes: finished trainings are read back,
  interrupted ones continue from their last epoch, a longer epoch budget starts from the
  shorter budget's checkpoints (the first epochs of a run do not depend on its length), and
  finished exact derivatives and tracked runs are not recomputed (a tracked run interrupted
  midway restarts, since its records cover every epoch). The CSV tables of a re-run are
  identical to the first run's. Checkpoints load with ``torch.load(weights_only=True)`` and the
  finished results (``tracking.npz``, ``exact/seed=N.npz``) are records of arrays and JSON
  (:func:`backdoor_curves._io.write_record`), so resuming an output directory from elsewhere
  cannot run code; the pickled results of earlier versions (``.pkl``) are refused, naming them.

Ctrl-C stops the run: the workers are stopped, the checkpoints and finished results are kept,
and :class:`~backdoor_curves._io.Interrupted` (a ``KeyboardInterrupt``) says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ._io import Interrupted, atomic_write, output_dir, read_record, write_record
from ._validation import check_n_jobs
from .attacks.triggers import trigger_params
from .nn.config import NNConfig, load_nn_config
from .nn.curves import nn_backdoor_slope, nn_learning_curve
from .nn.train import CHECKPOINT_FILE, train
from .nn_comparison import attack_table, convex_attack_scores
from .viz.nn_plots import (
    plot_fd_slopes,
    plot_isolation_precision,
    plot_loss_reduction,
    plot_self_influence,
    plot_synchronization,
)
from .viz.plots import format_number, plot_curves, save_figure
from .viz.report import markdown_table

__all__ = ["run_nn_config"]

#: Fields of the exact derivative kept in ``exact.csv``.
_EXACT_FIELDS = (
    "derivative",
    "score",
    "backdoor_loss",
    "clean_loss",
    "clean_accuracy",
    "backdoor_accuracy",
    "n_steps",
    "seconds",
)
#: Format of the finished-result files (``tracking.npz``, ``exact/seed=N.npz``): 2 is the
#: pickle-free record of :func:`backdoor_curves._io.write_record` (1 was a pickle, ``.pkl``).
_CACHE_FORMAT = 2
#: Suffix of the finished-result files.
_CACHE_SUFFIX = ".npz"


# ------------------------------------------------------------------------------ helpers


def _slug(text: str) -> str:
    """``text`` as one file-name component: no separator, never ``.`` or ``..`` or hidden."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", str(text)).strip("_").lstrip(".") or "_"


def _setting_slug(setting: dict) -> str:
    return _slug("_".join(f"{k}={v}" for k, v in setting.items())) if setting else "default"


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(path: Path, fingerprint: str, compute: Callable[[], dict]) -> dict:
    """The value stored at ``path`` for ``fingerprint``, else ``compute()`` stored there.

    The file is a record of :func:`~backdoor_curves._io.write_record` (arrays and JSON, read
    without pickle), so an output directory from elsewhere cannot run code when resumed.
    """
    if path.is_file():
        try:
            header, value = read_record(path)
        except ValueError as exc:
            raise ValueError(f"{exc}; delete it (it is recomputed) or use another --out") from None
        if header.get("format") != _CACHE_FORMAT or header.get("fingerprint") != fingerprint:
            raise ValueError(
                f"out holds {path}, the result of another configuration (its data, model, "
                "training or tracking settings differ); delete it or use another --out"
            )
        return value
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_record(path, value, {"format": _CACHE_FORMAT, "fingerprint": fingerprint})
    return value


def _refuse_pickles(checkpoints: Path) -> None:
    """Refuse the pickled results of earlier versions (loading a pickle can run code)."""
    old = sorted(checkpoints.rglob("*.pkl")) if checkpoints.is_dir() else []
    if old:
        more = f" and {len(old) - 1} more" if len(old) > 1 else ""
        raise ValueError(
            f"out holds finished results of an earlier version in pickle files ({old[0]}{more}), "
            "which this version does not load since loading a pickle can run code; delete them "
            "(their results are recomputed, the trainings' checkpoints are kept) or use another "
            "--out"
        )


def _kept(checkpoints: Path) -> str:
    """What an interrupted run leaves for the next: its checkpoints and finished results."""
    if not checkpoints.is_dir():
        return "nothing was finished yet"
    trainings = sum(1 for _ in checkpoints.rglob(CHECKPOINT_FILE))
    results = sum(1 for _ in checkpoints.rglob(f"*{_CACHE_SUFFIX}"))
    return (
        f"{trainings} training checkpoint(s) (each up to its last finished epoch) and "
        f"{results} finished result(s) are kept in {checkpoints}"
    )


def _carry_checkpoints(previous: Path, root: Path) -> None:
    """Start the trainings of a longer budget from the finished ones of the shorter budget."""
    for src in sorted(previous.rglob(CHECKPOINT_FILE)):
        dst = root / src.relative_to(previous)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dst, lambda f, src=src: f.write(src.read_bytes()), binary=True)


def _labelled(frame: pd.DataFrame, labels: dict) -> pd.DataFrame:
    front = pd.DataFrame({k: [v] * len(frame) for k, v in labels.items()}, index=frame.index)
    return pd.concat([front, frame], axis=1)


def _data_info(data) -> dict:
    return {
        "n_train": data.n_train,
        "n_test": len(data.y_test),
        "n_test_bd": len(data.y_test_bd),
        "n_poison": data.n_poison,
        "eta": data.poison_rate,
        "image_shape": "x".join(map(str, data.image_shape)),
        "n_classes": data.n_classes,
    }


# ------------------------------------------------------------------------------ the units


def _tracked_run(config: NNConfig, spec, factory, data, table, unit_dir, progress) -> dict:
    tracking = config.tracking
    cfg = config.train_config(tracking.epochs)
    fingerprint = _digest(
        {
            "data": table,
            "model": dataclasses.asdict(spec),
            "train": cfg.describe(),
            "tracking": dataclasses.asdict(tracking),
        }
    )

    def compute():
        tracker = tracking.tracker()
        train(factory, data, 1.0, cfg, callbacks=[tracker], progress=progress)
        return {
            "tracking": tracker.history,
            "layers": tracker.layer_history,
            "self_influence": tracker.self_influence,
        }

    return _cached(unit_dir / f"tracking{_CACHE_SUFFIX}", fingerprint, compute)


def _dynamics_run(config: NNConfig, spec, factory, data, table, unit_dir, progress) -> dict:
    """One training at beta = 1 with :class:`~backdoor_curves.dynamics.callback.
    InformationDynamics`: the MI history and the stealthiness score."""
    dynamics = config.dynamics
    cfg = config.train_config(dynamics.epochs)
    fingerprint = _digest(
        {
            "data": table,
            "model": dataclasses.asdict(spec),
            "train": cfg.describe(),
            "dynamics": dataclasses.asdict(dynamics),
        }
    )

    def compute():
        from .dynamics.stealth import stealth_score

        callback = dynamics.callback()
        train(factory, data, 1.0, cfg, callbacks=[callback], progress=progress)
        history = callback.history
        score = stealth_score(history, phases=list(dynamics.phases))
        # the noise floor: the same score with each clean class in the target's place (against
        # the other clean classes); an attack's S is informative only well above it
        clean = sorted(g for g in history["group"].unique() if g.startswith("class_"))
        floor = [
            2.0  # one target group: two terms; S has two target groups, four terms
            * stealth_score(
                history,
                phases=list(dynamics.phases),
                target_groups=[c],
                clean_groups=[o for o in clean if o != c],
            ).score
            for c in clean
        ] if len(clean) > 2 else []  # fmt: skip
        return {
            "dynamics": history,
            "stealth": score.score,
            "stealth_terms": score.terms,
            "stealth_floor": float(np.mean(floor)) if floor else math.nan,
        }

    return _cached(unit_dir / f"dynamics{_CACHE_SUFFIX}", fingerprint, compute)


def _convex_run(config: NNConfig, setting: dict, table: dict, checkpoints: Path) -> dict:
    """The ``[convex]`` grid of one data setting's trigger (shared by every model)."""
    trigger_keys = {k: v for k, v in table.items() if k == "trigger" or k in trigger_params()}
    fingerprint = _digest(
        {
            "trigger": trigger_keys,
            "convex": dataclasses.asdict(config.convex),
            "fraction": table["fraction"],
            "seed": table["random_state"],
        }
    )

    def compute():
        return convex_attack_scores(
            config.convex,
            trigger_keys,
            fraction=table["fraction"],
            random_state=table["random_state"],
        )

    path = checkpoints / "convex" / f"{_setting_slug(setting)}{_CACHE_SUFFIX}"
    return _cached(path, fingerprint, compute)


def _exact_run(config, spec, factory, data, table, root, epochs, seed, progress) -> dict:
    cfg = config.train_config(epochs, seed)
    fingerprint = _digest(
        {"data": table, "model": dataclasses.asdict(spec), "train": cfg.describe()}
    )

    def compute():
        from .nn.exact import training_derivative  # forward mode: imported when enabled

        result = training_derivative(factory, data, cfg, progress=progress)
        return {name: getattr(result, name) for name in _EXACT_FIELDS}

    return _cached(root / "exact" / f"seed={seed}{_CACHE_SUFFIX}", fingerprint, compute)


def _count_units(config: NNConfig) -> int:
    per_budget = 1
    if config.slope is not None:
        per_budget += 1 + (len(config.slope.seeds) if config.slope.exact else 0)
    per_model = (
        len(config.epochs) * per_budget
        + (config.tracking is not None)
        + (config.dynamics is not None)
    )
    per_setting = len(config.models) * per_model + (config.convex is not None)
    return len(config.settings()) * per_setting


def _at_beta(curve_rows: pd.DataFrame, slope_rows: pd.DataFrame | None, beta: float, what: str):
    hit = curve_rows[curve_rows["beta"] == beta]
    if len(hit):
        return float(hit[what].iloc[0])
    if slope_rows is not None and len(slope_rows):
        if beta == 0.0:
            return float(slope_rows[f"{what}_0"].mean())
        hit = slope_rows[slope_rows["h"] == beta]
        if len(hit):
            return float(hit[f"{what}_h"].mean())
    return math.nan


def _comparison_columns(unit: dict) -> dict:
    """The attack-table columns of a unit: IP, stealthiness, the convex scores."""
    out = {}
    if unit["tracked"] is not None:
        history = unit["tracked"]["tracking"]
        early = history[(history["epoch"] >= 1) & (history["epoch"] <= 5)]
        out["isolation_precision"] = float(early["isolation_precision"].max())
        for epoch in (1, 2, 3):
            at = history.loc[history["epoch"] == epoch, "isolation_precision"]
            out[f"ip_epoch_{epoch}"] = float(at.iloc[0]) if len(at) else math.nan
    if unit["dynamics"] is not None:
        out["stealth"] = float(unit["dynamics"]["stealth"])
        out["stealth_floor"] = float(unit["dynamics"]["stealth_floor"])
    if unit["convex"] is not None:
        out.update({k: v for k, v in unit["convex"].items() if k != "convex_table"})
    return out


def _summary_row(labels, epochs, curve, slope, exact_rows) -> dict:
    frame = curve.to_frame()
    slope_rows = slope.table if slope is not None else None
    row = {**labels, "epochs": epochs, "n_parameters": curve.params.get("n_parameters")}
    for beta in (0.0, 1.0):
        for what in ("clean_accuracy", "backdoor_accuracy", "backdoor_loss"):
            row[f"{what}_{beta:g}"] = _at_beta(frame, slope_rows, beta, what)
    if slope is not None:
        for h, derivative, score in zip(slope.h, slope.derivative, slope.score, strict=True):
            row[f"derivative_h={h:g}"] = float(derivative)
            row[f"score_h={h:g}"] = float(score)
    if exact_rows:
        row["exact_derivative"] = float(np.mean([r["derivative"] for r in exact_rows]))
        row["exact_score"] = float(np.mean([r["score"] for r in exact_rows]))
    return row


# ------------------------------------------------------------------------------ the run


def run_nn_config(config, out, *, n_jobs: int = 1, progress: bool = True) -> dict:
    """Run an nn configuration (path or :class:`NNConfig`) and write its outputs into ``out``.

    See the module docstring for what is computed and written. Missing data files or
    pretrained weights stop the run within seconds, before anything is trained
    (:meth:`~backdoor_curves.nn.config.NNConfig.check_available`). Re-running with the same
    ``out`` resumes from ``out/checkpoints``.

    Parameters
    ----------
    config : str, path-like or NNConfig
        A TOML configuration file (:func:`~backdoor_curves.nn.config.load_nn_config`) or a
        configuration already parsed.
    out : str or path-like
        Output directory (created if missing).
    n_jobs : int, default=1
        Trainings of a curve or a slope run in parallel processes (-1: all CPUs); each is
        deterministic on its own, so the numbers do not depend on it.
    progress : bool, default=True
        Show a progress bar over the whole run (and, with ``n_jobs=1``, each training's).

    Returns
    -------
    dict of str -> Path
        File name -> path of every file written (the CSV tables, the figures, ``report.md``)
        and ``"checkpoints"`` -> the checkpoint directory.

    Raises
    ------
    ValueError
        For an invalid configuration (naming the key), or when ``out`` holds the checkpoints
        or results of another configuration, or pickled results of an earlier version.
    Interrupted
        On Ctrl-C (a ``KeyboardInterrupt``), once the workers are stopped; its ``kept`` says
        how many checkpoints and finished results the next run resumes from.
    FileNotFoundError
        When data files or pretrained weights are missing (naming each).
    ImportError
        When torch (or torchvision, for Imagenette and the ResNets) is not installed.
    TypeError
        Naming ``out`` or ``n_jobs`` of the wrong kind.
    """
    if not isinstance(config, NNConfig):
        config = load_nn_config(config)
    n_jobs = check_n_jobs(n_jobs)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out must be a path (str or os.PathLike), got {type(out).__name__}")
    config.check_available()  # within seconds, before anything is written or trained
    checkpoints = Path(out) / "checkpoints"
    _refuse_pickles(checkpoints)
    out = output_dir(out)
    try:
        return _run(config, out, checkpoints, n_jobs, progress)
    except Interrupted:
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C: the workers are stopped, the checkpoints kept
        raise Interrupted(_kept(checkpoints)) from exc


def _run(config: NNConfig, out: Path, checkpoints: Path, n_jobs: int, progress: bool) -> dict:
    """The body of :func:`run_nn_config`, once the configuration and ``out`` are checked."""
    start = time.perf_counter()
    inner = progress and n_jobs == 1
    names = ("curves", "slopes", "exact", "tracking", "layers", "self_influence", "dynamics")
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in names}
    summary, units = [], []
    with tqdm(total=_count_units(config), desc="backdoor-curves nn", disable=not progress) as bar:

        def step(what: str):
            bar.set_postfix_str(what, refresh=True)

        for setting in config.settings():
            table = config.data_table(setting)
            data = config.make_data(setting)
            info = _data_info(data)
            convex = None
            if config.convex is not None:
                step("convex grid")
                convex = _convex_run(config, setting, table, checkpoints)
                bar.update()
            for spec in config.models:
                labels = {"model": spec.name, **setting}
                factory = spec.factory(data)
                unit_dir = checkpoints / _slug(spec.name) / _setting_slug(setting)
                unit = {
                    "labels": labels,
                    "info": info,
                    "curves": [],
                    "tracked": None,
                    "dynamics": None,
                    "convex": convex,
                }
                if config.dynamics is not None:
                    step(f"{spec.name}: information dynamics")
                    unit["dynamics"] = _dynamics_run(
                        config, spec, factory, data, table, unit_dir, inner
                    )
                    tables["dynamics"].append(_labelled(unit["dynamics"]["dynamics"], labels))
                    bar.update()
                if config.tracking is not None:
                    step(f"{spec.name}: tracked training")
                    tracked = _tracked_run(config, spec, factory, data, table, unit_dir, inner)
                    unit["tracked"] = tracked
                    for name in ("tracking", "layers", "self_influence"):
                        tables[name].append(_labelled(tracked[name], labels))
                    bar.update()
                previous = None
                for epochs in config.epochs:
                    root = unit_dir / f"epochs={epochs}"
                    if previous is not None:
                        _carry_checkpoints(previous, root)
                    cfg = config.train_config(epochs)
                    step(f"{spec.name}: curve, {epochs} epochs")
                    curve = nn_learning_curve(
                        factory,
                        data,
                        list(config.betas),
                        cfg,
                        label=f"{spec.name}, {epochs} epochs",
                        checkpoint_dir=root,
                        n_jobs=n_jobs,
                        progress=inner,
                    )
                    unit["curves"].append((epochs, curve))
                    at = {**labels, "epochs": epochs}
                    tables["curves"].append(_labelled(curve.to_frame(), at))
                    bar.update()
                    slope, exact_rows = None, []
                    if config.slope is not None:
                        step(f"{spec.name}: slopes, {epochs} epochs")
                        slope = nn_backdoor_slope(
                            factory,
                            data,
                            cfg,
                            h=list(config.slope.h),
                            seeds=list(config.slope.seeds),
                            label=spec.name,
                            checkpoint_dir=root,
                            n_jobs=n_jobs,
                            progress=inner,
                        )
                        tables["slopes"].append(_labelled(slope.to_frame(), at))
                        bar.update()
                        if config.slope.exact:
                            smallest = float(min(config.slope.h))
                            for seed in config.slope.seeds:
                                step(f"{spec.name}: exact derivative, {epochs} epochs, seed {seed}")
                                result = _exact_run(
                                    config, spec, factory, data, table, root, epochs, seed, inner
                                )
                                fd = slope.table[
                                    (slope.table["seed"] == seed) & (slope.table["h"] == smallest)
                                ]["derivative"].iloc[0]
                                row = {
                                    **at,
                                    "seed": seed,
                                    **result,
                                    "fd_h": smallest,
                                    "fd_derivative": float(fd),
                                }
                                row["fd_relative_difference"] = (
                                    abs(row["fd_derivative"] - row["derivative"])
                                    / abs(row["derivative"])
                                    if row["derivative"] != 0
                                    else math.nan
                                )
                                exact_rows.append(row)
                                bar.update()
                            tables["exact"].append(pd.DataFrame(exact_rows))
                    summary.append(
                        {
                            **_summary_row(labels, epochs, curve, slope, exact_rows),
                            **_comparison_columns(unit),
                        }
                    )
                    previous = root
                units.append(unit)
    seconds = time.perf_counter() - start

    paths: dict[str, Path] = {}
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in tables.items() if parts}
    frames["summary"] = pd.DataFrame(summary)
    if config.attacks:
        frames["attacks"] = attack_table(frames["summary"])
    for name, frame in frames.items():
        paths[f"{name}.csv"] = atomic_write(
            out / f"{name}.csv", lambda f, frame=frame: frame.to_csv(f, index=False)
        )
    figures = []
    for name, fig in _figures(config, units, frames):  # each saved and closed as it is drawn
        paths[name] = save_figure(fig, out / name)
        figures.append(name)
    report = _report(config, units, frames, figures, seconds)
    paths["report.md"] = atomic_write(out / "report.md", lambda f: f.write(report))
    paths["checkpoints"] = checkpoints
    return paths


# ------------------------------------------------------------------------------ figures


def _select(frame: pd.DataFrame | None, labels: dict) -> pd.DataFrame | None:
    if frame is None:
        return None
    mask = np.ones(len(frame), dtype=bool)
    for key, value in labels.items():
        mask &= (frame[key] == value).to_numpy()
    return frame[mask]


def _figures(config: NNConfig, units: list, frames: dict) -> Iterator[tuple[str, Figure]]:
    """The figures of the run, ``(file name, figure)`` one at a time."""
    several = len(units) > 1
    for unit in units:
        labels = unit["labels"]
        suffix = f"_{_slug(labels['model'])}" if len(config.models) > 1 else ""
        setting = {k: v for k, v in labels.items() if k != "model"}
        if setting:
            suffix += f"_{_setting_slug(setting)}"
        title = ", ".join(f"{k} = {v}" for k, v in labels.items()) if several else ""
        curves = [curve for _, curve in unit["curves"]]
        names = [f"{e} epochs" for e, _ in unit["curves"]]
        fig = Figure(figsize=(11.0, 7.5), layout="constrained")
        axes = fig.subplots(2, 2)
        for ax, column in zip(
            axes.flat, ("backdoor_loss", "backdoor_accuracy", "clean_accuracy", "nu"), strict=True
        ):
            plot_curves(curves, ax=ax, column=column, labels=names)
        fig.suptitle(
            f"Backdoor learning curves of {labels['model']}" + (f" ({title})" if title else "")
        )
        yield f"curves{suffix}.png", fig
        if "slopes" in frames:
            fig = plot_fd_slopes(
                _select(frames["slopes"], labels), _select(frames.get("exact"), labels)
            )
            if title:
                fig.axes[0].set_title(f"Finite-difference slope vs h ({title})")
            yield f"slopes{suffix}.png", fig
        if unit["dynamics"] is not None:
            from .dynamics.plots import plot_information_plane, plot_mi_by_epoch

            history = unit["dynamics"]["dynamics"]
            fig = Figure(figsize=(15.0, 4.6), layout="constrained")
            ax_plane, ax_xt, ax_ty = fig.subplots(1, 3)
            plot_information_plane(history, ax=ax_plane)
            plot_mi_by_epoch(history, "mi_xt", ax=ax_xt)
            plot_mi_by_epoch(history, "mi_ty", ax=ax_ty)
            fig.suptitle(
                "Information dynamics at beta = 1"
                + (f" ({title})" if title else "")
                + f", stealthiness S = {unit['dynamics']['stealth']:.3f}"
            )
            yield f"information_plane{suffix}.png", fig
        tracked = unit["tracked"]
        if tracked is not None:
            history = tracked["tracking"]
            fig = plot_isolation_precision(history)
            yield f"isolation_precision{suffix}.png", fig
            yield f"loss_reduction{suffix}.png", plot_loss_reduction(history)
            fig = Figure(figsize=(11.0, 4.2), layout="constrained")
            ax_grad, ax_act = fig.subplots(1, 2)
            plot_synchronization(tracked["layers"], "grad", ax=ax_grad)
            plot_synchronization(tracked["layers"], "act", ax=ax_act)
            yield f"synchronization{suffix}.png", fig
            auroc = history["si_auroc"].dropna()
            fig = plot_self_influence(
                tracked["self_influence"], auroc=float(auroc.iloc[-1]) if len(auroc) else None
            )
            yield f"self_influence{suffix}.png", fig


# ------------------------------------------------------------------------------ report


def _fmt(digits: int = 3):
    return lambda v: (
        "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"
    )


def _report(config: NNConfig, units: list, frames: dict, figures: list, seconds: float) -> str:
    data = config.data
    attack = (
        f"{data['mode']}"
        + (f" to class {data['target']}" if data["mode"] == "all-to-one" else "")
        + (
            ", attacks "
            + "; ".join(
                f"{a.name} ({a.trigger}{''.join(f', {k} = {v}' for k, v in a.params.items())})"
                for a in config.attacks
            )
            if config.attacks
            else f", {data['trigger']} trigger"
            + "".join(f", {k} = {data[k]}" for k in trigger_params(data["trigger"]) if k in data)
        )
        + f", fraction {data['fraction']:g}, poisoning seed {data['random_state']}"
    )
    training = ", ".join(f"{k} = {v}" for k, v in config.train.describe().items() if k != "epochs")
    lines = [
        f"# {config.title}",
        "",
        f"Configuration: `{config.source or '(in memory)'}`. Models: "
        + ", ".join(
            f"{m.name} ({m.kind}{''.join(f', {k}={v}' for k, v in m.params.items())})"
            for m in config.models
        )
        + f". Epoch budgets: {', '.join(map(str, config.epochs))}. "
        f"Training: {training}. "
        f"This run took {seconds:.1f} s (finished trainings are read back from `checkpoints/`).",
        "",
        f"Data: {data['dataset']}, attack {attack}."
        + (
            " Swept: " + "; ".join(f"{k} in {list(v)}" for k, v in config.grid.items()) + "."
            if config.grid
            else ""
        ),
        "",
    ]
    if len(frames["summary"]):
        lines += ["## Summary (one row per model, data setting and epoch budget)", ""]
        summary = frames["summary"].drop(columns=["n_parameters"], errors="ignore")
        lines += [markdown_table(summary), ""]
        lines += [
            "Accuracies and backdoor loss at beta = 0 (clean training) and beta = 1 (ordinary "
            "poisoned training); `derivative_h=` is the finite difference (L(h) - L(0)) / h of "
            "the backdoor loss in nats per unit of beta (mean over seeds), `score_h=` its score "
            "-(2/pi) arctan; `exact_derivative` the exact derivative of the training run at "
            "beta = 0.",
            "",
        ]
    if "attacks" in frames:
        lines += _attack_lines(config, frames["attacks"])
    for unit in units:
        labels, info = unit["labels"], unit["info"]
        heading = ", ".join(f"{k} = {v}" for k, v in labels.items() if k != "model")
        lines += [f"## {labels['model']}" + (f" ({heading})" if heading else ""), ""]
        lines += [
            f"{info['n_train']} training images of {info['image_shape']} pixels, "
            f"{info['n_poison']} poisoned (eta = {info['eta']:.3f}); {info['n_test']} clean test "
            f"images, {info['n_test_bd']} triggered test images; {info['n_classes']} classes.",
            "",
        ]
        curves = _select(frames["curves"], labels)
        lines += ["### Learning curves", ""]
        lines += [
            markdown_table(
                curves[
                    [
                        "epochs",
                        "beta",
                        "backdoor_loss",
                        "backdoor_accuracy",
                        "clean_loss",
                        "clean_accuracy",
                        "nu",
                    ]
                ],
                {
                    c: _fmt()
                    for c in ("backdoor_loss", "backdoor_accuracy", "clean_loss", "clean_accuracy")
                },
            ),
            "",
        ]
        if "slopes" in frames:
            lines += _slope_lines(
                config, _select(frames["slopes"], labels), _select(frames.get("exact"), labels)
            )
        if unit["tracked"] is not None:
            lines += _tracking_lines(config, unit["tracked"])
        if unit["dynamics"] is not None:
            lines += _dynamics_lines(config, unit["dynamics"])
    lines += ["## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def _slope_lines(config: NNConfig, slopes: pd.DataFrame, exact: pd.DataFrame | None) -> list:
    lines = ["### Backdoor slope: finite differences and the exact derivative", ""]
    rows = []
    for (epochs, h), part in slopes.groupby(["epochs", "h"], sort=True):
        row = {
            "epochs": epochs,
            "h": format_number(h),
            "FD derivative": part["derivative"].mean(),
            "FD sd over seeds": part["derivative"].std(ddof=1) if len(part) > 1 else math.nan,
            "FD score": part["score"].mean(),
        }
        if exact is not None and len(exact):
            ex = exact[exact["epochs"] == epochs]
            # the same seeds on both sides
            paired = part.merge(ex[["seed", "derivative"]], on="seed", suffixes=("", "_exact"))
            row["exact derivative"] = ex["derivative"].mean()
            row["FD / exact - 1"] = float(
                (paired["derivative"] / paired["derivative_exact"] - 1.0).mean()
            )
        rows.append(row)
    lines += [markdown_table(pd.DataFrame(rows)), ""]
    n_seeds = len(config.slope.seeds)
    text = (
        f"Derivatives in nats of backdoor loss per unit of beta, means over {n_seeds} seed(s) "
        f"({', '.join(map(str, config.slope.seeds))}); each seed's trainings share initial "
        "weights and batch order."
    )
    if exact is not None and len(exact):
        cost = exact["seconds"].mean()
        text += (
            " The exact derivative differentiates the actual training run at beta = 0 in forward "
            f"mode (mean {cost:.1f} s per run); `FD / exact - 1` is the mean over seeds of the "
            "relative gap of the finite difference at that h."
        )
    return lines + [text, ""]


def _tracking_lines(config: NNConfig, tracked: dict) -> list:
    history = tracked["tracking"]
    tracking = config.tracking
    eta = float(history["eta"].iloc[0])
    lines = [
        f"### Early fitting (one training at beta = 1, {tracking.epochs} epochs, budget "
        f"{tracking.budget} samples)",
        "",
    ]
    view = pd.DataFrame(
        {
            "epoch": history["epoch"],
            "IP": history["isolation_precision"],
            "IP / eta": history["isolation_precision"] / eta,
            "loss AUROC": history["auroc"],
            "early-fitting gap": history["early_fitting_gap"],
            "Delta predicted": history["delta"],
            "Delta measured": history["measured_delta"],
            "SI AUROC": history["si_auroc"],
        }
    )
    formats = {c: _fmt() for c in ("IP", "loss AUROC", "SI AUROC")}
    formats["IP / eta"] = _fmt(1)
    formats.update({c: _fmt(4) for c in ("early-fitting gap", "Delta predicted", "Delta measured")})
    lines += [markdown_table(view, formats), ""]
    trained = history[history["epoch"] >= 1]
    first = trained[trained["epoch"] <= 5]
    ips = ", ".join(f"{v:.2f}" for v in first["isolation_precision"])
    on = "all training samples" if (history["losses_on"] == "all").all() else "the budget subset"
    lines += [
        f"IP(e) is the fraction of poisoned samples among the floor(eta n) lowest-loss samples "
        f"of {on} after epoch e (eta = {eta:.3f}: chance). Epochs 1-{int(first['epoch'].max())}: "
        f"IP = {ips}, {first['isolation_precision'].min() / eta:.1f} to "
        f"{first['isolation_precision'].max() / eta:.1f} times eta. The early-fitting gap is "
        "the mean clean loss minus the mean poisoned loss (nats; positive: the poison is "
        "fitted faster). Delta = eta r_bb - (1 - eta) r_cc + (1 - 2 eta) r_bc is predicted from "
        "the group-mean gradients on the budget subset at the current learning rate; the "
        "measured value takes that plain SGD step; SI AUROC is the self-influence's AUROC as a "
        "poison detector over the epochs so far.",
        "",
    ]
    layers = tracked["layers"]
    positive = sorted(e for e in layers["epoch"].unique() if e > 0)
    epoch = positive[0] if positive else 0
    part = layers[layers["epoch"] == epoch]
    lines += [f"Synchronization by layer after epoch {epoch} (mean pairwise cosine):", ""]
    sync = pd.DataFrame(
        {
            "layer": part["layer"],
            "grad within poisoned": part["grad_cos_poisoned"],
            "grad within clean": part["grad_cos_clean"],
            "grad poisoned vs clean": part["grad_cos_poisoned_clean"],
            "act within poisoned": part["act_cos_poisoned"],
            "act within clean": part["act_cos_clean"],
            "act poisoned vs clean": part["act_cos_poisoned_clean"],
        }
    )
    return lines + [markdown_table(sync, {c: _fmt() for c in sync.columns if c != "layer"}), ""]


def _attack_lines(config: NNConfig, attacks: pd.DataFrame) -> list:
    columns = [c for c in attacks.columns if attacks[c].notna().any()]
    formats = {c: _fmt() for c in columns if c not in ("attack", "model", "epochs")}
    lines = ["## Attack table (one row per attack and model, largest epoch budget)", ""]
    lines += [markdown_table(attacks[columns], formats), ""]
    notes = [
        "`clean_accuracy` and `attack_success` (backdoor accuracy) of the network trained on "
        "the poisoned set (beta = 1)",
        "`slope_score` = -(2/pi) arctan(dL(V_t)/dbeta at beta = 0): higher means the backdoor "
        "is learned faster (paper 001; the exact derivative when computed, else the finite "
        "difference at the smallest h)",
    ]
    if "isolation_precision" in columns:
        notes.append(
            "`isolation_precision`: the largest IP over epochs 1-5 of the tracked training "
            "(chance = eta; high means an early-fitting defense isolates the poison, paper 002)"
        )
    if "stealth" in columns:
        notes.append(
            "`stealth`: the dynamics-based score S of paper 000 in [0, 4] over the phase "
            f"checkpoints {list(config.dynamics.phases)}: lower means the target class's "
            "I(X;T) and I(T;Y) evolve like a clean class's; `stealth_floor` is the same score "
            "of a clean class against the others (two terms, doubled to the same scale), "
            "averaged over the clean classes: the estimator's noise floor"
        )
    if config.convex is not None:
        convex = config.convex
        notes.append(
            f"`convex_*`: the same trigger on MNIST {convex.digits[0]} vs {convex.digits[1]} "
            f"with the {convex.learner} learner over C in {list(convex.C)}: the exact slope "
            f"score and the accuracies at C = {convex.at:g}, and the share of the grid in the "
            f"robust region (backdoor accuracy <= {convex.max_backdoor_accuracy:g}, clean "
            f"accuracy within {convex.clean_drop:g} of the grid's best)"
        )
    return lines + ["; ".join(notes) + ".", ""]


def _dynamics_lines(config: NNConfig, dynamics: dict) -> list:
    spec = config.dynamics
    history = dynamics["dynamics"]
    lines = [
        f"### Information dynamics (one training at beta = 1, layer `{spec.layer}`, noise "
        f"gamma = {spec.noise_std:g})",
        "",
    ]
    view = history.pivot_table(index="group", columns="epoch", values=["mi_xt", "mi_ty"])
    view.columns = [f"{m} e={e}" for m, e in view.columns]
    view = view.reset_index()
    lines += [markdown_table(view, {c: _fmt(2) for c in view.columns if c != "group"}), ""]
    terms = dynamics["stealth_terms"]
    detail = ", ".join(f"D({t.measure}, {t.group}) = {t.D:.3f}" for t in terms.itertuples())
    lines += [
        f"InfoNCE estimates in nats (critic: {spec.negatives} negatives, bound "
        f"log(K+1) = {np.log(spec.negatives + 1):.2f}; {spec.critic_epochs} epochs; at most "
        f"{spec.max_samples} rows per group). Stealthiness S = {dynamics['stealth']:.3f} "
        f"over the checkpoints {list(spec.phases)}: {detail}. Noise floor (a clean class in "
        f"the target's place): {dynamics['stealth_floor']:.3f}.",
        "",
    ]
    return lines
