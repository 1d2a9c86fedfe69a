"""backdoor_curves.nn.models: SmallCNN and the torchvision ResNets with a new head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")

from backdoor_curves.nn.models import SmallCNN, resnet  # noqa: E402
from backdoor_curves.nn.train import init_model  # noqa: E402


@pytest.mark.parametrize("size", [28, 14])
@pytest.mark.parametrize("channels", [1, 3])
def test_small_cnn_shapes_at_both_digit_sizes(size, channels):
    model = SmallCNN(n_classes=7, in_channels=channels, width=4)
    out = model(torch.zeros(5, channels, size, size))
    assert out.shape == (5, 7)


def test_small_cnn_layers_and_size():
    model = SmallCNN()
    names = [name for name, _ in model.named_children()]
    assert names == ["conv1", "conv2", "fc"]
    # conv1 (1*8*9 + 8) + conv2 (8*16*9 + 16) + fc (16*9*10 + 10): the same at 28x28 and 14x14
    assert sum(p.numel() for p in model.parameters()) == 80 + 1168 + 1450
    assert model.conv2.out_channels == 16 and model.fc.in_features == 144


def test_small_cnn_forward_equals_its_layers():
    # the architecture as documented, rebuilt from the layers with plain torch calls
    model = init_model(lambda: SmallCNN(width=3), seed=1)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    F = torch.nn.functional
    h = F.max_pool2d(torch.relu(model.conv1(x)), 2)
    h = F.max_pool2d(torch.relu(model.conv2(h)), 2)  # 7x7
    # adaptive average pooling 7 -> 3: windows [0, 3), [2, 5), [4, 7) on each axis
    windows = [(0, 3), (2, 5), (4, 7)]
    pooled = torch.stack(
        [torch.stack([h[:, :, a:b, c:d].mean(dim=(2, 3)) for c, d in windows], -1)
         for a, b in windows], -2,
    )  # fmt: skip
    expected = model.fc(pooled.flatten(1))
    torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"n_classes": 1}, "n_classes", ValueError),
        ({"n_classes": 2.0}, "n_classes", TypeError),
        ({"in_channels": 0}, "in_channels", ValueError),
        ({"width": True}, "width", TypeError),
    ],
)
def test_small_cnn_rejects_bad_arguments(kwargs, name, error):
    with pytest.raises(error, match=name):
        SmallCNN(**kwargs)


def test_resnet18_new_head_and_normalized_input():
    model = init_model(lambda: resnet("resnet18", n_classes=4), seed=0)
    assert model.fc.out_features == 4 and model.fc.in_features == 512
    assert "input_mean" not in model.state_dict()  # a torchvision-compatible state dict
    model.eval()
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (2, 4)
    # the pre-hook: grayscale repeated to 3 channels, then ImageNet normalisation
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    plain = resnet("resnet18", n_classes=4, normalize=False)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    torch.testing.assert_close(out, plain((x.expand(-1, 3, -1, -1) - mean) / std))


def test_resnet_loads_a_local_state_dict_and_replaces_the_head(tmp_path):
    torch.manual_seed(3)
    source = tv.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    model = resnet("resnet18", n_classes=3, weights=path)
    for name, value in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(model.state_dict()[name], value), name
    assert model.fc.weight.shape == (3, 512)


def test_resnet_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"resnet18-f37072fd\.pth"):
        resnet("resnet18", weights="imagenet")


def test_resnet_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        resnet("resnet34")
    with pytest.raises(ValueError, match="n_classes"):
        resnet(n_classes=1)
    with pytest.raises(TypeError, match="weights"):
        resnet(weights=3)
    bad = tmp_path / "bad.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a state dict"):
        resnet(weights=bad)
