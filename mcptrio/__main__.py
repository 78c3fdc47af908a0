"""``python -m mcptrio``: see ``python -m mcptrio --help``."""

from ._app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
