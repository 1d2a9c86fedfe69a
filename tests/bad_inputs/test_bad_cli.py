"""Bad inputs of the command line: ``backdoor_curves.cli.main([...])`` in-process, and one run in
a subprocess. Each must exit non-zero with one error line on stderr naming the flag or the
configuration key, and no traceback (argparse's usage errors, status 2, print their usage block
before that line)."""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys

import pytest
from bad_input_catalogue import (
    Case,
    Edit,
    EntryPoint,
    check_cli,
    register,
    rename_in,
    set_in,
)

from backdoor_curves.cli import main

_COUNTER = itertools.count()
_CLI = "cli.py / grid_run.py"


def materialize(ctx, argv: list) -> list[str]:
    """The argv with each dict written to a TOML file and ``OUT`` replaced by a fresh folder."""
    out = []
    for item in argv:
        if isinstance(item, dict):
            item = ctx.config_file(f"cli{next(_COUNTER)}.toml", item)
        elif item == "OUT":
            item = str(ctx.tmp / f"out{next(_COUNTER)}")
        out.append(str(item))
    return out


def run_main(ctx, argv) -> int:
    return main(materialize(ctx, argv))


def run_subprocess(ctx, argv) -> int:
    """``python -m backdoor_curves ...``: its stderr is copied to ours (captured by capsys)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "backdoor_curves", *materialize(ctx, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    sys.stderr.write(proc.stderr)
    return proc.returncode


def flag(name: str, *values: str) -> Edit:
    """Set ``name``'s values in the argv (replacing them if present, else appending)."""

    def edit(argv):
        if name in argv:
            i = argv.index(name)
            j = i + 1
            while j < len(argv) and (not isinstance(argv[j], str) or not argv[j].startswith("--")):
                j += 1
            return [*argv[: i + 1], *values, *argv[j:]]
        return [*argv, name, *values]

    return Edit(edit)


def add(*items) -> Edit:
    return Edit(lambda argv: [*argv, *items])


# ---------------------------------------------------------------------------- curve / slope
SMALL = ["--n-train", "60", "--n-test", "20", "--betas", "3", "--no-progress", "--out", "OUT"]


def curve_argv(ctx):
    return [
        "curve",
        "--learner",
        "ridge",
        "--alpha",
        "1",
        "--digits",
        "7",
        "1",
        "--fraction",
        "0.1",
        "--size",
        "3",
        "--seed",
        "0",
        *SMALL,
    ]


def slope_argv(ctx):
    return ["slope", "--learner", "rbf_svm", "--C", "1", "--gamma", "0.01", "--size", "2", *SMALL]


def setting_doc(**data) -> dict:
    return {"data": {"n_train": 60, **data}, "learner": [{"kind": "ridge", "alpha": 1.0}]}


CURVE_CASES = [
    Case("fraction_bounds", "--fraction", flag("--fraction", "1.5"), label="above"),
    Case("fraction_bounds", "--fraction", flag("--fraction", "0"), label="0"),
    Case("fraction_bounds", "--fraction", flag("--fraction", "1"), label="1"),
    Case("nan", "--fraction", flag("--fraction", "nan")),
    Case("string", "--fraction", flag("--fraction", "abc"), error=2),
    Case("negative_param", "--alpha", flag("--alpha", "-1")),
    Case("nonfinite_param", "--alpha", flag("--alpha", "inf"), label="inf"),
    Case("nonfinite_param", "--alpha", flag("--alpha", "nan"), label="nan"),
    Case("string", "--alpha", flag("--alpha", "one"), error=2),
    Case("unknown_option", "--learner", flag("--learner", "svm")),
    Case("one_class", "--digits", flag("--digits", "7", "7")),
    Case("out_of_range", "--digits", flag("--digits", "7", "12")),
    Case("trigger_too_large", "--size", flag("--size", "29")),
    Case("negative_param", "--size", flag("--size", "-1")),
    Case("out_of_range", "--betas", flag("--betas", "1")),
    Case("unknown_option", "--trigger", flag("--trigger", "badnet")),
    Case("unknown_option", "--bogus", add("--bogus", "1"), error=2),
    Case("negative_param", "--seed", flag("--seed", "-1")),
    Case("out_of_range", "--n-train", flag("--n-train", "1")),
    Case("string", "--n-train", flag("--n-train", "many"), error=2),
    Case("negative_param", "--param", add("--param", "tol=-1"), names="tol"),
    Case("unknown_option", "--param", add("--param", "tool=1e-8"), names="tool"),
    Case(
        "bad_file",
        "--config",
        add("--config", "/nonexistent/setting.toml"),
        names="/nonexistent/setting.toml",
    ),
    Case("toml_misspelled_key", "data.fractoin", add("--config", setting_doc(fractoin=0.2))),
    Case(
        "toml_misspelled_key",
        "learner[0].tool",
        add("--config", {"learner": [{"kind": "ridge", "tool": 1e-8}]}),
    ),
    Case("toml_wrong_type", "data.split_seed", add("--config", setting_doc(split_seed="0"))),
]

