"""jsonargparse parsers with privcam's command-line contract (see ``optics/cli_errors.py``).

:class:`ArgumentParser` is ``jsonargparse.ArgumentParser`` plus ``--config`` (YAML files whose
keys are the long option names with underscores; options after it on the command line win,
``--print_config`` shows the effective values), ``--debug`` in the help, and usage errors as
one line ``error: <prog>: <message> (see `<prog> --help`)`` with exit status 2, naming options
as the user types them (``--out``, not ``out``). Run the entry point with
``optics.cli_errors.run_cli`` as before.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from typing import Any, NoReturn

import jsonargparse

from .cli_errors import DEBUG_ENV, EXIT_BAD_INPUT

__all__ = ["ArgumentParser"]


class _HelpFormatter(jsonargparse.DefaultHelpFormatter):
    """jsonargparse's help without the repr of validating functions ("type: <function …>")."""

    def _get_type_str(self, action: Any) -> str | None:
        if inspect.isfunction(action.type):  # finite_float & co: the help text says it
            return None
        return super()._get_type_str(action)


class _RawHelpFormatter(argparse.RawDescriptionHelpFormatter, _HelpFormatter):
    """Keeps the description's line breaks (module docstrings with lists)."""


class ArgumentParser(jsonargparse.ArgumentParser):
    """jsonargparse with one-line errors, ``--debug`` and ``--config`` (see module docstring)."""

    def __init__(
        self, *args: Any, config: bool = True, raw_description: bool = False, **kwargs: Any
    ) -> None:
        formatter = _RawHelpFormatter if raw_description else _HelpFormatter
        kwargs.setdefault("formatter_class", formatter)
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)"
        )
        if config:
            self.add_argument(
                "--config",
                action=jsonargparse.ActionConfigFile,
                help="YAML file of option values (keys: the long option names with "
                "underscores); options after it win",
            )

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
        prog = self.prog.replace(" [options]", "")  # jsonargparse's subcommand prog
        print(f"error: {prog}: {self._flags(text)} (see `{prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)

    def _flags(self, text: str) -> str:
        """jsonargparse names options by their destination ("required: out", 'key "levels"');
        say them as typed (--out, --levels)."""
        flags = {a.dest: a.option_strings[0] for a in self._actions if a.option_strings}
        for action in self._actions:  # subcommands: jsonargparse says "prepare.root"
            choices = getattr(action, "choices", None)
            for name, sub in choices.items() if isinstance(choices, dict) else ():
                if isinstance(sub, argparse.ArgumentParser):
                    flags.update(
                        {
                            f"{name}.{a.dest}": a.option_strings[0]
                            for a in sub._actions
                            if a.option_strings
                        }
                    )

        def required(match: re.Match) -> str:
            names = [flags.get(n.strip(), n.strip()) for n in match.group(1).split(",")]
            return f"the following arguments are required: {', '.join(names)}"

        text = re.sub(r"the following arguments are required: (.+)$", required, text)
        return re.sub(r'key "([\w.]+)"', lambda m: flags.get(m.group(1), m.group(0)), text)
