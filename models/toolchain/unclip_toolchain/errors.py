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


def quiet_libraries() -> None:
    """No progress bars, deprecation notices or info logs from transformers/diffusers: stderr is for our errors."""
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore")
    if "transformers" not in sys.modules and "diffusers" not in sys.modules:
        return  # they read the environment variables above when imported; importing them here costs seconds
    try:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    except ImportError:  # reported by the caller when it needs the library
        pass
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run `main`; a PackError becomes `error: <file>: <what>` on stderr and exit status 2."""
    quiet_libraries()
    try:
        return main(argv)
    except PackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
