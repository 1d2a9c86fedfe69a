"""Input checks shared by every public entry point.

Each check raises a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
whose message starts with the argument's name, so a user sees at once which argument to fix.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target

from ._identity import IdentityMemo, is_immutable

__all__ = [
    "check_matrix",
    "check_vector",
    "check_labels",
    "encode_labels",
    "encode_signs",
    "check_binary_labels",
    "check_sample_weight",
    "check_same_length",
    "check_positive",
    "check_betas",
    "check_fraction",
    "check_real_array",
    "check_choice",
    "check_seed",
    "check_random_state",
    "show_value",
]


def show_value(value) -> str:
    """The ``repr`` of a value for an error message, numpy scalars and arrays as plain Python.

    ``np.float64(-0.1)`` shows as ``-0.1``, ``np.int64(3)`` as ``3``, ``np.str_("a")`` as
    ``'a'`` and an array as the list of its values; anything else as its ``repr``.

    Parameters
    ----------
    value : object
        The value to show (typically the bad value an error reports).

    Returns
    -------
    str
        Its ``repr``, after ``.item()`` (numpy scalars) or ``.tolist()`` (numpy arrays).

    Examples
    --------
    >>> import numpy as np
    >>> show_value(np.float64(-0.1)), show_value(np.arange(3)), show_value("a")
    ('-0.1', '[0, 1, 2]', "'a'")
    """
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    return repr(value)


def check_real_array(X, name: str, what: str) -> np.ndarray:
    """Return ``np.asarray(X)`` if it holds real numbers (integers, floats or booleans).

    Raises a TypeError naming ``name``: ``"{name} must be {what}, got None"`` for None,
    ``"{name} must hold real numbers, got dtype ..."`` otherwise. Shape and value checks are the
    caller's.
    """
    if X is None:
        raise TypeError(f"{name} must be {what}, got None")
    arr = np.asarray(X)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _reject_sparse(X, name: str) -> None:
    if sparse.issparse(X):
        raise TypeError(
            f"{name} is a scipy sparse {type(X).__name__}: sparse input is not supported, "
            f"pass a dense array (e.g. {name}.toarray())"
        )


_FINITE = IdentityMemo("finite matrices")
_SIGNS = IdentityMemo("label signs")


def check_matrix(
    X,
    name: str,
    *,
    n_features: int | None = None,
    allow_empty: bool = False,
    estimator_name: str | None = None,
):
    """Return ``X`` as a finite 2-D float64 array (a copy), or raise naming ``name``.

    A read-only float64 array whose memory no writable array shares (the arrays of a
    :class:`~backdoor_curves.data.BackdoorData`) is returned as it is: it cannot change, so it
    is also checked for NaN and infinity only once while it lives.

    Accepts arrays of integers, floats or booleans, and object arrays whose entries convert to
    float (e.g. a pandas DataFrame with object columns). Refuses None, sparse matrices, complex
    data, strings, NaN/inf, arrays that are not 2-D, no rows (unless ``allow_empty``) or no
    columns, and ``n_features`` mismatches (naming ``estimator_name`` if given).
    """
    if X is None:
        raise TypeError(f"{name} must be a 2-D array of numbers, got None")
    _reject_sparse(X, name)
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds
        raise TypeError(f"{name} must be a 2-D array of numbers: {exc}") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(
            f"{name} must hold real numbers: Complex data not supported, got dtype {arr.dtype}"
        )
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be a 2-D array of numbers; its dtype-object entries do not "
                f"convert to float: {exc}"
            ) from None
    elif not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must be a 2-D array of numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got an array of shape {arr.shape}. "
            f"Reshape your data: {name}.reshape(-1, 1) if it has a single feature or "
            f"{name}.reshape(1, -1) if it holds a single sample"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(
            f"{name} must contain at least one sample: 0 sample(s) (shape={arr.shape}) while "
            "a minimum of 1 is required."
        )
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one feature: 0 feature(s) (shape={arr.shape}) while "
            "a minimum of 1 is required."
        )
    if not (arr.dtype == np.float64 and is_immutable(arr)):
        arr = np.array(arr, dtype=np.float64)  # a copy: callers may keep mutating their input
    if not _FINITE.get(arr, lambda: bool(np.all(np.isfinite(arr)))):
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and arr.shape[1] != n_features:
        if estimator_name is not None:
            raise ValueError(
                f"{name} has {arr.shape[1]} features, but {estimator_name} is expecting "
                f"{n_features} features as input"
            )
        raise ValueError(f"{name} has {arr.shape[1]} features, expected {n_features}")
    return arr


def _label_kind(value) -> str:
    """The kind of one entry of an object array: "str", "bool", "number" or its type's name."""
    if isinstance(value, str):
        return "str"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    return type(value).__name__


