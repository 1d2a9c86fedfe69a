"""Bad inputs of the feature extractors and the data loaders; nothing is downloaded: loaders
whose files are missing must fail at once (``download=False``), naming the folder."""

from __future__ import annotations

import importlib.util
import math

import pytest

pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:  # not imported here: it takes seconds
    pytest.skip("torchvision is not installed", allow_module_level=True)

from bad_input_catalogue import (  # noqa: E402
    Case,
    Edit,
    EntryPoint,
    Map,
    Set,
    as_complex,
    as_object,
    as_strings,
    check_python,
    empty,
    extra_axis,
    negative,
    one_sample,
    register,
    times_255,
    with_inf,
    with_nan,
)

import extractors  # noqa: E402
from backdoor_curves.datasets import (  # noqa: E402
    DatasetUnavailableError,
    load_cifar10,
    load_imagenette,
    load_mnist_multiclass,
    load_mnist_pair,
)
from extractors.images import as_image_batch  # noqa: E402

NAN = math.nan
_WEIGHTS = "nn/weights.py"


def _random_resnet(**kw):
    return extractors.ResNetFeatures(**{"weights": None, "resize": None, "batch_size": 8, **kw})


# ---------------------------------------------------------------------------- extractors
def extractor_baseline(ctx):
    return {
        "arch": "resnet18",
        "weights": None,
        "device": "cpu",
        "batch_size": 8,
        "resize": None,
        "normalize": True,
        "cache_dir": None,
        "random_state": 0,
    }


FIT_CASES = [
    Case("out_of_range", "batch_size", 0),
    Case("string", "batch_size", "8"),
    Case("out_of_range", "resize", 8),
    Case("negative_param", "resize", -224),
    Case("string", "normalize", "yes"),
    Case("negative_param", "random_state", -1),
    Case("wrong_type", "weights", 3),
    Case("unknown_option", "weights", "IMAGENET9"),
    Case("bad_file", "weights", "/nonexistent/resnet.pth", error=FileNotFoundError),
    Case("unknown_option", "arch", "resnet34"),
    Case("unknown_option", "device", "tpu"),
    Case("wrong_type", "cache_dir", 3),
]


def transform_baseline(ctx):
    _, _, X_test, _ = ctx.images
    return {"X": X_test[:4]}


def _fitted(ctx):
    if "resnet" not in ctx.__dict__:
        ctx.__dict__["resnet"] = _random_resnet().fit()
    return ctx.__dict__["resnet"]


TRANSFORM_CASES = [
    Case("nan", "X", Map(with_nan)),
    Case("inf", "X", Map(with_inf)),
    Case("image_range", "X", Map(times_255)),
    Case("image_range", "X", Map(negative), label="negative"),
    Case("empty", "X", Map(empty)),
    Case("wrong_dimensions", "X", Map(one_sample), label="one_fewer"),
    Case("wrong_dimensions", "X", Map(extra_axis), label="two_channels"),
    Case("wrong_dimensions", "X", Map(lambda X: X[..., None, None]), label="five_axes"),
    Case("string", "X", Map(as_strings)),
    Case("complex", "X", Map(as_complex), error=TypeError),
    Case("object", "X", Map(as_object)),
    Case("wrong_type", "X", None),
]


def backdoor_data_baseline(ctx):
    return {
        "dataset": "mnist",
        "extractor": "none",
        "n_train": 40,
        "n_test": 20,
        "fraction": 0.1,
        "size": 3,
        "random_state": 0,
        "download": False,
    }


