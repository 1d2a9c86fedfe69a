"""Ctrl-C and files (issue #12, item 5): a command stops cleanly and resumes; its files are
whole, inside ``--out``, and load without pickle.

The grid and nn commands run for real in a subprocess (``python -m backdoor_curves``, a session of
their own). Once they have finished some work (a point in the store, a training's checkpoint), the
whole process group gets SIGINT, as a terminal's Ctrl-C does (joblib's workers get it too). Then:
exit status 130, one line on stderr (what was kept, the exact command line to resume), no
traceback, no partial or temporary file, no worker process left; the printed command, re-run,
computes only what is missing, and its tables equal an uninterrupted run's (but for wall times).
The other tests check the pieces in process: the message of every command, the SIGINT handler,
the atomic write that holds Ctrl-C until its file is in place; then the output paths a
configuration names, and the pickle-free records of finished results.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backdoor_curves as bc
from backdoor_curves import cli
from backdoor_curves._io import Interrupted, atomic_write, output_path, read_record, write_record
from backdoor_curves.cli import main

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process groups and /proc: Linux"
)

GRID_CONFIG = """
[data]
n_train = 120
n_test = 60
size = 3

[grid]
random_state = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]

[[learner]]
kind = "logistic"
C = [0.1, 1.0]
"""
N_GRID = 40

NN_CONFIG = """
[data]
n_train = 120
n_test = 60
pool = 2
size = 3
fraction = 0.1

[model]
kind = "small_cnn"
width = 2

[train]
epochs = [1, 2]
batch_size = 40
lr = 0.05

[curve]
betas = [0.0, 1.0]

[slope]
h = [1.0]
exact = true
"""
NN_TABLES = ("curves", "slopes", "exact", "summary")


def listing(path: Path) -> set[str]:
    """Every file and folder under ``path``, relative to it."""
    return {
        os.path.relpath(os.path.join(root, name), path)
        for root, dirs, files in os.walk(path)
        for name in dirs + files
    }


def leftovers(path: Path) -> set[str]:
    """Temporary or partial files: atomic writes' ``.<name>.<random>.tmp``, SQLite's journals."""
    return {
        name
        for name in listing(path)
        if Path(name).name.startswith(".") or name.endswith((".tmp", "-wal", "-shm", "-journal"))
    }


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """``python -m backdoor_curves ARGS`` in a session of its own (its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "backdoor_curves", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def ctrl_c_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> tuple[str, str]:
    """Send SIGINT to ``proc``'s process group as soon as ``ready()``; (stdout, stderr)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate(timeout=60) if proc.poll() is not None else ("", "")
                pytest.fail(f"the command ended or hung before any work was kept: {err}")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the test fails
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:
            members.append((int(entry), fields[0]))
    return members


def assert_workers_gone(pgid: int, timeout: float = 10.0) -> None:
    """Every process of the command's group has exited (zombies waiting to be reaped by init,
    the parent being gone, have exited too)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [(pid, state) for pid, state in group_members(pgid) if state != "Z"]
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes left running: {alive}"
        time.sleep(0.1)


def one_line(err: str, pattern: str) -> re.Match:
    """The one line an interrupted command prints on stderr, matched against ``pattern``."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    found = re.fullmatch(pattern, lines[0])
    assert found, lines[0]
    return found


def command_of(args: list[str]) -> str:
    return shlex.join([sys.executable, "-m", "backdoor_curves", *args])


def rerun(command: str) -> int:
    """Run the printed command line in this process (its arguments after ``-m backdoor_curves``)."""
    words = shlex.split(command)
    assert words[:3] == [sys.executable, "-m", "backdoor_curves"]
    return main(words[3:])


def stored_points(store: Path) -> int:
    """Points in the store. A read-write connection that only reads: closed last, it folds
    SQLite's log back into the file (a read-only one would leave ``-wal`` / ``-shm`` behind)."""
    if not store.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(store)) as db:
            return int(db.execute("SELECT COUNT(*) FROM points").fetchone()[0])
    except sqlite3.Error:  # the schema is being created
        return 0


