"""One error style for every privcam command-line entry point (standard library only).

Contract (``python train.py``, ``python evaluate.py``, ``python -m optics.export``,
``python -m captioning.data``):

* an expected error — bad input (:class:`ValueError`, :class:`OSError`, the data and checkpoint
  errors, which subclass them) — prints one line ``error: <what, which value/file/option, the
  fix>`` to stderr and exits with status 2;
* a failure during the work (:class:`WorkFailed`, e.g. a non-finite training loss) prints the
  same one line and exits with status 1;
* ``--debug`` anywhere on the command line, or ``PRIVCAM_DEBUG=1`` in the environment, prints
  the traceback before that line;
* anything else is a bug and keeps its traceback.

Every entry point, ``captioning``'s and ``attacks``' included, imports this one module (the
exception to docs/design.md's rule that the captioning core does not import ``optics``);
``tests/test_bad_input.py`` checks that no copy of it reappears.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "DEBUG_ENV",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "WorkFailed",
    "check_output_dir",
    "finite_float",
    "positive_int",
    "run_cli",
]

DEBUG_ENV = "PRIVCAM_DEBUG"
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


class WorkFailed(RuntimeError):
    """The input was valid but the work failed (exit status 1); the message says where."""


def one_line(err: BaseException) -> str:
    """The error's message on one line (empty messages fall back to the error's type)."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    return text or type(err).__name__


def _debug(argv: list[str]) -> tuple[bool, list[str]]:
    env = os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return env or "--debug" in argv, [a for a in argv if a != "--debug"]


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` with privcam's error contract; returns the exit status (also for
    argparse's usage errors and ``--help``, so in-process callers get a status, not SystemExit)."""
    debug, args = _debug(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(main(args) or 0)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2, already printed)
        if stop.code is None or isinstance(stop.code, int):
            return int(stop.code or 0)
        print(f"error: {stop.code}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("error: interrupted", file=sys.stderr)
        return 130
    except WorkFailed as err:
        status = EXIT_FAILED
        failure: BaseException = err
    except BAD_INPUT_ERRORS as err:
        status = EXIT_BAD_INPUT
        failure = err
    if debug:
        traceback.print_exception(failure)
    hint = "" if debug else f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
    print(f"error: {one_line(failure)}{hint}", file=sys.stderr)
    return status


def positive_int(text: str) -> int:
    """argparse ``type`` for counts: an integer >= 1 (0 or negative counts are errors)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}; leave it out for the default")
    return value


def finite_float(text: str) -> float:
    """argparse ``type`` for real-valued options: a finite number (NaN and inf are errors)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def check_output_dir(path: str | Path, option: str) -> Path:
    """Create ``path`` (and parents) and check a file can be written there, before long work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} exists and is a file; pass a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        reason = err.strerror or one_line(err)
        raise PermissionError(
            f"{option} {path} is not writable ({reason}); choose another {option}"
        ) from err
    return path