LOAD_BACKDOOR_DATA_CASES = [
    Case("fraction_bounds", "fraction", 0.0, label="0"),
    Case("fraction_bounds", "fraction", 1.0, label="1"),
    Case("nan", "fraction", NAN),
    Case("string", "fraction", "0.1"),
    Case("unknown_option", "dataset", "cifar"),
    Case("unknown_option", "extractor", "vgg"),
    Case("unknown_option", "trigger", Edit(lambda kw: {**kw, "trigger": "badnet"})),
    Case("unknown_option", "fractoin", Edit(lambda kw: {**kw, "fractoin": kw.pop("fraction")})),
    Case("trigger_too_large", "size", 29),
    Case("negative_param", "size", -1),
    Case("one_class", "classes", (7, 7)),
    Case("three_classes", "classes", (7, 1, 3)),
    Case("out_of_range", "n_train", 1),
    Case("string", "n_test", "20"),
    Case("negative_param", "random_state", -1),
    Case("negative_param", "trigger_seed", -1),
    Case(
        "empty",
        "root",
        Edit(lambda kw: {**kw, "dataset": "cifar10", "root": None}),
        label="missing",
    ),
    Case("string", "download", "yes"),
    Case(
        "bad_file",
        "root",
        Edit(lambda kw: {**kw, "dataset": "cifar10", "root": kw.pop("ctx").empty_dir}),
        error=DatasetUnavailableError,
        label="missing_files",
    ),
    Case(
        "wrong_type",
        "weights",
        Edit(lambda kw: {**kw, "extractor": "resnet18", "weights": 3}),
    ),
]


# ---------------------------------------------------------------------------- data sets
MNIST_PAIR_CASES = [
    Case("one_class", "digits", (7, 7)),
    Case("three_classes", "digits", (7, 1, 3)),
    Case("out_of_range", "digits", (7, 12)),
    Case("string", "digits", (7, "1")),
    Case("wrong_type", "digits", 7),
    Case("fraction_bounds", "test_size", 0.0, label="0"),
    Case("fraction_bounds", "test_size", 1.0, label="1"),
    Case("nan", "test_size", NAN),
    Case("negative_param", "random_state", -1),
]

MNIST_MULTICLASS_CASES = [
    Case("out_of_range", "n_train", 5),
    Case("string", "n_test", "10"),
    Case("out_of_range", "pool", 3),
    Case("negative_param", "random_state", -1),
]


def image_loader_baseline(classes):
    def baseline(ctx):
        return {
            "root": ctx.empty_dir,
            "classes": classes,
            "split": "train",
            "n": 10,
            "random_state": 0,
            "download": False,
        }

    return baseline


def offline(load):
    """Call a loader of files that are not on this machine: the missing files are the valid
    baseline's only error (checked by the ``bad_file`` case); a bad argument must be named first."""

    def call(ctx, kw):
        return load(**kw)

    return call


def image_loader_cases(unknown_class: str, two: tuple, three: tuple) -> list[Case]:
    return [
        Case("one_class", "classes", (two[0], two[0])),
        Case("three_classes", "classes", three),
        Case("unknown_option", "classes", (two[0], unknown_class)),
        Case("unknown_option", "split", "val"),
        Case("out_of_range", "n", 1),
        Case("negative_param", "n", -10),
        Case("string", "n", "10"),
        Case("wrong_type", "root", None),
        Case("wrong_type", "root", 3, label="int"),
        Case("negative_param", "random_state", -1),
        Case("string", "download", "no"),
        Case("bad_file", "root", Set("/nonexistent/data"), error=DatasetUnavailableError),
    ]


def _baseline_offline(entry_call):
    """The image loaders' baselines lack their files: DatasetUnavailableError, naming root."""

    def check(ctx, kw):
        with pytest.raises(DatasetUnavailableError, match="root="):
            entry_call(ctx, kw)

    return check


