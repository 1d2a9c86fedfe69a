"""``python -m backdoor_curves``: the same command line as ``backdoor-curves``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
