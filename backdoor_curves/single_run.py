"""One learner on one data set (``backdoor-curves curve`` and ``backdoor-curves slope``).

A single question — how fast does *this* learner learn *this* backdoor? — answered with the
public API: :func:`~backdoor_curves.measures.curves.learning_curve` and
:func:`~backdoor_curves.measures.slope.backdoor_slope`, written into one output directory:

- ``curve``: ``curve.csv`` (:meth:`LearningCurve.to_frame`, one row per beta), ``curve.png``
  (backdoor loss, attack success and clean accuracy against beta, and the parameter deviation
  path) and ``report.md``;
- ``slope``: ``slope.csv`` (one row: the setting and :meth:`BackdoorSlope.to_dict`),
  ``slope.png`` (the exact curve with its first- and second-order Taylor predictions,
  :func:`~backdoor_curves.viz.plots.plot_taylor`) and ``report.md``.

The setting comes from a configuration file's ``[data]`` and ``[[learner]]`` tables (the grid
study's format, :mod:`backdoor_curves.study.config`), from flags, or both (flags win), and is
validated exactly like a configuration before anything is computed: an error names the flag
(``--fraction``) or the configuration key (``data.fraction``). It must describe one point: one
learner with one value per parameter, one value per data parameter.
"""

from __future__ import annotations

import numbers
import os
import re
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import clone

from ._config import load_toml
from ._io import atomic_write, output_dir
from .grid_run import outputs_inside
from .learners import LEARNER_KINDS
from .measures.curves import learning_curve
from .measures.results import default_betas
from .measures.slope import backdoor_slope
from .study.config import GridConfig, parse_config
from .study.grid import grid_points
from .viz.plots import format_number, plot_curves, plot_deviation, plot_taylor, save_figure
from .viz.report import format_setting, markdown_table

__all__ = ["COMMANDS", "DATA_FLAGS", "single_setting", "run_single", "single_summary"]

#: The questions: the learning curve, or the slope at beta = 0.
COMMANDS = ("curve", "slope")
#: ``[data]`` key -> its command-line flag.
DATA_FLAGS = {
    "dataset": "--dataset",
    "digits": "--digits",
    "trigger": "--trigger",
    "size": "--size",
    "intensity": "--intensity",
    "fraction": "--fraction",
    "n_train": "--n-train",
    "n_test": "--n-test",
    "random_state": "--seed",
}
_KEY = re.compile(r"^config key '([^']+)': ")


def _read_raw(path) -> dict:
    return load_toml(path, lambda raw, source: dict(raw))


def _pick_learner(entries: list, learner: str | None, source: str) -> tuple[dict, int | None]:
    """The ``[[learner]]`` entry to run and its index in the file (None: not from the file)."""
    if learner is None:
        if len(entries) == 1:
            return dict(entries[0]), 0
        if not entries:
            kinds = ", ".join(LEARNER_KINDS)
            raise ValueError(f"--learner is required (one of {kinds}), or a --config with one")
        names = [e.get("name", e.get("kind")) for e in entries]
        raise ValueError(
            f"{source} has {len(entries)} [[learner]] tables ({', '.join(map(str, names))}): "
            "choose one with --learner NAME or KIND"
        )
    for i, entry in enumerate(entries):
        if learner in (entry.get("name"), entry.get("kind")):
            return dict(entry), i
    if learner in LEARNER_KINDS:
        return {"kind": learner}, None
    known = sorted({*LEARNER_KINDS, *(str(e.get("name")) for e in entries if "name" in e)})
    raise ValueError(f"argument --learner: unknown learner {learner!r}; one of {known}")


def _multi_valued(config: GridConfig, index: int | None) -> list[str]:
    """``"learner[0].C (10 values)"``, ``"grid.fraction (3 values)"``: keys with several values."""
    grid = config.param_grid[0]
    names = set(config.learners[grid["learner"][0]].get_params())
    where = "learner" if index is None else f"learner[{index}]"
    return [
        f"{where + '.' if key in names else 'grid.'}{key} ({len(values)} values)"
        for key, values in grid.items()
        if key != "learner" and len(values) > 1
    ]


