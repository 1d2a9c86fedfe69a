"""Command-line interface: ``backdoor-curves <command> [options]``.

Commands
--------
demo
    Run the MNIST 7 vs 1 demo (:func:`backdoor_curves.demo.run_demo`) and write its figures,
    CSV tables and Markdown report into ``--out`` (default ``demo_output``).

grid CONFIG.toml
    Run the grid study a TOML configuration describes
    (:func:`backdoor_curves.grid_run.run_grid_config`) and write ``table.csv``, the resumable
    store ``study.sqlite``, figures and ``report.md`` into ``--out`` (default ``grid_output``).
    ``--n-jobs`` workers, or a Dask cluster with ``--scheduler ADDRESS``. Re-running with the
    same ``--out`` resumes an interrupted study. ``--max-points N`` and ``--where KEY=VALUE``
    run part of the grid; ``--max-backdoor-accuracy``, ``--min-clean-accuracy``,
    ``--clean-drop`` and ``--seed-share`` set the robust region's thresholds. The configuration
    is validated completely before any point runs; a study whose every point failed exits
    with status 1.

curve / slope
    One learner on one data set (:func:`backdoor_curves.single_run.run_single`): the learning
    curve, or the slope at beta = 0 with its Taylor predictions, from flags (``--learner logistic
    --C 1 --digits 7 1 --fraction 0.1 --size 3 --seed 0``), a ``--config FILE`` with the grid
    study's ``[data]`` and ``[[learner]]`` tables, or both (flags win). Writes the figure, a CSV
    and ``report.md`` into ``--out`` (default ``curve_output`` / ``slope_output``); ``--betas N``
    betas on the curve.

nn CONFIG.toml
    Run the neural-network study a TOML configuration describes
    (:func:`backdoor_curves.nn_run.run_nn_config`: learning curves at several epoch budgets,
    finite-difference slopes and the exact derivative, per-sample tracking) and write CSV
    tables, figures and ``report.md`` into ``--out`` (default ``nn_output``). ``--n-jobs``
    parallel trainings. Re-running with the same ``--out`` resumes from its ``checkpoints/``.
    Missing data files or pretrained weights stop it within seconds, naming them. Needs the
    ``torch`` extra.

``backdoor-curves --version`` prints the version. Bad arguments stop with argparse's usage
message and exit status 2; a failure while running (an invalid configuration, an unwritable
output directory, a grid whose every point failed) prints one line ``backdoor-curves: error:
...`` on stderr, no traceback, and exits with status 1.

Ctrl-C stops any command cleanly: its joblib worker processes are stopped (its tasks on a Dask
cluster, ``--scheduler``, cancelled); what it finished is kept (``grid``: every finished point
in the store; ``nn``: every training's checkpoint after its last finished epoch, and the
finished results; ``demo``, ``curve`` and ``slope`` keep nothing partial); no file is left
half-written (every output is written to a temporary file, then renamed, and an interrupt waits
for a write in progress); it prints one line on stderr, e.g. ``backdoor-curves: interrupted: 12
of 40 grid points are kept in out/study.sqlite; to resume, run: backdoor-curves grid study.toml
--out out``, with no traceback, and exits with status 130. Further presses while it stops are
ignored for :data:`STOP_GRACE` seconds (a stop takes about a second), then interrupt the stop
itself.

Every command writes only into its ``--out`` directory: a configuration value that names a
place to write (a grid study's feature ``cache_dir``) is taken relative to ``--out`` and
refused, naming its key, when it leads outside it; places to read from (data roots, weights)
may be anywhere. Caches of the environment are not outputs and stay where their tools put
them: Python's bytecode and numba's compiled SVM step (``cache=True``: next to the package's
modules, or in ``NUMBA_CACHE_DIR`` when set), matplotlib's font cache (``MPLCONFIGDIR``),
torchvision's weights (``TORCH_HOME``, read only: nothing is downloaded unless a configuration
says ``download = true``, which writes into the data root).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
import time

from ._version import __version__
from .attacks.triggers import TRIGGERS
from .learners import LEARNER_KINDS

__all__ = ["main", "build_parser"]

PROG = "backdoor-curves"
#: Seconds after a first Ctrl-C during which further presses are ignored, so that the command
#: can stop its workers and close its files; a press after that interrupts the stop itself.
STOP_GRACE = 10.0
#: What each command keeps when interrupted before its run reports anything more precise.
_KEEPS_NOTHING = {
    "grid": "it stopped before computing anything",
    "nn": "it stopped before computing anything",
    "demo": "the demo keeps no partial results",
    "curve": "curve keeps no partial results",
    "slope": "slope keeps no partial results",
}


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-zero integer (1 = serial, -1 = all CPUs), got {text!r}"
        ) from None
    if value == 0:
        raise argparse.ArgumentTypeError(
            "expected a non-zero integer (1 = serial, -1 = all CPUs), got 0"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _share(text: str, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        span = "(0, 1]" if low_open else "[0, 1]"
        raise argparse.ArgumentTypeError(f"expected a number in {span}, got {value:g}")
    return value


def _seed_share(text: str) -> float:
    return _share(text, low_open=True)


def _param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, int, float, bool or str value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    value = value.strip()
    for convert in (int, float):
        try:
            return key.strip(), convert(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return key.strip(), value.lower() == "true"
    return key.strip(), value


def _add_single(commands, name: str, help_text: str, description: str) -> None:
    """The ``curve`` / ``slope`` sub-command: setting flags, --config, --betas, --out."""
    single = commands.add_parser(name, help=help_text, description=description)
    single.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML file with [data] and [[learner]] tables (the grid study's format); the "
        "flags below override its values",
    )
    single.add_argument(
        "--learner",
        metavar="KIND",
        help=f"learner kind ({', '.join(LEARNER_KINDS)}) or, with --config, a learner's name "
        "or kind in it",
    )
    learner = single.add_argument_group("learner parameters")
    for flag in ("C", "alpha", "gamma"):
        learner.add_argument(f"--{flag}", type=float, metavar="X", help=f"the learner's {flag}")
    learner.add_argument(
        "--param",
        metavar="KEY=VALUE",
        type=_param,
        action="append",
        default=[],
        help="any other learner parameter (repeatable), e.g. --param tol=1e-8",
    )
    data = single.add_argument_group(
        "data (the [data] keys; default: MNIST 7 vs 1, 10% BadNets 3x3, poisoning seed 0)"
    )
    data.add_argument("--dataset", metavar="NAME", help="data set (default: mnist)")
    data.add_argument("--digits", type=int, nargs=2, metavar=("A", "B"), help="two MNIST digits")
    data.add_argument(
        "--trigger",
        metavar="NAME",
        help=f"trigger: {', '.join(TRIGGERS)} (other parameters than --size and --intensity: "
        "in the --config file's [data] table)",
    )
    data.add_argument("--size", type=int, metavar="N", help="BadNets patch side in pixels")
    data.add_argument("--intensity", type=float, metavar="X", help="invisible-grid brightness")
    data.add_argument("--fraction", type=float, metavar="P", help="poisoned fraction in (0, 1)")
    data.add_argument("--n-train", type=int, metavar="N", help="first N training points")
    data.add_argument("--n-test", type=int, metavar="N", help="first N test points")
    data.add_argument("--seed", type=int, metavar="N", help="poisoning seed (random_state)")
    single.add_argument(
        "--betas",
        type=int,
        metavar="N",
        default=21,
        help="betas on the curve: 0, then N-1 log-spaced from 0.01 to 1 (default: %(default)s)",
    )
    single.add_argument(
        "--no-progress",
        action="store_true",
        help="do not show a progress bar on stderr (only re-fits have one)",
    )
    single.add_argument(
        "--out",
        metavar="DIR",
        default=f"{name}_output",
        help="output directory, created if missing (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backdoor-curves``.

    Returns
    -------
    argparse.ArgumentParser
        With ``--version`` and the sub-commands ``demo``, ``grid``, ``curve``, ``slope`` and
        ``nn`` (required); the parsed namespace has ``command`` and the chosen command's options.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Exact backdoor learning curves, slopes and parameter deviation.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the MNIST 7 vs 1 demo and write figures, tables and a report",
        description=(
            "Backdoor learning curves, slopes and parameter deviation of four learners on MNIST "
            "7 vs 1 poisoned with a 3x3 BadNets patch (10% of the training set). Writes "
            "curves.png, slope_vs_accuracy.png, accuracy_vs_regularization.png, deviation.png, "
            "curves.csv, grid.csv and report.md into the output directory."
        ),
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="demo_output",
        help="output directory, created if missing (default: %(default)s)",
    )
    demo.add_argument(
        "--n-jobs",
        metavar="N",
        type=_n_jobs,
        default=1,
        help="parallel workers for the independent units of work; -1 = all CPUs "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--no-progress", action="store_true", help="do not show the progress bar on stderr"
    )
    grid = commands.add_parser(
        "grid",
        help="run a hyperparameter grid study from a TOML configuration",
        description=(
            "Slope, accuracies and losses for every point of the grid a TOML configuration "
            "names (see experiments/README.md). Writes table.csv, the resumable store "
            "study.sqlite, figures and report.md into the output directory; re-running with "
            "the same output directory resumes the study."
        ),
    )
    grid.add_argument("config", metavar="CONFIG.toml", help="the study's configuration file")
    grid.add_argument(
        "--out",
        metavar="DIR",
        default="grid_output",
        help="output directory (default: %(default)s)",
    )
    grid.add_argument(
        "--n-jobs",
        metavar="N",
        type=_n_jobs,
        default=1,
        help="parallel workers; -1 = all CPUs (default: %(default)s)",
    )
    grid.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the points on this Dask scheduler (e.g. tcp://host:8786)",
    )
    grid.add_argument(
        "--no-progress", action="store_true", help="do not show the progress bar on stderr"
    )
    grid.add_argument(
        "--recompute-changed",
        action="store_true",
        help="when the store holds points of a data set or learner that changed since (an "
        "edited data factory, another default), recompute them instead of refusing",
    )
    part = grid.add_argument_group(
        "part of the grid (kept in a store of its own, study-part-<hash>.sqlite)"
    )
    part.add_argument(
        "--max-points",
        metavar="N",
        type=_positive_int,
        help="run only the first N points (in grid order, after --where)",
    )
    part.add_argument(
        "--where",
        metavar="KEY=VALUE",
        action="append",
        help="run only the points whose KEY (learner, C, gamma, fraction, random_state, ...) "
        "equals VALUE; repeatable (a key given twice matches either value)",
    )
    robust = grid.add_argument_group("robust region thresholds")
    robust.add_argument(
        "--max-backdoor-accuracy",
        metavar="X",
        type=_share,
        help="a point holds when its backdoor accuracy at beta = 1 is at most X (default 0.1)",
    )
    robust.add_argument(
        "--min-clean-accuracy",
        metavar="X",
        type=_share,
        help="... and its clean accuracy is at least X",
    )
    robust.add_argument(
        "--clean-drop",
        metavar="X",
        type=_share,
        help="... and its clean accuracy is within X of the learner's best (default 0.02 when "
        "--min-clean-accuracy is not given)",
    )
    robust.add_argument(
        "--seed-share",
        metavar="X",
        type=_seed_share,
        help="a setting is robust when it holds for at least this share of its seeds "
        "(default 1: every seed)",
    )
    _add_single(
        commands,
        "curve",
        "the backdoor learning curve of one learner on one data set",
        "The backdoor learning curve (backdoor loss, attack success, clean accuracy, parameter "
        "deviation against beta) of one learner on one poisoned data set. Writes curve.png, "
        "curve.csv and report.md into the output directory.",
    )
    _add_single(
        commands,
        "slope",
        "the backdoor learning slope of one learner on one data set",
        "The backdoor learning slope at beta = 0 (derivative, score, second derivative, "
        "condition number) of one learner on one poisoned data set, with its Taylor "
        "predictions drawn over the exact curve. Writes slope.png, slope.csv and report.md "
        "into the output directory.",
    )
    nn = commands.add_parser(
        "nn",
        help="run a neural-network study (curves, slopes, tracking) from a TOML configuration",
        description=(
            "Backdoor learning curves, finite-difference slopes, the exact derivative of the "
            "training run and per-sample tracking (isolation precision, loss-reduction "
            "decomposition, synchronization, self-influence) of the torch models a TOML "
            "configuration names (see experiments/README.md). Writes CSV tables, figures and "
            "report.md into the output directory; re-running with the same output directory "
            "resumes from its checkpoints. Needs the torch extra."
        ),
    )
    nn.add_argument("config", metavar="CONFIG.toml", help="the study's configuration file")
    nn.add_argument(
        "--out",
        metavar="DIR",
        default="nn_output",
        help="output directory (default: %(default)s)",
    )
    nn.add_argument(
        "--n-jobs",
        metavar="N",
        type=_n_jobs,
        default=1,
        help="parallel trainings; -1 = all CPUs (default: %(default)s)",
    )
    nn.add_argument(
        "--no-progress", action="store_true", help="do not show the progress bar on stderr"
    )
    nn.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar and no summary on stdout"
    )
    return parser


def _run_nn(args) -> int:
    from .nn_run import run_nn_config  # imported here: keeps --help fast and torch unloaded

    quiet = args.quiet
    try:
        paths = run_nn_config(
            args.config, args.out, n_jobs=args.n_jobs, progress=not (args.no_progress or quiet)
        )
    except (OSError, ValueError, ImportError, TypeError) as exc:
        return _error(exc)
    if not quiet:
        files = sorted(name for name in paths if name != "checkpoints")
        print(f"{len(files)} files -> {args.out} ({', '.join(files)})")
    return 0


def _error(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr (its type named unless it is an argument, data or
    environment error); exit status 1."""
    text = str(exc)
    if not isinstance(exc, OSError | ValueError | TypeError | ImportError):
        text = f"{type(exc).__name__}: {text}"
    print(f"{PROG}: error: {' '.join(text.split())}", file=sys.stderr)
    return 1