def finished_rows(store: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an unfinished study warns
        return bc.read_study(store)


# ---------------------------------------------------------------------------- grid, for real
def interrupted_grid(tmp_path: Path, n_jobs: int) -> tuple[list[str], int, str]:
    """The grid command interrupted once it has stored a point: (args, points kept, command)."""
    (tmp_path / "grid.toml").write_text(GRID_CONFIG)
    args = ["grid", "grid.toml", "--out", "out", "--no-progress", "--n-jobs", str(n_jobs)]
    store = tmp_path / "out" / "study.sqlite"
    proc = start(args, tmp_path)
    out, err = ctrl_c_when(proc, lambda: stored_points(store) >= 1)
    assert proc.returncode == 130 and out == ""
    line = one_line(
        err,
        r"backdoor-curves: interrupted: (\d+) of 40 grid points are kept in (\S+); "
        r"to resume, run: (.+)",
    )
    kept, where, command = int(line[1]), line[2], line[3]
    assert where == os.path.join("out", "study.sqlite") and command == command_of(args)
    assert 1 <= kept < N_GRID and stored_points(store) == kept
    assert_workers_gone(proc.pid)
    assert listing(tmp_path) == {"grid.toml", "out", "out/study.sqlite"}  # no table, no tmp
    return args, kept, command


@linux_only
def test_grid_ctrl_c_keeps_finished_points_and_resumes(tmp_path, monkeypatch, capsys):
    args, kept, command = interrupted_grid(tmp_path, n_jobs=1)
    store = tmp_path / "out" / "study.sqlite"
    before = finished_rows(store)
    assert len(before) == kept
    wal = Path(f"{store}-wal")  # made by that read-only read (not the command's), empty
    assert not wal.exists() or wal.stat().st_size == 0
    wal.unlink(missing_ok=True)
    Path(f"{store}-shm").unlink(missing_ok=True)

    monkeypatch.chdir(tmp_path)
    assert rerun(command) == 0
    assert f"(resumed: {kept} points were in the store)" in capsys.readouterr().out
    assert not leftovers(tmp_path)
    assert {p.split("/")[0] for p in listing(tmp_path)} == {"grid.toml", "out"}
    after = finished_rows(store)  # (read-only: SQLite may leave its -wal / -shm files now)
    assert len(after) == N_GRID
    # the kept points were read back, not recomputed: the same wall times, to the bit
    assert after.loc[before.index, "seconds"].tolist() == before["seconds"].tolist()
    uninterrupted = bc.load_config(tmp_path / "grid.toml").run()
    pd.testing.assert_frame_equal(
        after.drop(columns="seconds").reset_index(drop=True),
        uninterrupted.drop(columns="seconds"),
        check_exact=True,
    )
    flat = io.StringIO(uninterrupted.to_csv(index=False))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "out" / "table.csv").drop(columns="seconds"),
        pd.read_csv(flat).drop(columns="seconds"),
        check_exact=True,
    )


@linux_only
def test_grid_ctrl_c_stops_the_joblib_workers(tmp_path):
    """With --n-jobs 2 the loky workers get the Ctrl-C too; none is left running, and the
    store keeps the points they finished (resuming is the test above's)."""
    interrupted_grid(tmp_path, n_jobs=2)


