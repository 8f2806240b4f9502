"""One-line user-facing errors for the command-line tools."""

from __future__ import annotations

import sys
from collections.abc import Callable


class PackError(Exception):
    """Bad input or a failed export step; str() is one line naming the file and what is wrong."""

    def __init__(self, where: object, what: str) -> None:
        self.where = str(where)
        self.what = " ".join(str(what).split())  # one line, whatever the cause said
        super().__init__(f"{self.where}: {self.what}")


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run `main`; a PackError becomes `error: <file>: <what>` on stderr and exit status 2."""
    try:
        return main(argv)
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
