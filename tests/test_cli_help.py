"""The command line's own surface: --help, -h, --version, a bare `facealgebra`, --debug anywhere, and which
failures count as "interrupted"."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest
from typer.main import get_command

from conftest import REPO, run_cli
from facealgebra import __version__, cli

COMMANDS = sorted(get_command(cli.app).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_flags_bare_and_one_ellipsis(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.startswith(f"Usage: facealgebra {command}")
    assert "<bool>" not in text  # a flag takes no value, so it shows none
    assert "...]..." not in text and "...}..." not in text


def test_every_option_and_argument_says_what_it_does():
    group = get_command(cli.app)
    missing = [f"{name} {param.name}" for name, command in [("", group), *group.commands.items()]
               for param in command.params if not param.help]
    assert not missing


def test_version_and_short_help():
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.decode() == f"facealgebra {__version__}\n"
    assert run_cli("-h").stdout == run_cli("--help").stdout
    short = run_cli("train", "-h")
    assert short.returncode == 0 and short.stdout.decode().startswith("Usage: facealgebra train")


def test_bare_facealgebra_prints_the_help_without_an_error_line():
    result = run_cli()
    assert result.returncode == 2  # click's convention for a group called without a command
    assert result.stdout == b""
    assert result.stderr.startswith("Usage: facealgebra") and "error:" not in result.stderr


def test_debug_works_after_the_command_too(tmp_path):
    for args in (["--debug", "export", "orl", "-o", "x.bin"], ["export", "orl", "-o", "x.bin", "--debug"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Traceback" in result.stderr
        assert result.stderr.splitlines()[-1] == "error: -o x.bin: a model file ends in .safetensors"


def test_help_version_a_bare_call_and_usage_errors_do_not_import_torch():
    code = ("import sys\nfrom facealgebra.cli import main\n"
            "for argv in ([], ['--version'], ['-h'], ['train', '-h'], ['arith', '--help'], ['align', '--help'],\n"
            "             ['train', '--preset', 'x', '--data', 'y', '--out', 'z'], ['export', '--help'],\n"
            "             ['arith', 'a.png', '-o', 'o.png', '--align', 'maybe'], ['export', 'orl', '-o', 'orl.bin']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


# ---- what counts as "interrupted" ------------------------------------------------------------------------------
def test_an_eof_error_is_a_failure_not_an_interruption(tmp_path):
    # a cut-short MNIST download: gzip raises EOFError, which click's main() used to report as Ctrl-C
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        whole = gzip.compress(bytes(4096))
        (raw / f"{stem}.gz").write_bytes(whole[:len(whole) // 2])
    result = run_cli("train", "--data", f"mnist:{tmp_path / 'mnist'}", "--preset", "tiny", "--steps", "1",
                     "--out", tmp_path / "run", "--device", "cpu")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr  # bad input, named
    assert "interrupted" not in result.stderr and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "train-images-idx3-ubyte.gz: damaged MNIST file" in lines[0]


@pytest.mark.parametrize("raised, code, message", [(EOFError, 1, "error: EOFError"),
                                                   (KeyboardInterrupt, 130, "error: interrupted")])
def test_only_ctrl_c_is_interrupted(monkeypatch, capsys, tmp_path, raised, code, message):
    def stop(*args):
        raise raised()

    monkeypatch.setattr("facealgebra.operands.expand_inputs", stop)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["encode", "a.png", "-o", str(tmp_path / "a.npz")])
    assert exit_info.value.code == code
    assert capsys.readouterr().err.startswith(message)