# ---------------------------------------------------------------------------- nn, for real
@linux_only
def test_nn_ctrl_c_keeps_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    (tmp_path / "nn.toml").write_text(NN_CONFIG)
    args = ["nn", "nn.toml", "--out", "out", "--no-progress"]
    checkpoints = tmp_path / "out" / "checkpoints"
    proc = start(args, tmp_path)
    # interrupted once the 1-epoch budget is done (its exact derivative stored), during the
    # 2-epoch one: resuming reads a finished result back and continues the trainings
    out, err = ctrl_c_when(proc, lambda: any(checkpoints.rglob("*.npz")))
    assert proc.returncode == 130 and out == ""
    line = one_line(
        err,
        r"backdoor-curves: interrupted: (\d+) training checkpoint\(s\) \(each up to its last "
        r"finished epoch\) and (\d+) finished result\(s\) are kept in (\S+); to resume, run: (.+)",
    )
    assert line[3] == os.path.join("out", "checkpoints") and line[4] == command_of(args)
    kept = {
        str(p.relative_to(checkpoints)): p.stat().st_mtime_ns
        for p in checkpoints.rglob("*")
        if p.is_file()
    }
    trainings = [k for k in kept if k.endswith("checkpoint.pt")]
    results = [k for k in kept if k.endswith(".npz")]
    assert (int(line[1]), int(line[2])) == (len(trainings), len(results)) and trainings
    assert set(kept) == {*trainings, *results}  # nothing else: no table yet, no tmp file
    assert "small_cnn/default/epochs=1/exact/seed=0.npz" in results
    assert_workers_gone(proc.pid)
    assert {p.split("/")[0] for p in listing(tmp_path)} == {"nn.toml", "out"}
    assert {p for p in listing(tmp_path / "out") if "/" not in p} == {"checkpoints"}

    monkeypatch.chdir(tmp_path)
    assert rerun(line[4]) == 0
    capsys.readouterr()
    for name, stamp in kept.items():  # finished trainings and results read back, not redone
        if "epochs=1" in name:
            assert (checkpoints / name).stat().st_mtime_ns == stamp, name
    assert main(["nn", "nn.toml", "--out", "uninterrupted", "--quiet"]) == 0
    for name in NN_TABLES:
        resumed = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        fresh = pd.read_csv(tmp_path / "uninterrupted" / f"{name}.csv")
        if "seconds" in fresh:  # wall times: the only numbers that differ between runs
            resumed, fresh = resumed.drop(columns="seconds"), fresh.drop(columns="seconds")
        pd.testing.assert_frame_equal(resumed, fresh, check_exact=True, obj=name)
    assert not leftovers(tmp_path)
    assert {p.split("/")[0] for p in listing(tmp_path)} == {"nn.toml", "out", "uninterrupted"}


# ---------------------------------------------------------------------------- in process
@pytest.mark.parametrize(
    ("argv", "target", "raised", "expected"),
    [
        (["grid", "g.toml", "--out", "o"], "backdoor_curves.grid_run.run_grid_config",
         Interrupted("3 of 8 grid points are kept in o/study.sqlite"),
         "3 of 8 grid points are kept in o/study.sqlite; to resume"),
        (["grid", "g.toml", "--out", "o"], "backdoor_curves.grid_run.run_grid_config",
         KeyboardInterrupt(), "it stopped before computing anything; to resume"),
        (["nn", "n.toml", "--out", "o"], "backdoor_curves.nn_run.run_nn_config",
         Interrupted("1 training checkpoint(s) ..."), "1 training checkpoint(s) ...; to resume"),
        (["curve", "--learner", "ridge", "--out", "o"], "backdoor_curves.single_run.run_single",
         KeyboardInterrupt(), "curve keeps no partial results; to run it again"),
        (["slope", "--learner", "ridge", "--out", "o"], "backdoor_curves.single_run.run_single",
         KeyboardInterrupt(), "slope keeps no partial results; to run it again"),
        (["demo", "--out", "o"], "backdoor_curves.demo.run_demo",
         KeyboardInterrupt(), "the demo keeps no partial results; to run it again"),
    ],
    ids=["grid", "grid-before-work", "nn", "curve", "slope", "demo"],
)  # fmt: skip
def test_every_command_prints_one_line_and_exits_130(
    argv, target, raised, expected, monkeypatch, capsys
):
    def interrupted(*args, **kwargs):
        raise raised

    monkeypatch.setattr(target, interrupted)
    handler = signal.getsignal(signal.SIGINT)
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"backdoor-curves: interrupted: {expected}, run: {shlex.join(['backdoor-curves', *argv])}\n"
    )
    assert signal.getsignal(signal.SIGINT) is handler  # restored for a caller in Python


