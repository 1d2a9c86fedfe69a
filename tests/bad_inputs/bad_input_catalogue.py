"""The bad-input catalogue (issue #12, item 2): entry points, their valid baseline calls, and
the bad inputs each one must refuse with a ``TypeError`` / ``ValueError`` naming the argument.

An :class:`EntryPoint` has a *baseline*: a function of the shared :class:`Context` (small real
data) returning the keyword arguments of a valid call, and a *call* taking the context and those
keyword arguments. Each :class:`Case` spoils one argument of the baseline: it replaces the value
(:class:`Set`, or a plain value), transforms it (:class:`Map`) or edits the whole call
(:class:`Edit`), and says which kind of bad input this is (one of :data:`KINDS`), which error
type is expected (the kind's default unless given) and which name the message must contain (the
argument unless given: a parameter name, a TOML key like ``learner[0].C`` or a CLI flag like
``--fraction``).

The test modules of this folder declare their entry points and turn them into pytest parameters
with :func:`register`, which also records them for the summary printed at the end of the run
(``conftest.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

# ---------------------------------------------------------------------------- kinds
#: Kind of bad input -> (what it is, the default expected error). A CLI case expects an exit
#: status instead (1: a run-time error, 2: argparse's usage error).
KINDS: dict[str, tuple[str, Any]] = {
    "nan": ("NaN in an array or a number", ValueError),
    "inf": ("infinity in an array or a number", ValueError),
    "empty": ("an empty array, list, table or file", ValueError),
    "wrong_dimensions": ("wrong number of dimensions, shape or feature count", ValueError),
    "string": ("strings where numbers are expected", TypeError),
    "complex": ("complex numbers", ValueError),
    "object": ("an object array holding a non-number (a dict)", TypeError),
    "wrong_type": ("None or an object of the wrong type", TypeError),
    "mismatched_length": ("arrays of different lengths", ValueError),
    "one_class": ("labels of a single class", ValueError),
    "three_classes": ("a third class (or a label outside the classes)", ValueError),
    "beta_range": ("beta outside [0, 1]", ValueError),
    "nonfinite_param": ("non-finite C / alpha / gamma / step size", ValueError),
    "negative_param": ("negative C / alpha / gamma / size / weight", ValueError),
    "fraction_bounds": ("a fraction of 0 or 1 (or outside (0, 1))", ValueError),
    "out_of_range": ("another number outside its range", ValueError),
    "trigger_too_large": ("a trigger larger than the image", ValueError),
    "image_range": ("images outside [0, 1]", ValueError),
    "unknown_option": ("an unknown option, name or keyword", ValueError),
    "bad_file": ("a file that is missing, empty or of the wrong content", ValueError),
    "toml_misspelled_key": ("a TOML configuration with a misspelled key", ValueError),
    "toml_wrong_type": ("a TOML configuration value of the wrong type", ValueError),
}


# ---------------------------------------------------------------------------- how a case spoils
@dataclass(frozen=True)
class Set:
    """Replace the argument's value by ``value``."""

    value: Any


@dataclass(frozen=True)
class Map:
    """Replace the argument's value by ``fn(baseline value)``."""

    fn: Callable[[Any], Any]


@dataclass(frozen=True)
class Edit:
    """Edit the whole call: ``fn(kwargs)`` (a deep copy of the baseline) returns the call."""

    fn: Callable[[dict], dict]


@dataclass
class Case:
    """One bad input of an entry point."""

    kind: str
    arg: str
    bad: Any
    error: Any = None  # None: the kind's default (an exit status for CLI entry points)
    names: str | None = None  # what the message must name; default: ``arg``
    label: str = ""  # distinguishes cases of the same kind and argument in the test id
    xfail: str | None = None  # a known failure in a file this catalogue does not own

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise KeyError(f"unknown kind of bad input {self.kind!r}")


@dataclass
class EntryPoint:
    """A public entry point: a valid baseline call and the cases that spoil it."""

    name: str
    baseline: Callable[[Any], Any]
    call: Callable[[Any, Any], Any]
    cases: list[Case] = field(default_factory=list)
    cli: bool = False


# ---------------------------------------------------------------------------- registry
class _Registry:
    def __init__(self) -> None:
        self.entries: list[EntryPoint] = []

    @property
    def cases(self) -> list[tuple[EntryPoint, Case]]:
        return [(e, c) for e in self.entries for c in e.cases]

    def kinds(self) -> set[str]:
        return {c.kind for _, c in self.cases}


REGISTRY = _Registry()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", text).strip("_")


def register(entries: list[EntryPoint]) -> tuple[list, list]:
    """Record ``entries`` and return (baseline params, case params) for parametrize."""
    names = [e.name for e in REGISTRY.entries]
    for entry in entries:
        if entry.name in names:
            raise ValueError(f"entry point {entry.name!r} is registered twice")
        names.append(entry.name)
    REGISTRY.entries.extend(entries)
    baselines = [pytest.param(e, id=_slug(e.name)) for e in entries]
    params, seen = [], set()
    for entry in entries:
        for case in entry.cases:
            base = _slug(
                f"{entry.name}-{case.arg}-{case.kind}" + (f"-{case.label}" if case.label else "")
            )
            ident, k = base, 2
            while ident in seen:
                ident, k = f"{base}-{k}", k + 1
            seen.add(ident)
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            params.append(pytest.param(entry, case, id=ident, marks=marks))
    return baselines, params


