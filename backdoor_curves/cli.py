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
    same ``--out`` resumes an interrupted study.

nn CONFIG.toml
    Run the neural-network study a TOML configuration describes
    (:func:`backdoor_curves.nn_run.run_nn_config`: learning curves at several epoch budgets,
    finite-difference slopes and the exact derivative, per-sample tracking) and write CSV
    tables, figures and ``report.md`` into ``--out`` (default ``nn_output``). ``--n-jobs``
    parallel trainings. Re-running with the same ``--out`` resumes from its ``checkpoints/``.
    Missing data files or pretrained weights stop it within seconds, naming them. Needs the
    ``torch`` extra.

``backdoor-curves --version`` prints the version. Bad arguments stop with argparse's usage
message and exit status 2; a failure while running (e.g. an unwritable output directory) prints
``backdoor-curves: error: ...`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._version import __version__

__all__ = ["main", "build_parser"]

PROG = "backdoor-curves"


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backdoor-curves``.

    Returns
    -------
    argparse.ArgumentParser
        With ``--version`` and the sub-commands ``demo``, ``grid`` and ``nn`` (required); the parsed
        namespace has ``command`` and the chosen command's options.
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
            "7 vs 1 poisoned with a 3x3 BadNets patch (10%% of the training set). Writes "
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
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = os.path.join(args.out, "checkpoints")
        message = f"interrupted (finished epochs are kept in {kept}; re-run to resume)"
        print(f"{PROG}: {message}", file=sys.stderr)
        return 130
    if not quiet:
        files = sorted(name for name in paths if name != "checkpoints")
        print(f"{len(files)} files -> {args.out} ({', '.join(files)})")
    return 0


def _run_grid(args) -> int:
    from .grid_run import run_grid_config  # imported here: keeps --version and --help fast

    try:
        result = run_grid_config(
            args.config,
            args.out,
            n_jobs=args.n_jobs,
            scheduler=args.scheduler,
            progress=not args.no_progress,
        )
    except (OSError, ValueError, ImportError, TypeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (finished points are kept; re-run to resume)", file=sys.stderr)
        return 130
    table, best = result["table"], result["region"].recommended
    failed = int((table["error"] != "").sum())
    print(f"{len(table)} grid points ({failed} failed) -> {args.out}")
    if best is not None:
        print(
            f"recommended: {best['learner']} lambda={best['lambda']:.4g} "
            f"(clean accuracy {best['clean_accuracy']:.3f}, "
            f"backdoor accuracy {best['backdoor_accuracy']:.3f})"
        )
    return 0


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
        (Ctrl-C).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 1
    if args.command == "grid":
        return _run_grid(args)
    if args.command == "nn":
        return _run_nn(args)
    if args.command == "demo":
        from .demo import run_demo  # imported here: keeps --version and --help fast

        if os.path.exists(args.out) and not os.path.isdir(args.out):
            print(
                f"{PROG}: error: --out {args.out!r} exists and is not a directory", file=sys.stderr
            )
            return 1
        try:
            run_demo(args.out, progress=not args.no_progress, n_jobs=args.n_jobs)
        except OSError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse prevents it
    return 2  # pragma: no cover