def test_command_line_to_resume(monkeypatch):
    assert cli._command_line(["grid", "my study.toml", "--out", "o"]) == (
        "backdoor-curves grid 'my study.toml' --out o"
    )
    monkeypatch.setattr(sys, "argv", ["/venv/bin/backdoor-curves", "nn", "c.toml"])
    assert cli._command_line(None) == "backdoor-curves nn c.toml"
    monkeypatch.setattr(sys, "argv", ["/opt/bin/bc-wrapper", "nn", "c.toml"])
    assert cli._command_line(None) == "/opt/bin/bc-wrapper nn c.toml"
    main_py = str(Path(cli.__file__).with_name("__main__.py"))
    monkeypatch.setattr(sys, "argv", [main_py, "demo"])
    monkeypatch.setattr(sys, "orig_argv", ["/usr/bin/python3", "-m", "backdoor_curves", "demo"])
    assert cli._command_line(None) == "/usr/bin/python3 -m backdoor_curves demo"


def test_a_second_ctrl_c_while_stopping_is_ignored(monkeypatch):
    clock = iter([100.0, 101.0, 100.0 + cli.STOP_GRACE + 1])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    handler = cli._CtrlC()
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)
    assert handler(signal.SIGINT, None) is None  # within the grace period: the stop goes on
    with pytest.raises(KeyboardInterrupt):  # later: it interrupts the stop itself
        handler(signal.SIGINT, None)


def test_ctrl_c_during_an_atomic_write_waits_for_the_file(tmp_path):
    def write(f):
        f.write("first half, ")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
        time.sleep(0.05)  # the signal arrives here, and is held
        f.write("second half\n")

    # Python's own handler, which it installs at startup unless SIGINT is ignored: a job
    # started in the background by a non-interactive shell (`make test &`) inherits it ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic_write(tmp_path / "table.csv", write)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / "table.csv").read_text() == "first half, second half\n"
    assert os.listdir(tmp_path) == ["table.csv"]


def test_interrupted_is_a_keyboard_interrupt_that_says_what_was_kept():
    exc = Interrupted("2 of 4 grid points are kept in s.sqlite")
    assert isinstance(exc, KeyboardInterrupt) and exc.kept == str(exc)