def single_setting(
    *,
    config=None,
    learner: str | None = None,
    params: Mapping | None = None,
    data: Mapping | None = None,
) -> tuple[GridConfig, dict]:
    """The one point a configuration file and flags describe, validated as a configuration.

    Parameters
    ----------
    config : str or path-like, optional
        A TOML file in the grid study's format; its ``[data]``, ``[grid]`` (one value per key)
        and ``[[learner]]`` tables (one, or the one ``learner`` names) are used; ``[study]
        betas`` is not (the number of betas is the caller's).
    learner : str, optional
        A learner kind (``"logistic"``, ``"rbf_svm"``, ...) or, with ``config``, a learner's
        ``name`` or ``kind`` in it (a kind the file does not have: that learner with its
        default parameters).
    params : dict, optional
        Learner parameters (``C``, ``alpha``, ``gamma``, ...), over the file's.
    data : dict, optional
        ``[data]`` keys (``digits``, ``fraction``, ``size``, ``random_state``, ...), over the
        file's (a key given here replaces the file's ``[grid]`` values of it).

    Returns
    -------
    config : GridConfig
        The validated one-point configuration.
    point : dict
        Its only grid point: ``learner`` (name), the learner and data parameters,
        ``random_state``.

    Raises
    ------
    ValueError
        Naming the flag (``argument --fraction: ...``; see :data:`DATA_FLAGS`, learner
        parameters as ``--C``) or the configuration key (``config key 'data.fraction': ...``):
        anything :func:`~backdoor_curves.study.config.parse_config` rejects, a missing or
        ambiguous learner, or more than one point.
    OSError
        If ``config`` cannot be read.
    """
    params, data = dict(params or {}), dict(data or {})
    raw = {} if config is None else _read_raw(config)
    source = "" if config is None else str(config)
    entries = raw.get("learner", [])
    if not isinstance(entries, list):
        entries = []  # parse_config names the key when it is not an array of tables
    entry, index = _pick_learner(entries, learner, source or "the configuration")
    entry.update(params)
    table = dict(raw.get("data", {})) if isinstance(raw.get("data", {}), Mapping) else {}
    table.update(data)
    grid = raw.get("grid", {})
    if isinstance(grid, Mapping):
        grid = {k: v for k, v in grid.items() if k not in data}
    study = raw.get("study", {})
    title = study.get("title") if isinstance(study, Mapping) else None
    doc = {"data": table, "grid": grid, "learner": [entry]}
    doc.update({k: v for k, v in raw.items() if k not in ("data", "grid", "learner", "study")})
    if isinstance(title, str):
        doc["study"] = {"title": title}
    flags = {f"data.{k}": DATA_FLAGS.get(k, f"--{k}") for k in data}
    flags.update({f"learner[0].{k}": f"--{k}" for k in params})
    try:
        parsed = parse_config(doc, source=source)
    except ValueError as exc:
        message = str(exc)
        found = _KEY.match(message)
        if found and found.group(1) in flags:
            raise ValueError(
                f"argument {flags[found.group(1)]}: {message[found.end() :]}"
            ) from None
        if found and index is not None and found.group(1).startswith("learner[0]"):
            key = f"learner[{index}]" + found.group(1).removeprefix("learner[0]")
            raise ValueError(f"config key {key!r}: {message[found.end() :]}") from None
        raise
    points = grid_points(parsed.param_grid, parsed.random_state)
    if len(points) > 1:
        many = ", ".join(_multi_valued(parsed, index))
        raise ValueError(
            f"the setting has {len(points)} points ({many}): this command runs one; give one "
            "value each (e.g. --C 1), or run them all with `backdoor-curves grid`"
        )
    return parsed, points[0]


def _split(config: GridConfig, point: dict):
    name = point["learner"]
    template = config.learners[name]
    names = set(template.get_params())
    learner = clone(template).set_params(**{k: v for k, v in point.items() if k in names})
    data_params = {
        k: v for k, v in point.items() if k not in names and k not in ("learner", "random_state")
    }
    return learner, data_params


def _describe(config: GridConfig, point: dict, learner, data_params: dict) -> str:
    """``"logistic C=1 on mnist digits=(7, 1), fraction=0.1, random_state=0"``."""
    names = [k for k in point if k in learner.get_params()]
    table = {**config.data, **data_params, "random_state": point["random_state"]}
    dataset = table.pop("dataset", "mnist")
    return (
        f"{format_setting(point, names)} on {dataset} "
        f"{format_setting(table, list(table), learner=False)}"
    )