# ---------------------------------------------------------------------------- running a case
def _copy_tree(value):
    """A copy of the dicts and lists of ``value`` (a TOML document, an argv), sharing the rest."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


def spoil(kwargs: Any, case: Case) -> Any:
    """The baseline call with the case's bad input."""
    kwargs = _copy_tree(kwargs)
    if isinstance(case.bad, Edit):
        return case.bad.fn(kwargs)
    if isinstance(case.bad, Map):
        kwargs[case.arg] = case.bad.fn(kwargs[case.arg])
    elif isinstance(case.bad, Set):
        kwargs[case.arg] = case.bad.value
    else:
        kwargs[case.arg] = case.bad
    return kwargs


def names_argument(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a whole word (``X`` is not found in ``X_test``)."""
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, message) is not None


def expected_error(case: Case):
    return KINDS[case.kind][1] if case.error is None else case.error


def check_python(ctx, entry: EntryPoint, case: Case) -> None:
    kwargs = spoil(entry.baseline(ctx), case)
    error = expected_error(case)
    with pytest.raises(error) as info:
        entry.call(ctx, kwargs)
    name = case.names or case.arg
    message = str(info.value)
    assert names_argument(message, name), (
        f"{entry.name}: the {type(info.value).__name__} does not name {name!r}: {message}"
    )


def check_cli(ctx, entry: EntryPoint, case: Case, capsys) -> None:
    argv = spoil(entry.baseline(ctx), case)
    capsys.readouterr()
    status = entry.call(ctx, argv)
    err = capsys.readouterr().err
    expected = 1 if case.error is None else case.error
    assert status == expected, f"exit status {status}, expected {expected}; stderr: {err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, f"expected one error line on stderr, got: {err}"
    if status == 1:  # a run-time error: that one line and nothing else
        assert lines == errors and lines[0].startswith("backdoor-curves: error: "), err
    else:  # argparse's usage error: the usage block, then the one error line
        assert lines[-1] == errors[0], err
    name = case.names or case.arg
    assert names_argument(errors[0], name), f"the error line does not name {name!r}: {err}"


# ---------------------------------------------------------------------------- bad values
def with_nan(v):
    a = np.array(v, dtype=float, copy=True)
    a.flat[0] = math.nan
    return a


def with_inf(v):
    a = np.array(v, dtype=float, copy=True)
    a.flat[-1] = math.inf
    return a


def empty(v):
    return np.asarray(v)[:0]


def one_sample(v):
    """Drop the sample axis: one fewer dimension."""
    return np.asarray(v)[0]


def extra_axis(v):
    """A second column (1-D -> (n, 2)) or a trailing axis of 2 (n-D -> (n+1)-D)."""
    a = np.asarray(v)
    return np.stack([a, a], axis=-1)


def fewer_features(v):
    return np.asarray(v)[:, :-1]


def as_strings(v):
    return np.asarray(v).astype(str)


def as_complex(v):
    return np.asarray(v).astype(complex) + 0.5j


def as_object(v):
    """An object array with one entry that is no number (a dict)."""
    a = np.asarray(v).astype(object)
    a.flat[0] = {"a": 1}
    return a


def shorter(v):
    return np.asarray(v)[:-1]


def times_255(v):
    return np.asarray(v, dtype=float) * 255.0


def one_class(y):
    y = np.asarray(y)
    return np.full_like(y, y[0])


def third_class(y, label=None):
    """A copy of ``y`` with its first label replaced by a class it does not hold."""
    y = np.asarray(y).copy()
    if label is None:
        label = int(np.max(y)) + 1 if np.issubdtype(y.dtype, np.integer) else "zz"
    y = y.astype(object) if isinstance(label, str) and y.dtype.kind != "U" else y
    y[0] = label
    return y


def negative(v):
    return -np.asarray(v, dtype=float) - 1.0


def set_in(path: tuple, value) -> Edit:
    """Edit a nested dict / list (a TOML document) at ``path``."""

    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    return Edit(edit)


def rename_in(path: tuple, new: str) -> Edit:
    """Rename the key at ``path`` of a nested dict to ``new`` (a misspelling)."""

    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[new] = node.pop(path[-1])
        return doc

    return Edit(edit)


def toml_text(doc: Mapping) -> str:
    """A TOML document of tables, arrays of tables and scalars / lists (enough for the configs)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v == math.inf else repr(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    def table(t: Mapping) -> list[str]:
        return [f"{k} = {value(v)}" for k, v in t.items()]

    lines = []
    for name, section in doc.items():
        if isinstance(section, list) and section and all(isinstance(s, Mapping) for s in section):
            for item in section:
                lines += [f"[[{name}]]", *table(item), ""]
        elif isinstance(section, Mapping):
            lines += [f"[{name}]", *table(section), ""]
        else:
            lines.insert(0, f"{name} = {value(section)}")
    return "\n".join(lines) + "\n"
