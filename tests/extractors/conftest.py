"""Fixtures of the extractor tests: an empty TORCH_HOME (no weights, so no download) and a
network that refuses every connection."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path_factory, monkeypatch) -> Path:
    """Every extractor test sees an empty torchvision weight cache."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def offline(monkeypatch):
    """Make every network connection fail at once, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
