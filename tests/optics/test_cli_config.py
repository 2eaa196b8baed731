"""optics.cli_config: jsonargparse parsers with --config and privcam's one-line errors."""

import pytest

from optics.cli_config import ArgumentParser
from optics.cli_errors import finite_float, run_cli


def _main(argv):
    p = ArgumentParser(prog="tool")
    p.add_argument("--out", required=True)
    p.add_argument("--levels", type=int, nargs="+", default=[4, 8])
    p.add_argument("--scale", type=finite_float, default=1.0, help="a factor")
    args = p.parse_args(argv)
    print(f"out={args.out} levels={args.levels} scale={args.scale}")
    return 0


def test_config_file_then_command_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("out: from_file\nlevels: [2, 3]\nscale: 2.5\n")
    assert run_cli(_main, ["--config", str(cfg), "--out", "typed"]) == 0
    assert capsys.readouterr().out.strip() == "out=typed levels=[2, 3] scale=2.5"


@pytest.mark.parametrize(
    "argv, names",
    [
        ([], "required: --out"),
        (["--out", "o", "--scale", "nan"], "--scale"),
        (["--out", "o", "--levels", "x"], "--levels"),
    ],
)
def test_usage_errors_are_one_line_naming_the_option(argv, names, capsys):
    assert run_cli(_main, argv) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and names in errors[0] and errors[0].startswith("error: tool:")


def test_help_lists_debug_and_config_without_function_reprs(capsys):
    assert run_cli(_main, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "--debug" in out and "--config" in out and "<function" not in out
