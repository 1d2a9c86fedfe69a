"""Every public function, class and method has a numpydoc docstring (checked by numpydoc).

What is checked: every name in the ``__all__`` of every public module of ``backdoor_curves`` and
``extractors`` (packages and their modules, found by walking the packages; a module is private when
a component of its dotted name starts with ``_``, e.g. ``backdoor_curves._io`` or
``backdoor_curves.paths._svm_step``) that is a function or a class defined in these two packages,
and every public method of those classes: the functions, static methods and class methods defined
on the class or on one of its bases from these packages (a method inherited by several public
classes is checked once). Each is validated with :func:`numpydoc.validate.validate` for the codes in
:data:`CHECKS`; all failures are reported in one list, ``file:line name: CODE message``.

Exclusions:

- names that are not functions or classes (constants such as ``CURVE_COLUMNS``, ``TRIGGERS``,
  ``LOSSES``) and anything re-exported from a third-party package;
- private names (leading ``_``) and dunder methods, so ``__init__`` too: a class's constructor
  parameters are checked against the *class* docstring (numpydoc's convention), and
  dataclass-generated methods (``__eq__``, ``__repr__`` ...) are never public;
- properties (documented by their one-line docstring, which numpydoc cannot check for parameters);
- methods inherited from scikit-learn, torch or the standard library (``get_params``,
  ``set_params``, ``score``, ``fit_transform``, ``set_output``, ``__sklearn_tags__`` ...): only
  methods defined in ``backdoor_curves`` or ``extractors`` are checked;
- the constructor of a :class:`typing.Protocol` (its signature is ``(*args, **kwargs)``), so PR01
  and PR02 are not applied to Protocol classes themselves (their methods are checked).

Two conventions beyond plain numpydoc:

- a dataclass may document its fields (its constructor parameters) in an ``Attributes`` section
  instead of ``Parameters``, as the frozen result dataclasses do;
- a method without a docstring of its own that overrides a documented method of a base class is
  checked with the inherited docstring (what Sphinx autodoc shows for it).

A single check can be silenced on a definition with numpydoc's own comment, ``# numpydoc
ignore=RT01`` on the ``def`` or ``class`` line, which should say why in the same comment.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import typing

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import get_doc_object  # noqa: E402

PACKAGES = ("backdoor_curves", "extractors")

#: The numpydoc error codes enforced (see ``numpydoc.validate.ERROR_MSGS``).
CHECKS = {
    "GL06": "unknown section (does not render on the documentation site)",
    "GL07": "sections in the wrong order",
    "GL08": "no docstring",
    "SS01": "no one-line summary",
    "SS03": "summary does not end with a period",
    "SS06": "summary longer than one line (the autosummary tables show that line)",
    "PR01": "a parameter of the signature is not documented",
    "PR02": "a documented parameter is not in the signature",
    "PR03": "parameters documented in another order than the signature's",
    "PR04": "a documented parameter has no type",
    "PR07": "a documented parameter has no description",
    "PR10": "no space before the colon between a parameter's name and its type",
    "RT01": "no Returns section in a function that returns something",
}


def _is_private(module_name: str) -> bool:
    return any(part.startswith("_") for part in module_name.split("."))


def public_modules():
    """The public modules of :data:`PACKAGES`, packages included, in import order."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        # a test folder named like a package (tests/extractors) on sys.path would shadow it as a
        # namespace package; pytest's pythonpath holds only tests/helpers for that reason
        assert getattr(root, "__file__", None), (
            f"{package} was imported as a namespace package from {list(root.__path__)}; "
            "run the tests with `python -m pytest` from the repository root"
        )
        yield root
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if not _is_private(info.name):
                yield importlib.import_module(info.name)


def _own(obj) -> bool:
    return getattr(obj, "__module__", "").split(".")[0] in PACKAGES


def _methods(cls):
    """(name, function) of the public methods ``cls`` defines or inherits from our own bases."""
    seen = set()
    for base in cls.__mro__:
        if not _own(base):
            continue
        for name, attr in vars(base).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, staticmethod | classmethod):
                attr = attr.__func__
            if inspect.isfunction(attr):  # excludes properties and non-callables
                yield name, attr


