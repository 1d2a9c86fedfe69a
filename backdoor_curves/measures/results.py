"""The results of the measures: a backdoor learning curve and a backdoor learning slope.

Frozen dataclasses holding numbers, with the names of the curve columns, the default grid of betas
and the bounded slope score, and their round trips to files: :func:`write_curves` /
:func:`read_curves` (CSV, several curves) and :meth:`BackdoorSlope.to_dict` /
:meth:`BackdoorSlope.from_dict` (JSON-ready). Nothing here fits a model or draws a figure, so any
stage may read these types (study, viz, report) without importing the solvers; the ``plot``
methods reach :mod:`backdoor_curves.viz.plots` only when called, and that module does not import
this one.

    score(derivative) = -(2/pi) * arctan(derivative)                            in (-1, 1)

The CSV file of :func:`write_curves` is a plain long-form table, one row per (curve, beta), with
the columns ``curve`` (0, 1, ...), ``learner``, ``lambda`` and :data:`CURVE_COLUMNS`, preceded by
comment lines starting with ``#`` that hold what a table cannot (one JSON object per curve: its
learner label, regularization, ``params``, ``events`` and columns)::

    # backdoor-curves learning curves, format 1
    # {"curve": 0, "learner": "logistic", "regularization": 0.01, "params": {"C": 100.0, ...}, ...}
    curve,learner,lambda,beta,backdoor_loss,clean_loss,...
    0,logistic,0.01,0.0,0.6931...,...

Numbers are written with the shortest representation that reads back to the same float64, so
write -> read gives equal curves. ``pandas.read_csv(path, comment="#")`` reads the table.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write
from .._validation import check_betas, show_value

__all__ = [
    "CURVE_COLUMNS",
    "BackdoorSlope",
    "LearningCurve",
    "default_betas",
    "read_curves",
    "slope_score",
    "write_curves",
]

#: The columns of a learning curve, in the order of :meth:`LearningCurve.to_frame`.
CURVE_COLUMNS = (
    "beta",
    "backdoor_loss",
    "clean_loss",
    "clean_accuracy",
    "backdoor_accuracy",
    "rho",
    "rho_ratio",
    "nu",
)


def default_betas(n: int = 21) -> np.ndarray:
    """0 followed by ``n - 1`` log-spaced values from 0.01 to 1.

    Parameters
    ----------
    n : int, default=21
        Number of betas, at least 2.

    Returns
    -------
    ndarray of shape (n,)
        ``[0, 0.01, ..., 1]``: both ends of [0, 1] included, log-spaced above 0.

    Raises
    ------
    TypeError
        If ``n`` is not an int (a bool is refused).
    ValueError
        If ``n`` < 2.
    """
    if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int >= 2, got {show_value(n)}")
    if n < 2:
        raise ValueError(f"n must be an int >= 2, got {show_value(n)}")
    return np.r_[0.0, np.geomspace(0.01, 1.0, n - 1)]


def slope_score(derivative: float | np.ndarray) -> float | np.ndarray:
    """The paper's bounded slope score ``-(2/pi) arctan(derivative)``.

    Parameters
    ----------
    derivative : float or ndarray
        dL(V_t)/dbeta at beta = 0 (:attr:`BackdoorSlope.derivative`).

    Returns
    -------
    float or ndarray
        The score in (-1, 1): near 1 when the backdoor loss collapses at once, near 0 when it
        barely moves, negative when it rises (NaN for a NaN derivative).

    Raises
    ------
    TypeError
        If ``derivative`` does not hold real numbers (strings, None, complex numbers).
    """
    kind = np.asarray(derivative).dtype.kind
    if kind not in "iuf":
        raise TypeError(
            f"derivative must be a real number or an array of them, got {show_value(derivative)}"
        )
    return -2.0 / np.pi * np.arctan(derivative)


# ---------------------------------------------------------------------------- equality
def _same(a, b) -> bool:
    """Exact equality of two result values: NaN equals NaN, arrays and dicts element-wise."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:  # not numbers: NaN cannot occur
            return bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return bool(a == b) or bool(a != a and b != b)  # NaN == NaN
    return type(a) is type(b) and bool(a == b)