SLOPE_CASES = [
    Case("negative_param", "--gamma", flag("--gamma", "-1")),
    Case("nonfinite_param", "--gamma", flag("--gamma", "nan")),
    Case("out_of_range", "--C", flag("--C", "0")),
    Case("nonfinite_param", "--C", flag("--C", "inf")),
    Case("fraction_bounds", "--fraction", add("--fraction", "1")),
    Case("trigger_too_large", "--size", flag("--size", "29")),
]


# ---------------------------------------------------------------------------- grid
def grid_doc() -> dict:
    return {
        "data": {"n_train": 60, "n_test": 20, "size": 2, "fraction": 0.1},
        "grid": {"fraction": [0.1, 0.2]},
        "learner": [{"kind": "ridge", "alpha": [1.0, 10.0]}],
    }


def grid_argv(ctx):
    return ["grid", grid_doc(), "--out", "OUT", "--no-progress", "--max-points", "1"]


_FLAG_NAME = (
    f"{_CLI}: the robust-region thresholds are checked by robust_region, whose error names the "
    "Python argument ({}) instead of the flag ({})"
)

GRID_CASES = [
    Case("toml_misspelled_key", "learner[0].aplha", rename_in((1, "learner", 0, "alpha"), "aplha")),
    Case("toml_misspelled_key", "data.fractoin", rename_in((1, "data", "fraction"), "fractoin")),
    Case("toml_wrong_type", "data.fraction", set_in((1, "data", "fraction"), "0.1")),
    Case("toml_wrong_type", "learner[0].alpha", set_in((1, "learner", 0, "alpha"), "one")),
    Case("nonfinite_param", "learner[0].alpha", set_in((1, "learner", 0, "alpha"), float("nan"))),
    Case("negative_param", "learner[0].alpha", set_in((1, "learner", 0, "alpha"), [1.0, -1.0])),
    Case("fraction_bounds", "grid.fraction", set_in((1, "grid", "fraction"), [0.1, 1.0])),
    Case("trigger_too_large", "data.size", set_in((1, "data", "size"), 29)),
    Case(
        "bad_file",
        "CONFIG.toml",
        set_in((1,), "/nonexistent/grid.toml"),
        names="/nonexistent/grid.toml",
    ),
    Case("out_of_range", "--max-points", flag("--max-points", "0"), error=2),
    Case("out_of_range", "--n-jobs", add("--n-jobs", "0"), error=2),
    Case("string", "--max-backdoor-accuracy", add("--max-backdoor-accuracy", "high"), error=2),
    Case(
        "out_of_range",
        "--max-backdoor-accuracy",
        add("--max-backdoor-accuracy", "1.5"),
        error=2,
    ),
    Case(
        "fraction_bounds",
        "--seed-share",
        add("--seed-share", "0"),
        error=2,
    ),
    Case(
        "unknown_option",
        "--where",
        add("--where", "gama=1"),
    ),
]