ENTRIES = [
    EntryPoint(
        "make_extractor",
        lambda ctx: {"name": "resnet18", "weights": None, "resize": None},
        lambda ctx, kw: extractors.make_extractor(**kw).fit(),
        [
            Case("unknown_option", "name", "vgg", names="extractor"),
            Case("wrong_type", "name", None, names="extractor"),
            Case(
                "unknown_option",
                "wieghts",
                Edit(lambda kw: {**kw, "wieghts": None}),
                error=TypeError,
            ),
        ],
    ),
    EntryPoint(
        "ResNetFeatures.fit",
        extractor_baseline,
        lambda ctx, kw: extractors.ResNetFeatures(**kw).fit(),
        FIT_CASES,
    ),
    EntryPoint(
        "AlexNetFeatures.fit",
        lambda ctx: {"weights": None, "resize": 64},
        lambda ctx, kw: extractors.AlexNetFeatures(**kw).fit(),
        [Case("out_of_range", "resize", 32), Case("wrong_type", "weights", 3.0)],
    ),
    EntryPoint(
        "ResNetFeatures.transform",
        transform_baseline,
        lambda ctx, kw: _fitted(ctx).transform(**kw),
        TRANSFORM_CASES,
    ),
    EntryPoint(
        "load_backdoor_data",
        lambda ctx: {**backdoor_data_baseline(ctx), "ctx": ctx},
        lambda ctx, kw: extractors.load_backdoor_data(
            **{k: v for k, v in kw.items() if k != "ctx"}
        ),
        LOAD_BACKDOOR_DATA_CASES,
    ),
    EntryPoint(
        "resolve_weights",
        lambda ctx: {"arch": "resnet18", "weights": None},
        lambda ctx, kw: extractors.resolve_weights(**kw),
        [
            Case("unknown_option", "arch", "vgg"),
            Case("wrong_type", "weights", 3),
            Case("unknown_option", "weights", "IMAGENET9"),
            Case("bad_file", "weights", "/nonexistent/w.pth", error=FileNotFoundError),
        ],
    ),
    EntryPoint(
        "weights_file_name",
        lambda ctx: {"arch": "resnet18", "name": "imagenet"},
        lambda ctx, kw: extractors.weights_file_name(**kw),
        [
            Case(
                "unknown_option",
                "arch",
                "vgg",
            ),
            Case("unknown_option", "name", "IMAGENET9", names="weights"),
        ],
    ),
    EntryPoint(
        "load_mnist_pair",
        lambda ctx: {"digits": (7, 1), "test_size": 0.25, "random_state": 0},
        lambda ctx, kw: load_mnist_pair(**kw),
        MNIST_PAIR_CASES,
    ),
    EntryPoint(
        "load_mnist_multiclass",
        lambda ctx: {"n_train": 50, "n_test": 20, "pool": 2, "random_state": 0},
        lambda ctx, kw: load_mnist_multiclass(**kw),
        MNIST_MULTICLASS_CASES,
    ),
    EntryPoint(
        "load_cifar10",
        image_loader_baseline(("airplane", "frog")),
        offline(load_cifar10),
        image_loader_cases("unicorn", ("cat", "dog"), ("cat", "dog", "frog")),
    ),
    EntryPoint(
        "load_imagenette",
        image_loader_baseline(("tench", "garbage truck")),
        offline(load_imagenette),
        image_loader_cases("unicorn", ("tench", "parachute"), ("tench", "parachute", "golf ball")),
    ),
]
#: Baselines that cannot run on this machine (their data files are absent; nothing downloads).
BASELINE_CHECKS = {
    # transform's own check of X (building the network would import torchvision: seconds)
    "ResNetFeatures.transform": lambda ctx, kw: as_image_batch(**kw, name="X"),
    "load_cifar10": _baseline_offline(offline(load_cifar10)),
    "load_imagenette": _baseline_offline(offline(load_imagenette)),
}

BASELINES, CASES = register(ENTRIES)


@pytest.mark.parametrize("entry", BASELINES)
def test_baseline_is_valid(ctx, entry):
    """The valid call each case spoils runs (the image loaders: fail only for missing files)."""
    check = BASELINE_CHECKS.get(entry.name, entry.call)
    check(ctx, entry.baseline(ctx))


@pytest.mark.parametrize("entry, case", CASES)
def test_bad_input(ctx, entry, case):
    check_python(ctx, entry, case)