def test_run_grid_config_raises_interrupted_with_the_count(tmp_path, monkeypatch):
    """Ctrl-C once grid_study has stored its points: the store's points are counted and named."""
    from backdoor_curves.grid_run import run_grid_config
    from backdoor_curves.study.config import GridConfig, parse_config

    raw = {"data": {"n_train": 120, "n_test": 60}, "learner": [{"kind": "ridge", "alpha": [1, 2]}]}
    real_run = GridConfig.run

    def run_then_interrupt(self, **kwargs):
        real_run(self, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(GridConfig, "run", run_then_interrupt)
    with pytest.raises(Interrupted) as caught:
        run_grid_config(parse_config(raw), tmp_path / "o", progress=False)
    assert caught.value.kept == f"2 of 2 grid points are kept in {tmp_path / 'o' / 'study.sqlite'}"
    assert sorted(os.listdir(tmp_path / "o")) == ["study.sqlite"]
    assert np.isfinite(finished_rows(tmp_path / "o" / "study.sqlite")["derivative"]).all()


# ---------------------------------------------------------------------------- output paths
@pytest.mark.parametrize(
    ("value", "expected"),
    [("cache", "out/cache"), ("a/./b/../c", "out/a/c"), (".", "out"), ("{out}/x", "out/x")],
)
def test_output_paths_inside_out(tmp_path, value, expected):
    out = tmp_path / "out"
    value = value.format(out=out)
    assert output_path(value, "data.cache_dir", out) == tmp_path / expected


@pytest.mark.parametrize("value", ["/elsewhere", "..", "../out2", "a/../../x", "{tmp}/out2"])
def test_output_paths_outside_out_are_refused_naming_the_key(tmp_path, value):
    value = value.format(tmp=tmp_path)
    with pytest.raises(
        ValueError, match=r"^config key 'data\.cache_dir': .* is outside the output"
    ):
        output_path(value, "data.cache_dir", tmp_path / "out")


def test_output_paths_checked_before_out_is_known():
    assert output_path("cache/x", "data.cache_dir") == Path("cache/x")
    for value in ("/abs", "../up", "a/../../up"):
        with pytest.raises(ValueError, match="data.cache_dir"):
            output_path(value, "data.cache_dir")
    with pytest.raises(ValueError, match="non-empty"):
        output_path("", "data.cache_dir")
    with pytest.raises(TypeError, match="'data.cache_dir': must be a path"):
        output_path(3, "data.cache_dir")


# ---------------------------------------------------------------------------- result records
def odd_frame() -> pd.DataFrame:
    """Every kind of column a record keeps: float bits (NaN, -0.0, subnormal), ints, bools,
    pandas strings with missing values, object strings, ordered categories, datetimes."""
    frame = pd.DataFrame(
        {
            "f": [np.nan, -0.0, np.inf, 5e-324],
            "i8": np.array([1, -2, 3, 127], dtype=np.int8),
            "b": [True, False, True, True],
            "s": pd.array(["a", None, "x\x00y", "\u00e9\ud800"], dtype="str"),
            "S": pd.array(["a", pd.NA, "b", ""], dtype=pd.StringDtype("python")),
            "c": pd.Categorical(["u", "v", "u", "u"], categories=["v", "u"], ordered=True),
            "t": pd.to_datetime(["2020-01-01", "2021-06-30", "1970-01-01", "2000-02-29"]),
        },
        index=pd.Index([3, 1, 2, 9], name="k"),
    )
    frame["o"] = pd.Series(["p", "q", "", "r"], dtype=object, index=frame.index)
    frame.attrs = {"betas": [0.0, 1.0]}
    return frame


def test_records_round_trip_exactly(tmp_path):
    values = {
        "odd": odd_frame(),
        "ranged": pd.DataFrame({"x": [1.5, 2.5]}, index=pd.RangeIndex(5, 9, 2, name="r")),
        "int_columns": pd.DataFrame({1: [1.0], 7: ["q"]}, index=pd.Index(["row"])),
        "empty": pd.DataFrame({"a": pd.Series([], dtype=float)}),
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "float": 0.1 + 0.2,
        "nan": float("nan"),
        "int": 2**70,
        "np_float": np.float32(1.5),
        "flag": True,
        "text": "\u00e9",
        "nothing": None,
    }
    path = write_record(tmp_path / "r.npz", values, {"fingerprint": "abc"})
    assert os.listdir(tmp_path) == ["r.npz"]
    header, back = read_record(path)
    assert header == {"fingerprint": "abc"} and list(back) == list(values)
    for name, value in values.items():
        got = back[name]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got, value, check_exact=True, check_index_type=True)
            assert got.attrs == value.attrs and list(got.dtypes) == list(value.dtypes)
            assert got.columns.dtype == value.columns.dtype and type(got.index) is type(value.index)
            floats = value.select_dtypes("float").to_numpy()
            assert got.select_dtypes("float").to_numpy().tobytes() == floats.tobytes()
        elif isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and got.tobytes() == value.tobytes()
        else:
            assert type(got) is type(value)
            assert got == value or (got != got and value != value), name


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (pd.DataFrame({"o": pd.Series([1, "a"], dtype=object)}), "in a string column"),
        (pd.DataFrame({"o": pd.Series(["a", None], dtype=object)}), "missing value"),
        (pd.DataFrame({"i": pd.array([1, None], dtype="Int64")}), "of dtype Int64"),
        (pd.DataFrame({"a": [1]}, index=pd.MultiIndex.from_tuples([(1, 2)])), "MultiIndex"),
        (pd.DataFrame({(1, 2): [1]}), "column name"),
        (np.array([{}], dtype=object), "of type ndarray"),
        (object(), "of type object"),
    ],
)
def test_records_refuse_what_needs_pickle(tmp_path, value, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        write_record(tmp_path / "r.npz", {"v": value})
    assert os.listdir(tmp_path) == []


def test_records_from_elsewhere_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "r.npz"
    path.write_bytes(b"not a record")
    with pytest.raises(ValueError, match="r.npz is not a readable result record"):
        read_record(path)
    np.savez(path, manifest=np.array([{"format": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        read_record(path)
    np.savez(path, manifest=np.frombuffer(b'{"format": "other"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="format 'other'"):
        read_record(path)