# ---------------------------------------------------------------------------- nn
def nn_doc() -> dict:
    return {
        "data": {"n_train": 100, "n_test": 20, "pool": 2, "size": 2},
        "model": {"kind": "small_cnn", "width": 2},
        "train": {"epochs": 1, "batch_size": 50},
        "curve": {"betas": [0.0, 1.0]},
    }


def nn_argv(ctx):
    return ["nn", nn_doc(), "--out", "OUT", "--quiet"]


NN_CASES = [
    Case("toml_misspelled_key", "train.epoch", rename_in((1, "train", "epochs"), "epoch")),
    Case("toml_misspelled_key", "model.widht", rename_in((1, "model", "width"), "widht")),
    Case("toml_wrong_type", "train.batch_size", set_in((1, "train", "batch_size"), "50")),
    Case("nonfinite_param", "train.lr", set_in((1, "train", "lr"), float("nan"))),
    Case("fraction_bounds", "data.fraction", set_in((1, "data", "fraction"), 1.0)),
    Case("trigger_too_large", "data.size", set_in((1, "data", "size"), 15)),
    Case("beta_range", "curve.betas", set_in((1, "curve", "betas"), [0.0, 1.5])),
    Case(
        "bad_file",
        "CONFIG.toml",
        set_in((1,), "/nonexistent/nn.toml"),
        names="/nonexistent/nn.toml",
    ),
]


class _Validated(Exception):
    """Raised by the stubs below once the command's setting is validated."""


def _validate_single(command, out_dir, *, config, learner, params, data, betas, progress):
    from backdoor_curves.single_run import single_setting

    single_setting(config=config, learner=learner, params=params, data=data)
    raise _Validated


def _validate_grid(config, out_dir, **kwargs):
    from backdoor_curves import load_config

    load_config(config)
    raise _Validated


def _validate_nn(config, out_dir, **kwargs):
    from backdoor_curves.nn.config import load_nn_config

    load_nn_config(config)
    raise _Validated


#: Baselines checked up to their validation (argv parsed, setting validated), not run: running
#: them costs seconds (the curve command is run in full, once); the subprocess is the same
#: command as the in-process curve.
BASELINE_STUBS = {
    "backdoor-curves slope": ("backdoor_curves.single_run", "run_single", _validate_single),
    "backdoor-curves grid": ("backdoor_curves.grid_run", "run_grid_config", _validate_grid),
    "backdoor-curves nn": ("backdoor_curves.nn_run", "run_nn_config", _validate_nn),
}


ENTRIES = [
    EntryPoint("backdoor-curves curve", curve_argv, run_main, CURVE_CASES, cli=True),
    EntryPoint("backdoor-curves slope", slope_argv, run_main, SLOPE_CASES, cli=True),
    EntryPoint("backdoor-curves grid", grid_argv, run_main, GRID_CASES, cli=True),
    EntryPoint("backdoor-curves nn", nn_argv, run_main, NN_CASES, cli=True),
    EntryPoint(
        "backdoor-curves (subprocess)",
        curve_argv,
        run_subprocess,
        [Case("fraction_bounds", "--fraction", flag("--fraction", "1.5"))],
        cli=True,
    ),
]
BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry, capsys, monkeypatch):
    """The valid command each case spoils runs (exit status 0), or passes its validation."""
    if entry.name == "backdoor-curves (subprocess)":
        pytest.skip("the same command as the in-process curve baseline")
    if entry.name in BASELINE_STUBS:
        if entry.name == "backdoor-curves nn":
            pytest.importorskip("torch")
        module, name, stub = BASELINE_STUBS[entry.name]
        monkeypatch.setattr(importlib.import_module(module), name, stub)
        with pytest.raises(_Validated):
            entry.call(ctx, entry.baseline(ctx))
        return
    status = entry.call(ctx, entry.baseline(ctx))
    assert status == 0, capsys.readouterr().err


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case, capsys):
    if entry.name == "backdoor-curves nn":
        pytest.importorskip("torch")
    check_cli(ctx, entry, case, capsys)
