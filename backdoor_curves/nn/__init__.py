"""The neural-network adapter (torch models): beta-weighted training, finite-difference slopes,
per-sample gradient tracking. torch is imported lazily by the modules that need it, so importing
:mod:`backdoor_curves` never requires the ``torch`` extra."""