def _run_grid(args) -> int:
    from .grid_run import run_grid_config  # imported here: keeps --version and --help fast
    from .viz.report import failure_lines, grid_console_summary, setting_parameters

    criteria = {
        "min_clean_accuracy": args.min_clean_accuracy,
        "max_backdoor_accuracy": args.max_backdoor_accuracy,
        "clean_drop": args.clean_drop,
        "seed_share": args.seed_share,
    }
    try:
        result = run_grid_config(
            args.config,
            args.out,
            n_jobs=args.n_jobs,
            scheduler=args.scheduler,
            progress=not args.no_progress,
            max_points=args.max_points,
            where=args.where,
            criteria=criteria,
            recompute_changed=args.recompute_changed,
        )
    except (OSError, ValueError, ImportError, TypeError) as exc:
        if str(exc).startswith("where"):  # select_points names its argument: say the flag
            return _error(type(exc)("argument --" + str(exc)))
        return _error(exc)
    table = result["table"]
    print(
        grid_console_summary(
            table,
            result["region"],
            args.out,
            seconds=result["seconds"],
            resumed=result["resumed"],
            n_total=result["n_total"],
        ),
        end="",
    )
    for name, why in result["figure_errors"].items():
        print(f"{PROG}: warning: {name} could not be drawn: {why}", file=sys.stderr)
    if len(table) and result["n_failed"] == len(table):
        first = failure_lines(table, setting_parameters(table))[0]
        print(
            f"{PROG}: error: all {len(table)} grid points failed (first: {first}); "
            f"see {result['paths']['report.md']}",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_single(args) -> int:
    from .single_run import run_single, single_summary  # imported here: keeps --help fast

    params = {k: getattr(args, k) for k in ("C", "alpha", "gamma") if getattr(args, k) is not None}
    params.update(dict(args.param))
    flags = {
        "dataset": args.dataset,
        "digits": None if args.digits is None else list(args.digits),
        "trigger": args.trigger,
        "size": args.size,
        "intensity": args.intensity,
        "fraction": args.fraction,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "random_state": args.seed,
    }
    data = {k: v for k, v in flags.items() if v is not None}
    try:
        result = run_single(
            args.command,
            args.out,
            config=args.config,
            learner=args.learner,
            params=params,
            data=data,
            betas=args.betas,
            progress=not args.no_progress,
        )
    except (OSError, ValueError, ImportError, TypeError, ArithmeticError) as exc:
        return _error(exc)
    print(single_summary(args.command, result, args.out), end="")
    return 0


class _CtrlC:
    """SIGINT handler of a command: the first Ctrl-C raises KeyboardInterrupt; more presses
    within :data:`STOP_GRACE` seconds are ignored while the command stops, later ones raise."""

    def __init__(self):
        self.first: float | None = None

    def __call__(self, signum, frame):
        now = time.monotonic()
        if self.first is not None and now - self.first < STOP_GRACE:
            return
        self.first = now
        raise KeyboardInterrupt


@contextlib.contextmanager
def _ctrl_c(keep: bool):
    """Install :class:`_CtrlC` for the block (main thread only); restore the previous handler
    afterwards unless ``keep`` (the process exits next: a press during its exit is ignored
    too)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _CtrlC())
    try:
        yield
    finally:
        if not keep:
            signal.signal(signal.SIGINT, previous)


def _command_line(argv: list[str] | None) -> str:
    """The command line that runs this command again (and resumes it), shell-quoted."""
    if argv is not None:
        return shlex.join([PROG, *argv])
    if os.path.basename(sys.argv[0]) == "__main__.py":  # python -m backdoor_curves ...
        return shlex.join(sys.orig_argv)  # the interpreter and its options as given
    program = PROG if os.path.basename(sys.argv[0]) == PROG else sys.argv[0]
    return shlex.join([program, *sys.argv[1:]])


def _interrupted(command: str, exc: KeyboardInterrupt, command_line: str) -> int:
    """Print the one line of an interrupted command (what it kept, how to resume); 130."""
    kept = getattr(exc, "kept", None) or _KEEPS_NOTHING[command]
    again = "resume" if command in ("grid", "nn") else "run it again"
    print(f"{PROG}: interrupted: {kept}; to {again}, run: {command_line}", file=sys.stderr)
    return 130


def _run_demo(args) -> int:
    from .demo import run_demo  # imported here: keeps --version and --help fast

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"{PROG}: error: --out {args.out!r} exists and is not a directory", file=sys.stderr)
        return 1
    try:
        run_demo(args.out, progress=not args.no_progress, n_jobs=args.n_jobs)
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {
    "grid": _run_grid,
    "curve": _run_single,
    "slope": _run_single,
    "nn": _run_nn,
    "demo": _run_demo,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status; errors are printed, not raised.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 on success (``--help`` and ``--version`` included), 1 on a failure while running
        (printed as ``backdoor-curves: error: ...``), 2 on a usage error, 130 when interrupted
        (Ctrl-C; printed as ``backdoor-curves: interrupted: <what was kept>; to resume, run:
        <this command line>``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 1
    run = _COMMANDS.get(args.command)
    if run is None:  # pragma: no cover - argparse prevents it
        parser.error(f"unknown command {args.command!r}")
        return 2
    command_line = _command_line(argv)
    try:
        with _ctrl_c(keep=argv is None):
            return run(args)
    except KeyboardInterrupt as exc:
        return _interrupted(args.command, exc, command_line)