def public_objects() -> dict:
    """Dotted display name -> function or class, for everything this test checks."""
    found, by_id = {}, set()

    def add(name, obj):
        if id(obj) not in by_id:
            by_id.add(id(obj))
            found[name] = obj

    classes = []
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or not _own(obj):
                continue
            add(f"{obj.__module__}.{obj.__qualname__}", obj)
            if inspect.isclass(obj):
                classes.append(obj)
    # methods after all classes, so that a method defined on a public base (BaseLearner.fit) is
    # reported under that base rather than under the first subclass met
    classes.sort(key=lambda c: len(c.__mro__))
    for cls in classes:
        for name, func in _methods(cls):
            add(f"{cls.__module__}.{cls.__qualname__}.{name}", func)
    return found


class _Validator(numpydoc_validate.Validator):
    """numpydoc's validator with the two conventions of this module's docstring."""

    def __init__(self, obj_name):
        super().__init__(get_doc_object(obj_name))
        if not self.raw_doc and inspect.isfunction(self.obj):
            inherited = inspect.getdoc(self.obj)  # searches the bases for an overridden method
            if inherited:
                self.raw_doc = inherited
                self.clean_doc = inherited
                self.doc = get_doc_object(self.obj, doc=inherited)

    @property
    def signature_parameters(self):
        if inspect.isclass(self.obj) and getattr(self.obj, "_is_protocol", False):
            return tuple(self.doc_all_parameters)  # no constructor to check
        return super().signature_parameters

    @property
    def doc_all_parameters(self):
        params = self._doc_parameters(["Parameters", "Other Parameters"])
        if inspect.isclass(self.obj) and dataclasses.is_dataclass(self.obj):
            fields = [f.name for f in dataclasses.fields(self.obj) if f.init]
            attributes = self._doc_parameters(["Attributes"])
            for name in fields:
                if name not in params and name in attributes:
                    params[name] = attributes[name]
            order = {name: k for k, name in enumerate(fields)}
            params = dict(sorted(params.items(), key=lambda kv: order.get(kv[0], len(order))))
        return params


def docstring_errors(name: str, obj) -> list[str]:
    """``file:line name: CODE message`` for each enforced numpydoc error of ``obj``."""
    result = numpydoc_validate.validate(obj, validator_cls=_Validator)
    where = f"{result['file']}:{result['file_line']}"
    return [f"{where} {name}: {code} {msg}" for code, msg in result["errors"] if code in CHECKS]


def test_collection_finds_the_public_api():
    objects = public_objects()
    assert len(objects) > 100
    # a few names that must be there: a function, a class, a method, a method of a base class
    for name in (
        "backdoor_curves.measures.curves.learning_curve",
        "backdoor_curves.attacks.triggers.BadNetsPatch",
        "backdoor_curves.attacks.triggers.BadNetsPatch.apply",
        "backdoor_curves.learners.base.BaseLearner.fit",
        "extractors.cache.FeatureCache.load",
    ):
        assert name in objects
    assert not any(name.rsplit(".", 1)[-1].startswith("_") for name in objects)
    # inherited from scikit-learn (not ours to document); BaseLearner.score is our own override
    assert not any(name.endswith((".get_params", ".set_params")) for name in objects)


def test_public_docstrings_follow_numpydoc():
    errors = [e for name, obj in public_objects().items() for e in docstring_errors(name, obj)]
    codes = "\n".join(f"  {code}: {why}" for code, why in CHECKS.items())
    assert not errors, (
        f"{len(errors)} numpydoc errors in public docstrings (enforced codes:\n{codes}\n):\n"
        + "\n".join(errors)
    )


def test_protocols_are_recognized():
    # the Protocol exclusion relies on typing's private marker; fail loudly if it disappears
    class P(typing.Protocol):
        def f(self): ...

    assert getattr(P, "_is_protocol", False)
