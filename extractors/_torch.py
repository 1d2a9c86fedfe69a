"""The choice of torch device for the extractors.

:func:`resolve_device` lives in :mod:`backdoor_curves.utils` (one copy, shared with the
neural-network adapter); torch is imported lazily there, so ``import extractors`` (like ``import
backdoor_curves``) never imports it.
"""

from __future__ import annotations

from backdoor_curves.utils import resolve_device

__all__ = ["resolve_device"]