def _is_missing(value) -> bool:
    """None, pandas' NA / NaT, or a float NaN (how pandas marks a missing string)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and value != value


def _from_object(arr: np.ndarray, name: str) -> np.ndarray:
    """An object array of labels or numbers (e.g. from a pandas column) in a uniform dtype.

    All strings: kept as an object array of str. All real numbers (or all booleans): converted to
    a numeric (boolean) array. Anything else (strings and numbers mixed, booleans and numbers
    mixed, None, pd.NA, other objects) raises a TypeError naming ``name``.
    """
    flat = arr.ravel().tolist()
    kinds = {_label_kind(v) for v in flat}
    if kinds <= {"str"}:
        return arr
    if kinds == {"number"} or kinds == {"bool"}:
        return np.array(flat).reshape(arr.shape)
    types = sorted({type(v).__name__ for v in flat})
    missing = any(_is_missing(v) for v in flat)
    raise TypeError(
        f"{name} must hold strings or real numbers of one kind, got entries of types {types}"
        + (" (missing values are not allowed)" if missing else "")
    )


def check_vector(y, name: str, *, allow_empty: bool = False, warn_column: bool = False):
    """Return ``y`` as a 1-D array (labels or weights), or raise naming ``name``.

    Accepts numbers, booleans or strings, including object arrays (pandas columns, categorical
    Series) whose entries are all strings (kept as an object array), all real numbers or all
    booleans (converted to a numeric or boolean array). A column vector of shape (n, 1) is
    flattened, with a ``DataConversionWarning`` if ``warn_column``. Refuses None, sparse
    matrices, complex data, mixed kinds of entries, other shapes, NaN/inf and, unless
    ``allow_empty``, no entries. Labels go through :func:`check_labels`, which also refuses
    other dtypes (bytes, dates) and mixed kinds in a list.
    """
    if y is None:
        raise TypeError(f"{name} must be a 1-D array, got None")
    _reject_sparse(y, name)
    arr = np.asarray(y)
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(
            f"{name} must hold real numbers or strings: Complex data not supported, "
            f"got dtype {arr.dtype}"
        )
    if arr.dtype == object:
        arr = _from_object(arr, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        if warn_column:
            warnings.warn(
                f"A column-vector {name} was passed when a 1d array was expected. Please "
                f"change the shape of {name} to (n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got an array of shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must contain at least one sample")
    if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


#: dtype kinds of a label array: booleans, integers, floats, str, object (all str after the check)
_LABEL_KINDS = "biufUO"


def check_labels(y, name: str, *, allow_empty: bool = False, warn_column: bool = False):
    """Return class labels of any kind as a 1-D numpy array of the user's own values.

    The one conversion of labels at every public entry point (learners, data containers,
    poisoning). Accepted: numpy arrays of numbers, booleans or str; object arrays whose entries
    are all str, all real numbers or all booleans; pandas Series of any of these (the ``str``
    dtype of pandas 3, ``object``, ``string``, ``category``, ``bool``/``boolean``, nullable
    integers without missing values); lists and tuples. The values are kept as given (strings
    stay strings: an object array of str from an object array or a pandas column, a str array
    from a numpy str array or a list), so results can be reported in them.

    Parameters
    ----------
    y : array-like of shape (n,) or (n, 1)
        The labels.
    name : str
        Argument name used in error messages.
    allow_empty : bool, default=False
        Accept no label at all.
    warn_column : bool, default=False
        Warn (``DataConversionWarning``) when a column vector (n, 1) is flattened.

    Returns
    -------
    ndarray of shape (n,)
        Numbers, booleans, str, or an object array of str.

    Raises
    ------
    TypeError
        Naming ``name``: None, a sparse matrix, strings and numbers (or booleans and numbers)
        mixed, missing values (None, ``pd.NA``, NaN among strings), other objects, or a dtype
        that holds no labels (bytes, dates, ...).
    ValueError
        Naming ``name``: complex numbers, a shape other than (n,) or (n, 1), NaN/inf among
        numbers, or (unless ``allow_empty``) no label.

    Examples
    --------
    >>> import numpy as np
    >>> check_labels(np.array(["b", "a"], dtype=object), "y").tolist()
    ['b', 'a']
    >>> check_labels([[1], [0]], "y").tolist()
    [1, 0]
    """
    if isinstance(y, list | tuple):
        _from_object(np.array(y, dtype=object), name)  # a list mixing kinds: refused, not cast
    arr = check_vector(y, name, allow_empty=allow_empty, warn_column=warn_column)
    if arr.dtype.kind not in _LABEL_KINDS:
        raise TypeError(
            f"{name} must hold class labels (numbers, booleans or strings), got dtype {arr.dtype}"
        )
    return arr


def encode_labels(y, classes, name: str, what: str | None = None) -> np.ndarray:
    """Position of each label of ``y`` in ``classes``: the one mapping of labels to codes.

    Labels compare as numpy's ``==`` does (``1 == 1.0 == True``). Every label of ``y`` must be
    one of ``classes``; the binary learners and :class:`~backdoor_curves.data.BackdoorData`
    encode ``classes[1]`` as +1 from these codes, the multi-class attack uses them as class
    indices.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Labels, as :func:`check_labels` returns them.
    classes : array-like of shape (k,)
        Distinct labels, in any order; code ``i`` is ``classes[i]``.
    name : str
        Argument name of ``y`` used in error messages.
    what : str, optional
        How the message names the classes, e.g. ``"y_clean's classes ['cat', 'dog']"``.
        Default: ``"classes"`` followed by their list.

    Returns
    -------
    ndarray of intp, shape (n,)
        ``codes`` with ``classes[codes[i]] == y[i]``.

    Raises
    ------
    ValueError
        Naming ``name`` and (up to ten of) the labels of ``y`` that are not in ``classes``.

    Examples
    --------
    >>> import numpy as np
    >>> encode_labels(np.array(["dog", "cat", "dog"]), ["cat", "dog"], "y").tolist()
    [1, 0, 1]
    """
    y = np.asarray(y)
    classes = np.asarray(classes)
    if y.size == 0:
        return np.zeros(y.shape, dtype=np.intp)
    values, inverse = np.unique(y, return_inverse=True)
    index: dict = {}
    for i, c in enumerate(classes.tolist()):
        index.setdefault(c, i)
    codes = np.array([index.get(v, -1) for v in values.tolist()], dtype=np.intp)
    if np.any(codes < 0):
        unknown = values[codes < 0].tolist()
        raise ValueError(
            f"{name} has labels {show_value(unknown[:10])} not in "
            + (what if what is not None else f"classes {show_value(classes)}")
        )
    return codes[inverse.reshape(-1)].reshape(y.shape)


def encode_signs(y, classes, name: str, what: str, *, allow_empty: bool = True) -> np.ndarray:
    """+1.0 where ``y == classes[1]``, -1.0 where ``y == classes[0]``, after :func:`check_labels`.

    The result for a read-only label array of numbers or strings whose memory no writable array
    shares (those of a :class:`~backdoor_curves.data.BackdoorData`) is kept while the array
    lives and returned again, read-only, for the same classes.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels.
    classes : ndarray of shape (2,)
        The two classes, ``classes[1]`` encoded as +1.
    name : str
        Argument name of ``y`` used in error messages.
    what : str
        How messages name the classes.
    allow_empty : bool, default=True
        Accept an empty ``y``.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    TypeError, ValueError
        As :func:`check_labels` and :func:`encode_labels`, naming ``name``.
    """
    classes = np.asarray(classes)

    def compute():
        checked = check_labels(y, name, allow_empty=allow_empty)
        return np.where(encode_labels(checked, classes, name, what) == 1, 1.0, -1.0)

    if not (isinstance(y, np.ndarray) and y.dtype.kind in "biufUS" and classes.dtype != object):
        return compute()
    return _SIGNS.get(y, compute, key=(classes.dtype.str, classes.tobytes(), allow_empty))


def check_binary_labels(y: np.ndarray, name: str = "y") -> np.ndarray:
    """Return the two classes (sorted) of the labels ``y`` (a :func:`check_vector` result).

    Raises a ``ValueError`` naming ``name`` for a continuous target (a regression target given
    to a classifier; the message holds scikit-learn's "Unknown label type: continuous"), for
    labels of unknown type, and for more or fewer than two classes (the message holds
    scikit-learn's "Only binary classification is supported.").
    """
    # integers, booleans and strings are class labels: sklearn's type_of_target (0.3 ms per
    # call, once per fit) is only needed to tell floats and objects apart
    kind = "discrete" if y.dtype.kind in "biuUS" else type_of_target(y, input_name=name)
    if kind in ("continuous", "unknown"):
        example = y[:3].tolist()
        raise ValueError(
            f"{name} must hold discrete class labels, got {kind} values such as {example} "
            f"(Unknown label type: {kind}); a classifier cannot be fitted to a regression "
            "target"
        )
    classes = np.unique(y)
    if classes.size > 2:
        raise ValueError(
            f"{name} must contain exactly two classes (binary learner), got more than two "
            f"classes: {classes.tolist()[:10]}. Only binary classification is supported."
        )
    if classes.size < 2:
        raise ValueError(
            f"{name} must contain exactly two classes (binary learner), got a single class: "
            f"{classes.tolist()} (a classifier cannot be fitted to one class)"
        )
    return classes


def check_sample_weight(sample_weight, n: int, name: str = "sample_weight") -> np.ndarray:
    """Return per-sample weights as a float64 array of length ``n`` (ones if None).

    Refuses non-numeric or boolean weights, a wrong length, negative or non-finite entries, and
    weights that are all zero, each with a message naming ``name``.
    """
    if sample_weight is None:
        return np.ones(n)
    _reject_complex(sample_weight, name)
    sw = check_vector(sample_weight, name)
    if not np.issubdtype(sw.dtype, np.number) or np.issubdtype(sw.dtype, np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {sw.dtype}")
    if sw.shape[0] != n:
        raise ValueError(f"{name} has {sw.shape[0]} entries, expected {n}")
    sw = sw.astype(np.float64)
    if np.any(sw < 0):
        raise ValueError(f"{name} must be non-negative")
    if not np.any(sw > 0):
        raise ValueError(f"{name} must have at least one positive entry: all weights are zero")
    return sw


def _reject_complex(values, name: str) -> None:
    """A ValueError naming ``name`` for complex numbers where real numbers are expected."""
    if not sparse.issparse(values) and np.iscomplexobj(np.asarray(values)):
        raise ValueError(
            f"{name} must hold real numbers: Complex data not supported, got dtype "
            f"{np.asarray(values).dtype}"
        )


def check_same_length(a, b, name_a: str, name_b: str) -> None:
    """Raise if ``a`` and ``b`` do not have the same number of rows."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} have different lengths ({len(a)} != {len(b)})")


def check_int(value, name: str, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) >= ``minimum``.

    Raises a TypeError naming ``name`` for a non-integer (bools, floats, strings, numpy
    booleans) and a ValueError naming it below ``minimum``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {show_value(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {show_value(value)}")
    return value


def check_betas(betas, name: str = "betas") -> np.ndarray:
    """Return ``betas`` as a sorted-as-given 1-D float array inside [0, 1]."""
    if isinstance(betas, numbers.Real) and not isinstance(betas, bool):
        betas = [betas]
    _reject_complex(betas, name)
    arr = check_vector(betas, name, allow_empty=True)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} must contain at least one beta in [0, 1], got none")
    arr = arr.astype(np.float64)
    if np.any(arr < 0) or np.any(arr > 1):
        bad = arr[(arr < 0) | (arr > 1)][0]
        raise ValueError(f"{name} must lie in [0, 1], got {show_value(bad)}")
    return arr


def check_fraction(value, name: str = "fraction") -> float:
    """Return ``value`` if it is a real number strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {show_value(value)}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {show_value(value)}")
    return value


def check_seed(seed, name: str = "random_state", *, allow_none: bool = False) -> int | None:
    """Return ``seed`` as a Python int if it is a non-negative integer; the one check of a seed.

    Raises a TypeError naming ``name`` for anything but an integer (a bool is no seed; numpy
    integers are accepted) and a ValueError for a negative one. With ``allow_none``, None (the
    caller's "no fixed seed") is returned as is.
    """
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        expected = "a non-negative int (a seed)" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {expected}, got {show_value(seed)}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int (a seed), got {seed}")
    return int(seed)


def check_random_state(seed, name: str = "random_state") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from ``None``, a seed (:func:`check_seed`) or a
    Generator (returned as is)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, an int or a numpy Generator, got {show_value(seed)}")
    return np.random.default_rng(check_seed(seed, name))


def check_n_jobs(n_jobs) -> int:
    """A joblib ``n_jobs``: a non-zero int (1 = serial, -1 = all CPUs), not a bool."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(
            f"n_jobs must be an int (1 = serial, -1 = all CPUs), got {show_value(n_jobs)}"
        )
    if n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero int (1 = serial, -1 = all CPUs), got 0")
    return int(n_jobs)