@dataclass(frozen=True)
class LearningCurve:
    """A backdoor learning curve with clean metrics and parameter deviation.

    Two curves compare equal (``==``, :meth:`equals`) when every field is exactly the same.

    Attributes
    ----------
    betas : ndarray of shape (n_betas,)
        Weights of the poisoning set, in the order requested.
    values : dict of str -> ndarray
        One array per column of :data:`CURVE_COLUMNS` (besides ``beta``): mean losses (the
        learner's own loss) on V_t and V, accuracies on V and V_t (the latter is the attack
        success rate), and the deviation rho, rho_ratio, nu relative to beta = 0.
    learner : str
        The learner's display label (:func:`~backdoor_curves.learners.learner_label`); ``params``
        holds all its parameters.
    regularization : float
        lambda = 1/C.
    params : dict
        The learner's ``get_params()`` (all parameters, defaults included).
    events : pandas.DataFrame
        For an SVM path: one row per event (``beta``, ``index`` of the point in D followed by
        P, and the sets it moves ``from`` and ``to``: zero, margin or bound); between events the
        dual solution is linear in beta. Empty for other methods.
    """

    betas: np.ndarray
    values: dict = field(repr=False)
    learner: str
    regularization: float
    params: dict = field(default_factory=dict, repr=False)
    events: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def __getitem__(self, column: str) -> np.ndarray:
        if column == "beta":
            return self.betas
        return self.values[column]

    def __eq__(self, other) -> bool:
        if not isinstance(other, LearningCurve):
            return NotImplemented
        return self.equals(other)

    def equals(self, other) -> bool:
        """Whether ``other`` is the same curve, exactly.

        Parameters
        ----------
        other : object
            Anything; only a LearningCurve can be equal.

        Returns
        -------
        bool
            True when the betas and every value column hold the same numbers (NaN equal to
            NaN), and the learner label, regularization, ``params`` and ``events`` are the
            same (:meth:`pandas.DataFrame.equals` for the events).
        """
        if not isinstance(other, LearningCurve):
            return False
        return (
            _same(np.asarray(self.betas), np.asarray(other.betas))
            and self.values.keys() == other.values.keys()
            and all(
                _same(np.asarray(v), np.asarray(other.values[k])) for k, v in self.values.items()
            )
            and self.learner == other.learner
            and _same(float(self.regularization), float(other.regularization))
            and _same(dict(self.params), dict(other.params))
            and _same(self.events, other.events)
        )

    def to_frame(self) -> pd.DataFrame:
        """The curve as a table.

        Returns
        -------
        pandas.DataFrame
            One row per beta with the columns of :data:`CURVE_COLUMNS`; ``attrs`` holds the
            learner and the regularization (what :meth:`from_frame` reads back).
        """
        frame = pd.DataFrame({"beta": self.betas, **self.values}, columns=list(CURVE_COLUMNS))
        frame.attrs.update(learner=self.learner, regularization=self.regularization)
        return frame

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        learner: str | None = None,
        regularization: float | None = None,
        *,
        params: dict | None = None,
        events: pd.DataFrame | None = None,
    ) -> LearningCurve:
        """The curve of a table of :meth:`to_frame`'s form (its inverse).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per beta with the columns of :data:`CURVE_COLUMNS`; other columns are
            not read.
        learner : str, optional
            The learner's display label; default ``frame.attrs["learner"]`` (set by
            :meth:`to_frame`).
        regularization : float, optional
            lambda = 1/C; default ``frame.attrs["regularization"]``.
        params : dict, optional
            The learner's parameters; default none (a table does not hold them).
        events : pandas.DataFrame, optional
            The SVM path's events; default none.

        Returns
        -------
        LearningCurve
            With copies of the columns as float arrays; ``LearningCurve.from_frame(c.to_frame(),
            params=c.params, events=c.events) == c``.

        Raises
        ------
        TypeError
            If ``frame`` is not a DataFrame, ``learner`` not a str, ``regularization`` not a real
            number, ``params`` not a dict or ``events`` not a DataFrame.
        ValueError
            If ``frame`` lacks a curve column or holds a non-number, a beta is outside [0, 1],
            or ``learner`` / ``regularization`` is neither given nor in ``frame.attrs``.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in CURVE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"frame lacks the column(s) {missing}; it needs {list(CURVE_COLUMNS)} "
                "(as LearningCurve.to_frame writes)"
            )
        learner = frame.attrs.get("learner") if learner is None else learner
        regularization = (
            frame.attrs.get("regularization") if regularization is None else regularization
        )
        if learner is None:
            raise ValueError("learner must be given: frame.attrs has no 'learner'")
        if not isinstance(learner, str):
            raise TypeError(f"learner must be a str, got {type(learner).__name__}")
        if regularization is None:
            raise ValueError("regularization must be given: frame.attrs has no 'regularization'")
        if isinstance(regularization, bool) or not isinstance(regularization, numbers.Real):
            raise TypeError(
                f"regularization must be a real number, got {type(regularization).__name__}"
            )
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict, got {type(params).__name__}")
        events = pd.DataFrame() if events is None else events
        if not isinstance(events, pd.DataFrame):
            raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
        betas = check_betas(frame["beta"].to_numpy(), "frame['beta']").copy()
        values = {}
        for column in CURVE_COLUMNS[1:]:
            try:
                values[column] = frame[column].to_numpy(dtype=float, copy=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"frame[{column!r}] must hold numbers ({exc})") from None
        return cls(betas, values, learner, float(regularization), dict(params), events.copy())

    def to_csv(self, path) -> Path:
        """Write the curve to a CSV file that :meth:`read_csv` reads back equal.

        Parameters
        ----------
        path : str or path-like
            The file (replaced atomically); its folder must exist.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        TypeError
            If ``path`` is not a str or path-like, or a parameter value is not a number, string,
            bool or None.

        See Also
        --------
        write_curves : Several curves in one file (the format is described there).
        """
        return write_curves([self], path)

    @classmethod
    def read_csv(cls, path) -> LearningCurve:
        """Read the one curve of a CSV file written by :meth:`to_csv`.

        Parameters
        ----------
        path : str or path-like
            A file of :meth:`to_csv` or :func:`write_curves`, or a long-form table of curves
            such as the demo's ``curves.csv`` (see :func:`read_curves`), holding one curve.

        Returns
        -------
        LearningCurve
            Equal to the curve written.

        Raises
        ------
        TypeError
            If ``path`` is not a str or path-like.
        ValueError
            If the file does not hold exactly one curve (read several with
            :func:`read_curves`) or is not a table of curves.
        OSError
            If the file cannot be read.
        """
        curves = read_curves(path)
        if len(curves) != 1:
            raise ValueError(
                f"path {str(path)!r} holds {len(curves)} curves, not one: read them with "
                "backdoor_curves.read_curves(path), which returns a list"
            )
        return curves[0]

    def plot(self, ax=None, *, column: str = "backdoor_loss", **kwargs):
        """Plot the backdoor loss (or another column) against beta.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; new axes on a new pyplot figure when omitted.
        column : str, default="backdoor_loss"
            The curve column drawn (one of :data:`CURVE_COLUMNS` but ``beta``).
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` (``color``, ``linestyle``, ``label``
            ...), and ``labels`` of :func:`backdoor_curves.viz.plots.plot_curves`.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on (pandas' habit): ``ax`` when given.

        Raises
        ------
        TypeError
            If ``ax`` is not a matplotlib Axes.
        ValueError
            If ``column`` is not a curve column.
        """
        from ..viz.plots import plot_curves  # matplotlib only when a figure is asked for

        fig = plot_curves([self], ax=ax, column=column, **kwargs)
        return fig.axes[0] if ax is None else ax


# ---------------------------------------------------------------------------- curves <-> CSV
#: First line of a file of :func:`write_curves`.
_CSV_MAGIC = "# backdoor-curves learning curves, format 1"
_CSV_ID_COLUMNS = ("curve", "learner", "lambda")
_PLAIN_TYPES = (type(None), bool, int, float, str)


def _check_path(path) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    return Path(path)


def _plain(value, name: str):
    """``value`` as a JSON scalar (numpy scalars unwrapped), or TypeError naming ``name``."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _PLAIN_TYPES):
        raise TypeError(
            f"{name} must be a number, string, bool or None to be written, "
            f"got {type(value).__name__}"
        )
    return value


def _events_json(events: pd.DataFrame, name: str) -> dict:
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(events).__name__}")
    columns = [str(c) for c in events.columns]
    data = [[_plain(v, f"{name}[{c!r}]") for v in events[c].tolist()] for c in events.columns]
    return {"columns": columns, "dtypes": [str(t) for t in events.dtypes], "data": data}


def _events_frame(spec: dict) -> pd.DataFrame:
    columns = list(spec["columns"])
    if not columns:
        return pd.DataFrame()
    frame = pd.DataFrame(dict(zip(columns, spec["data"], strict=True)), columns=columns)
    return frame.astype(dict(zip(columns, spec["dtypes"], strict=True)))


def _float_text(x) -> str:
    return repr(float(x))  # the shortest text that reads back to the same float64


def write_curves(curves, path) -> Path:
    """Write learning curves to one CSV file that :func:`read_curves` reads back equal.

    The file is a long-form table, one row per (curve, beta), with the columns ``curve`` (the
    curve's position), ``learner``, ``lambda`` and :data:`CURVE_COLUMNS`, after ``#`` comment
    lines holding each curve's label, regularization, ``params``, ``events`` and columns as
    JSON (the format is shown in :mod:`backdoor_curves.measures.results`). Numbers are written
    exactly (the shortest text of each float64); ``pandas.read_csv(path, comment="#")`` reads
    the table.

    Parameters
    ----------
    curves : LearningCurve or list of LearningCurve
        The curves, in the order :func:`read_curves` returns them.
    path : str or path-like
        The file, replaced atomically (temporary file, then :func:`os.replace`); its folder
        must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If ``curves`` is not a LearningCurve or a list of them, ``path`` not a str or
        path-like, or a value of ``params`` or ``events`` is not a number, string, bool or
        None.
    OSError
        If the file cannot be written.
    """
    if isinstance(curves, LearningCurve):
        curves = [curves]
    if isinstance(curves, str | bytes | Mapping) or not hasattr(curves, "__iter__"):
        raise TypeError(f"curves must be a list of LearningCurve, got {type(curves).__name__}")
    curves = list(curves)
    for i, curve in enumerate(curves):
        if not isinstance(curve, LearningCurve):
            raise TypeError(f"curves[{i}] must be a LearningCurve, got {type(curve).__name__}")
    path = _check_path(path)
    lines, frames = [_CSV_MAGIC], []
    for i, curve in enumerate(curves):
        header = {
            "curve": i,
            "learner": str(curve.learner),
            "regularization": float(curve.regularization),
            "params": {
                str(k): _plain(v, f"curves[{i}].params[{k!r}]") for k, v in curve.params.items()
            },
            "columns": list(curve.values),
            "events": _events_json(curve.events, f"curves[{i}].events"),
        }
        lines.append("# " + json.dumps(header))
        frame = pd.DataFrame(
            {"beta": np.asarray(curve.betas, dtype=float)}
            | {k: np.asarray(v, dtype=float) for k, v in curve.values.items()}
        )
        for k, (column, value) in enumerate(
            zip(_CSV_ID_COLUMNS, (i, str(curve.learner), float(curve.regularization)), strict=True)
        ):
            frame.insert(k, column, value)
        frames.append(frame)
    value_columns = list(dict.fromkeys(c for curve in curves for c in curve.values))
    columns = [*_CSV_ID_COLUMNS, "beta", *value_columns]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    table = table.reindex(columns=columns)

    def write(f):
        f.write("\n".join(lines) + "\n")
        table.to_csv(f, index=False, float_format=_float_text, lineterminator="\n")

    return atomic_write(path, write)


def read_curves(path) -> list[LearningCurve]:
    """Read every learning curve of a CSV file.

    Two kinds of file are read:

    - a file of :func:`write_curves` or :meth:`LearningCurve.to_csv`: the curves come back
      equal to those written (label, regularization, ``params``, ``events`` included);
    - a plain long-form table of curves, one row per (curve, beta), with a ``beta`` column and
      the columns of :data:`CURVE_COLUMNS` it has, such as the ``curves.csv`` that
      ``backdoor-curves demo`` and ``backdoor-curves grid`` write. Each distinct combination
      of the other columns (e.g. ``learner``, ``C``, ``gamma``, ``lambda``, ``strength``) is a
      curve: its label is the ``learner`` column (else ``"k=v, ..."`` of those columns), its
      regularization the ``lambda`` column (else NaN), its ``params`` the other columns' values
      where not missing, and its events empty.

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Returns
    -------
    list of LearningCurve
        In the order of the file; always a list, also for one curve (see
        :meth:`LearningCurve.read_csv` for a file of one curve).

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like.
    ValueError
        If the file is empty or not text, has no ``beta`` column, its header is damaged, or a
        beta is outside [0, 1].
    OSError
        If the file cannot be read.
    """
    path = _check_path(path)
    headers = []
    try:
        with path.open(encoding="utf-8") as f:
            ours = f.readline().rstrip("\r\n") == _CSV_MAGIC
            if ours:
                for line in f:
                    if not line.startswith("# "):
                        break
                    try:
                        headers.append(json.loads(line[2:]))
                    except json.JSONDecodeError as exc:
                        raise ValueError(
                            f"path {str(path)!r}: header line {len(headers) + 2} is not valid "
                            f"JSON ({exc}); the file is damaged"
                        ) from None
        options = {"keep_default_na": False, "na_values": [""]}
        if int(pd.__version__.split(".")[0]) < 3:  # pandas 3 reads floats exactly by default
            options["float_precision"] = "round_trip"
        table = pd.read_csv(path, skiprows=1 + len(headers) if ours else 0, **options)
    except UnicodeDecodeError as exc:
        raise ValueError(f"path {str(path)!r} is not a text CSV file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"path {str(path)!r} holds no table: not a table of learning curves"
        ) from None
    if "beta" not in table.columns:
        raise ValueError(
            f"path {str(path)!r} has no 'beta' column: not a table of learning curves "
            f"(columns: {list(table.columns)})"
        )
    if ours:
        return [_curve_from_header(table, header, path) for header in headers]
    return _curves_from_long_table(table)


def _curve_from_header(table: pd.DataFrame, header: dict, path: Path) -> LearningCurve:
    try:
        rows = table[table["curve"] == header["curve"]]
        values = {c: rows[c].to_numpy(dtype=float, copy=True) for c in header["columns"]}
        return LearningCurve(
            check_betas(rows["beta"].to_numpy(dtype=float), "beta").copy(),
            values,
            header["learner"],
            float(header["regularization"]),
            dict(header["params"]),
            _events_frame(header["events"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"path {str(path)!r}: the table does not match its header ({exc!r}); "
            "the file is damaged"
        ) from None


def _curves_from_long_table(table: pd.DataFrame) -> list[LearningCurve]:
    value_columns = [c for c in CURVE_COLUMNS[1:] if c in table.columns]
    ident = [c for c in table.columns if c not in CURVE_COLUMNS]
    groups = [g for _, g in table.groupby(ident, sort=False, dropna=False)] if ident else [table]
    curves = []
    for rows in groups:
        first = {c: rows[c].iloc[0] for c in ident}
        first = {c: v.item() if isinstance(v, np.generic) else v for c, v in first.items()}
        present = {c: v for c, v in first.items() if not (isinstance(v, float) and math.isnan(v))}
        if "learner" in first:
            learner = str(first["learner"])
        else:
            learner = ", ".join(f"{k}={v}" for k, v in present.items())
        regularization = float(first["lambda"]) if "lambda" in first else math.nan
        params = {k: v for k, v in present.items() if k not in ("learner", "lambda")}
        curves.append(
            LearningCurve(
                check_betas(rows["beta"].to_numpy(dtype=float), "beta").copy(),
                {c: rows[c].to_numpy(dtype=float, copy=True) for c in value_columns},
                learner,
                regularization,
                params,
            )
        )
    return curves


# ---------------------------------------------------------------------------- the slope
#: The keys of :meth:`BackdoorSlope.to_dict` for the fields (all other keys are details).
_SLOPE_KEYS = {
    "derivative": "derivative",
    "score": "score",
    "condition_number": "condition_number",
    "backdoor_loss_0": "backdoor_loss",
    "second_derivative": "second_derivative",
    "lambda": "regularization",
}


@dataclass(frozen=True)
class BackdoorSlope:
    """Backdoor learning slope of one learner on one poisoned data set.

    Two slopes compare equal (``==``, :meth:`equals`) when every field is exactly the same.

    Attributes
    ----------
    derivative : float
        dL(V_t)/dbeta at beta = 0 (right-derivative for SVMs); negative when the backdoor is
        being learned.
    score : float
        ``-(2/pi) * arctan(derivative)`` in (-1, 1) (:func:`slope_score`).
    condition_number : float
        1-norm condition number of the factorized Hessian H0 (or SVM KKT matrix). With more
        features than training points H0 is solved through the n x n dual matrix I + A A^T
        (:class:`~backdoor_curves.learners.linear.DualHessianSolver`) and that matrix's condition
        number is reported.
    backdoor_loss : float
        L(V_t, theta0), the mean backdoor loss of the clean model.
    second_derivative : float
        d^2 L(V_t)/dbeta^2 at beta = 0 (0 for SVMs: their curve is linear on its first piece).
    regularization : float
        lambda = 1/C of the learner.
    learner : str
        The learner's display label (:func:`~backdoor_curves.learners.learner_label`, e.g.
        ``"RBF SVM (gamma=0.005)"``); ``params`` holds all its parameters.
    params : dict
        The learner's ``get_params()`` (all parameters, defaults included).
    details : dict
        Learner-specific diagnostics (e.g. ``n_margin`` and ``n_poison_active`` for SVMs,
        ``dtheta_dbeta``).
    """

    derivative: float
    score: float
    condition_number: float
    backdoor_loss: float
    second_derivative: float
    regularization: float
    learner: str
    params: dict = field(default_factory=dict, repr=False)
    details: dict = field(default_factory=dict, repr=False)

    def __eq__(self, other) -> bool:
        if not isinstance(other, BackdoorSlope):
            return NotImplemented
        return self.equals(other)

    def equals(self, other) -> bool:
        """Whether ``other`` is the same slope, exactly.

        Parameters
        ----------
        other : object
            Anything; only a BackdoorSlope can be equal.

        Returns
        -------
        bool
            True when every number is the same (NaN equal to NaN), and the learner label,
            ``params`` and ``details`` (arrays element-wise) are the same.
        """
        if not isinstance(other, BackdoorSlope):
            return False
        return (
            all(
                _same(float(getattr(self, name)), float(getattr(other, name)))
                for name in _SLOPE_KEYS.values()
            )
            and self.learner == other.learner
            and _same(dict(self.params), dict(other.params))
            and _same(dict(self.details), dict(other.details))
        )

    def taylor(self, betas) -> dict[str, np.ndarray]:
        """First- and second-order Taylor predictions of the curve from beta = 0.

            first(beta)  = L(0) + beta L'(0)                      (the influence function)
            second(beta) = L(0) + beta L'(0) + beta^2 / 2 L''(0)

        Where they leave the exact curve is where the influence function stops explaining it.

        Parameters
        ----------
        betas : array-like of float in [0, 1]
            Where to predict.

        Returns
        -------
        dict of str -> ndarray
            ``"first"`` and ``"second"``, one prediction per beta.
        """
        betas = check_betas(betas)
        first = self.backdoor_loss + betas * self.derivative
        return {"first": first, "second": first + 0.5 * betas**2 * self.second_derivative}

    def to_dict(self) -> dict:
        """Every field as a flat, JSON-ready dict; :meth:`from_dict` is its inverse.

        Returns
        -------
        dict
            ``derivative``, ``score``, ``condition_number``, ``backdoor_loss_0``,
            ``second_derivative`` and ``lambda`` (floats, named as the columns of a grid
            table), ``learner`` (str), ``params`` (dict) and each of ``details`` under its own
            name, arrays as nested lists (so ``json.dumps`` takes the dict). For a table row,
            keep the scalars: ``{k: v for k, v in d.items() if numpy.isscalar(v)}``.

        Raises
        ------
        TypeError
            If a value of ``params`` is not a number, string, bool or None, or a detail is
            neither that nor an array of numbers.
        ValueError
            If a key of ``details`` is the name of a field above.
        """
        out: dict = {key: float(getattr(self, name)) for key, name in _SLOPE_KEYS.items()}
        out["learner"] = str(self.learner)
        out["params"] = {str(k): _plain(v, f"params[{k!r}]") for k, v in self.params.items()}
        for key, value in self.details.items():
            if key in out:
                raise ValueError(f"details[{key!r}] has the name of a field of BackdoorSlope")
            if isinstance(value, np.ndarray):
                if not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
                    raise TypeError(f"details[{key!r}] must hold numbers, got {value.dtype}")
                out[key] = value.tolist()
            else:
                out[key] = _plain(value, f"details[{key!r}]")
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> BackdoorSlope:
        """The slope of a dict of :meth:`to_dict` (e.g. read back from JSON).

        Parameters
        ----------
        data : dict
            With the keys ``derivative``, ``condition_number``, ``backdoor_loss_0``,
            ``second_derivative``, ``lambda`` and ``learner``; optionally ``score`` (computed
            from the derivative when missing) and ``params``. Every other key is a detail; a
            list becomes an ndarray.

        Returns
        -------
        BackdoorSlope
            ``BackdoorSlope.from_dict(s.to_dict()) == s``.

        Raises
        ------
        TypeError
            If ``data`` is not a mapping, a number is not a real number, ``learner`` not a str
            or ``params`` not a dict.
        ValueError
            If a required key is missing.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a dict, got {type(data).__name__}")
        required = [k for k in _SLOPE_KEYS if k != "score"] + ["learner"]
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(
                f"data lacks the key(s) {missing}; it needs {required} "
                "(as BackdoorSlope.to_dict writes)"
            )
        fields = {}
        for key, name in _SLOPE_KEYS.items():
            if key not in data:  # only the score may be missing
                fields[name] = float(slope_score(fields["derivative"]))
                continue
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"data[{key!r}] must be a real number, got {type(value).__name__}")
            fields[name] = float(value)
        if not isinstance(data["learner"], str):
            raise TypeError(f"data['learner'] must be a str, got {type(data['learner']).__name__}")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError(f"data['params'] must be a dict, got {type(params).__name__}")
        known = {*_SLOPE_KEYS, "learner", "params"}
        details = {
            k: np.asarray(v) if isinstance(v, list | tuple) else v
            for k, v in data.items()
            if k not in known
        }
        return cls(learner=data["learner"], params=dict(params), details=details, **fields)

    def plot(self, ax=None, curve=None, **kwargs):
        """Plot the slope as the tangent of the curve at beta = 0, over the curve when given.

        The first-order Taylor line L(0) + beta dL/dbeta and, when the second derivative is
        finite and non-zero, the second-order line, each labelled with its value
        (:func:`backdoor_curves.viz.plots.plot_slope`).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; new axes on a new pyplot figure when omitted.
        curve : LearningCurve, optional
            The exact curve of the same learner and data, drawn under the lines.
        **kwargs
            Passed to :meth:`matplotlib.axes.Axes.plot` for the tangent line (``color``,
            ``linestyle``, ``label`` ...).

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on (pandas' habit): ``ax`` when given.

        Raises
        ------
        TypeError
            If ``ax`` is not a matplotlib Axes or ``curve`` not a LearningCurve.
        """
        from ..viz.plots import plot_slope  # matplotlib only when a figure is asked for

        fig = plot_slope(self, ax=ax, curve=curve, **kwargs)
        return fig.axes[0] if ax is None else ax