def _curve_figure(curve) -> Figure:
    fig = Figure(figsize=(12.0, 8.4), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for i, column in enumerate(("backdoor_loss", "backdoor_accuracy", "clean_accuracy")):
        plot_curves(curve, ax=axes[i], column=column)
    plot_deviation(curve, ax=axes[3])
    return fig


def _setting_lines(config: GridConfig, point: dict, learner, data_params: dict, data) -> list:
    params = learner.get_params(deep=False)
    shown = ", ".join(
        f"{k} = {format_number(v) if isinstance(v, float) else v}"
        for k, v in params.items()
        if k != "warm_start"
    )
    table = {**config.data, **data_params, "random_state": point["random_state"]}
    return [
        f"- Learner: {point['learner']} ({type(learner).__name__}: {shown}); lambda = "
        f"{format_number(float(learner.regularization))}.",
        "- Data: "
        + ", ".join(f"{k} = {v}" for k, v in table.items())
        + " (other keys at their defaults).",
        f"- Sets: |D| = {data.n_clean} clean and |P| = {data.n_poison} poisoned training points, "
        f"|V| = |V_t| = {len(data.y_test)} test points, {data.X_clean.shape[1]} features.",
    ]


def _config_line(config: GridConfig) -> str:
    where = f"`{config.source}`" if config.source else "command-line flags"
    return f"Setting from {where}; validated like a grid-study configuration."


def _curve_outputs(out, config, point, learner, data_params, data, curve, seconds) -> dict:
    frame = curve.to_frame()
    paths = {"curve.csv": atomic_write(out / "curve.csv", lambda f: frame.to_csv(f, index=False))}
    paths["curve.png"] = save_figure(_curve_figure(curve), out / "curve.png")
    first, last = int(np.argmin(curve.betas)), int(np.argmax(curve.betas))
    rows = pd.DataFrame(
        {
            "beta": [curve.betas[first], curve.betas[last]],
            "backdoor loss L(V_t)": [curve["backdoor_loss"][i] for i in (first, last)],
            "backdoor accuracy": [curve["backdoor_accuracy"][i] for i in (first, last)],
            "clean accuracy": [curve["clean_accuracy"][i] for i in (first, last)],
            "rho ratio": [curve["rho_ratio"][i] for i in (first, last)],
            "nu": [curve["nu"][i] for i in (first, last)],
        }
    )
    lines = [
        f"# Backdoor learning curve: {_describe(config, point, learner, data_params)}",
        "",
        _config_line(config),
        "",
        *_setting_lines(config, point, learner, data_params, data),
        "",
        f"## Curve ({len(curve.betas)} betas, `curve.csv`)",
        "",
        markdown_table(rows),
        "",
        "![Backdoor learning curve](curve.png)",
        "",
        f"Computed in {seconds:.1f} s.",
        "",
    ]
    report = "\n".join(lines)
    paths["report.md"] = atomic_write(out / "report.md", lambda f: f.write(report))
    return paths


def _slope_outputs(out, config, point, learner, data_params, data, curve, slope, seconds):
    row = {"learner": point["learner"], **learner.get_params(deep=False)}
    row.pop("warm_start", None)
    row.update(config.data)
    row.update(data_params)
    row["random_state"] = point["random_state"]
    row = {k: (str(tuple(v)) if isinstance(v, list | tuple) else v) for k, v in row.items()}
    values = {
        k: v
        for k, v in slope.to_dict().items()
        if k not in row and isinstance(v, numbers.Real) and not isinstance(v, bool)
    }
    row.update(values)
    frame = pd.DataFrame([row])
    paths = {"slope.csv": atomic_write(out / "slope.csv", lambda f: frame.to_csv(f, index=False))}
    paths["slope.png"] = save_figure(plot_taylor(curve, slope), out / "slope.png")
    taylor = slope.taylor(curve.betas)
    order = np.argsort(curve.betas)
    shown = order[np.linspace(0, len(order) - 1, min(len(order), 6)).round().astype(int)]
    table = pd.DataFrame(
        {
            "beta": curve.betas[shown],
            "exact L(V_t)": curve["backdoor_loss"][shown],
            "1st order": taylor["first"][shown],
            "2nd order": taylor["second"][shown],
        }
    )
    lines = [
        f"# Backdoor learning slope: {_describe(config, point, learner, data_params)}",
        "",
        _config_line(config),
        "",
        *_setting_lines(config, point, learner, data_params, data),
        "",
        "## Slope at beta = 0 (`slope.csv`)",
        "",
        f"- dL(V_t)/dbeta = {slope.derivative:.6g} (negative: the backdoor is being learned); "
        f"score = -(2/pi) arctan(derivative) = {slope.score:.4f}.",
        f"- d^2 L(V_t)/dbeta^2 = {slope.second_derivative:.6g}; L(V_t) of the clean model = "
        f"{slope.backdoor_loss:.6g}.",
        f"- Condition number of the factorized Hessian (or KKT matrix): "
        f"{slope.condition_number:.3g}.",
        "",
        "## Taylor predictions against the exact curve",
        "",
        markdown_table(table),
        "",
        "![Exact curve and its Taylor predictions](slope.png)",
        "",
        f"Computed in {seconds:.1f} s.",
        "",
    ]
    report = "\n".join(lines)
    paths["report.md"] = atomic_write(out / "report.md", lambda f: f.write(report))
    return paths


def run_single(
    command: str,
    out_dir,
    *,
    config=None,
    learner: str | None = None,
    params: Mapping | None = None,
    data: Mapping | None = None,
    betas: int = 21,
    progress: bool = False,
) -> dict:
    """Compute the curve or the slope of one learner on one data set and write its outputs.

    Parameters
    ----------
    command : {"curve", "slope"}
        What to compute (see the module docstring for the files of each).
    out_dir : str or path-like
        Output directory, created if missing; nothing is written anywhere else.
    config : str or path-like, optional
        A configuration file with ``[data]`` and ``[[learner]]`` tables (see
        :func:`single_setting`).
    learner : str, optional
        A learner kind, or a learner of ``config`` by name or kind.
    params : dict, optional
        Learner parameters over the file's (e.g. ``{"C": 1.0}``).
    data : dict, optional
        ``[data]`` keys over the file's (e.g. ``{"digits": [7, 1], "fraction": 0.1,
        "random_state": 0}``).
    betas : int, default=21
        Number of betas of the curve (:func:`~backdoor_curves.measures.results.default_betas`:
        0, then log-spaced from 0.01 to 1); for ``slope`` the curve drawn under the Taylor
        predictions.
    progress : bool, default=False
        Show a progress bar over the curve's re-fits (a learner without an exact path).

    Returns
    -------
    dict
        ``paths`` (file name -> Path), ``point`` (the grid point), ``setting`` (its
        description: learner, parameters, data set and data keys), ``learner``, ``data``
        (BackdoorData), ``curve`` (LearningCurve), ``slope`` (BackdoorSlope, None for
        ``curve``) and ``seconds`` (computation time).

    Raises
    ------
    ValueError
        For an unknown ``command``, ``betas`` below 2, an output path of the setting outside
        ``out_dir`` (:func:`~backdoor_curves.grid_run.outputs_inside`: a feature ``cache_dir``
        is taken relative to ``out_dir``), or any error of :func:`single_setting` — all before
        the data is loaded.
    OSError
        If ``config`` cannot be read or ``out_dir`` not written.
    """
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {list(COMMANDS)}, got {command!r}")
    if isinstance(betas, bool) or not isinstance(betas, int | np.integer) or betas < 2:
        raise ValueError(f"argument --betas: must be an int >= 2, got {betas!r}")
    parsed, point = single_setting(config=config, learner=learner, params=params, data=data)
    if not isinstance(out_dir, str | os.PathLike):
        raise TypeError(
            f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}"
        )
    inside = outputs_inside(parsed, out_dir)  # a feature cache_dir goes into out_dir
    if inside is not parsed:
        parsed, point = inside, grid_points(inside.param_grid, inside.random_state)[0]
    model, data_params = _split(parsed, point)
    out = output_dir(out_dir)
    start = time.perf_counter()
    dataset = parsed.data_factory()(**data_params, random_state=point["random_state"])
    curve = learning_curve(model, dataset, default_betas(int(betas)), progress=progress)
    slope = backdoor_slope(model, dataset) if command == "slope" else None
    seconds = time.perf_counter() - start
    if command == "curve":
        paths = _curve_outputs(out, parsed, point, model, data_params, dataset, curve, seconds)
    else:
        paths = _slope_outputs(
            out, parsed, point, model, data_params, dataset, curve, slope, seconds
        )
    return {
        "paths": paths,
        "point": point,
        "setting": _describe(parsed, point, model, data_params),
        "learner": model,
        "data": dataset,
        "curve": curve,
        "slope": slope,
        "seconds": seconds,
    }


def single_summary(command: str, result: dict, out) -> str:
    """What ``backdoor-curves curve`` / ``slope`` prints: the setting, the answer, the files.

    Parameters
    ----------
    command : {"curve", "slope"}
        The command that was run.
    result : dict
        From :func:`run_single`.
    out : str or path-like
        The output directory, named in the last line.

    Returns
    -------
    str
        Two lines, ending with a newline.
    """
    setting, curve = result["setting"], result["curve"]
    first, last = int(np.argmin(curve.betas)), int(np.argmax(curve.betas))
    if command == "curve":
        what = (
            f"backdoor loss {curve['backdoor_loss'][first]:.4g} -> "
            f"{curve['backdoor_loss'][last]:.4g}, backdoor accuracy at beta=1 "
            f"{curve['backdoor_accuracy'][last]:.3f}, clean accuracy "
            f"{curve['clean_accuracy'][last]:.3f}"
        )
    else:
        slope = result["slope"]
        what = f"derivative {slope.derivative:.6g}, score {slope.score:.4f}"
    files = ", ".join(sorted(result["paths"]))
    return f"{command} {setting}: {what}\n{len(result['paths'])} files -> {out} ({files})\n"
