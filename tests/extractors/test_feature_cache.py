"""FeatureCache: hit, miss, corrupted and partial files; the extractor's use of it."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest
from extractor_helpers import empty_torch_home, offline  # noqa: F401

from extractors.cache import CacheCorruptionWarning, FeatureCache, cache_key


@pytest.fixture
def cache(tmp_path):
    return FeatureCache(tmp_path / "cache")


@pytest.fixture
def feats():
    return np.random.default_rng(0).random((5, 7)).astype(np.float32)


def test_roundtrip_and_miss(cache, feats):
    assert cache.load("k") is None
    cache.save("k", feats, meta={"extractor": "x"})
    out = cache.load("k")
    np.testing.assert_array_equal(out, feats)
    assert out.dtype == np.float32 and out.flags.writeable
    assert [p.name for p in cache.directory.iterdir()] == ["k.feat"]  # no temporary files left


def test_key_depends_on_meta_and_every_pixel():
    x = np.zeros((2, 4, 4), np.float32)
    k = cache_key({"extractor": "alexnet", "weights": "a"}, x)
    y = x.copy()
    y[1, 3, 3] = 1e-7
    assert k == cache_key({"weights": "a", "extractor": "alexnet"}, x.copy())
    assert k != cache_key({"extractor": "alexnet", "weights": "b"}, x)
    assert k != cache_key({"extractor": "alexnet", "weights": "a"}, y)
    assert k != cache_key({"extractor": "alexnet", "weights": "a"}, x.reshape(2, 16))


def _corrupt_payload(blob: bytes) -> bytes:
    b = bytearray(blob)
    b[-3] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_corrupt_payload, "checksum"),
        (lambda b: b[:-10], "payload has"),  # partial write
        (lambda b: b[:20], "header"),
        (lambda b: b"XXXXXXXX" + b[8:], "magic"),
        (lambda b: b"", "magic"),
    ],
)
def test_corrupted_file_is_detected_deleted_and_missed(cache, feats, damage, reason):
    cache.save("k", feats)
    path = cache.path("k")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(CacheCorruptionWarning, match=reason):
        assert cache.load("k") is None
    assert not path.exists()


def test_file_under_another_key_is_rejected(cache, feats):
    cache.save("a", feats)
    cache.path("a").rename(cache.path("b"))
    with pytest.warns(CacheCorruptionWarning, match="key"):
        assert cache.load("b") is None


def test_object_arrays_are_refused_on_save_and_on_load(cache, feats):
    """No pickle either way: an object array cannot be saved, and a header naming an object
    dtype (a file from elsewhere) is treated as corrupted, never interpreted."""
    with pytest.raises(TypeError, match="object dtype"):
        cache.save("k", np.array([{"a": 1}, None], dtype=object))
    assert not cache.directory.exists() or not list(cache.directory.iterdir())
    cache.save("k", feats)
    path = cache.path("k")
    blob = path.read_bytes()
    start = 16
    (n,) = struct.unpack("<Q", blob[8:16])
    header = json.loads(blob[start : start + n])
    header["dtype"] = "|O"
    header["shape"] = [len(blob) - start - n]
    forged = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(blob[:8] + struct.pack("<Q", len(forged)) + forged + blob[start + n :])
    with pytest.warns(CacheCorruptionWarning, match="object dtype"):
        assert cache.load("k") is None
    assert not path.exists()


@pytest.mark.parametrize("key", ["../escape", "a/b", ".hidden", "", "k\x00", None])
def test_keys_are_single_file_names(cache, feats, key):
    with pytest.raises(ValueError, match="key must be"):
        cache.save(key, feats)
    with pytest.raises(ValueError, match="key must be"):
        cache.load(key)
    assert not cache.directory.exists()


class TestExtractorCache:
    @pytest.fixture(autouse=True)
    def _torch(self):
        pytest.importorskip("torch")
        pytest.importorskip("torchvision")

    def _ext(self, tmp_path):
        from extractors import ResNetFeatures

        return ResNetFeatures("resnet18", weights=None, resize=32, cache_dir=tmp_path).fit()

    def test_second_extraction_is_a_file_read(self, tmp_path, monkeypatch):
        X = np.random.default_rng(1).random((3, 16, 16))
        first = self._ext(tmp_path).transform(X)
        assert len(list(tmp_path.glob("*.feat"))) == 1
        ext = self._ext(tmp_path)

        def boom(images):
            raise AssertionError("features recomputed instead of read from the cache")

        monkeypatch.setattr(ext, "_extract", boom)
        np.testing.assert_array_equal(ext.transform(X), first)

    def test_different_images_or_weights_miss(self, tmp_path):
        from extractors import ResNetFeatures

        X = np.random.default_rng(1).random((3, 16, 16))
        self._ext(tmp_path).transform(X)
        self._ext(tmp_path).transform(X[:2])
        ResNetFeatures(
            "resnet18", weights=None, resize=32, cache_dir=tmp_path, random_state=5
        ).fit().transform(X)
        assert len(list(tmp_path.glob("*.feat"))) == 3

    def test_corrupted_cache_file_is_rebuilt(self, tmp_path):
        X = np.random.default_rng(1).random((3, 16, 16))
        first = self._ext(tmp_path).transform(X)
        (path,) = tmp_path.glob("*.feat")
        path.write_bytes(_corrupt_payload(path.read_bytes()))
        with pytest.warns(CacheCorruptionWarning):
            again = self._ext(tmp_path).transform(X)
        np.testing.assert_array_equal(again, first)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(self._ext(tmp_path).transform(X), first)
