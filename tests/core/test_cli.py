"""The main group: --version, -v/-q, and subcommands attached through entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from click.testing import CliRunner

from cli.main import main
from geoalign import __version__


def test_version_and_command_list():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("dataset", "fetch"):
        assert f"  {name} " in result.output


def test_a_third_party_package_adds_a_command(tmp_path):
    """Another installed distribution declares `geoalign.commands` and its command appears."""
    (tmp_path / "hello_plugin.py").write_text(textwrap.dedent("""
        import click
        @click.command()
        @click.argument("who")
        def hello(who):
            "Say hello."
            click.echo(f"hello {who}")
        broken_dependency = None
    """))
    info = tmp_path / "hello_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[geoalign.commands]\nhello = hello_plugin:hello\nbroken = no_such_module:cmd\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )
    ok = run("hello", "Austin")
    assert ok.returncode == 0 and ok.stdout.strip() == "hello Austin"
    listing = run("--help")
    assert "hello" in listing.stdout and "dataset" in listing.stdout
    broken = run("broken")
    assert broken.returncode == 1
    assert "could not be loaded" in broken.stderr and "Traceback" not in broken.stderr


def test_quiet_hides_progress_and_verbose_is_accepted(tmp_path, austin):
    args = ["dataset", "build", "--source", str(austin["image"]), str(austin["buildings"]),
            "--scales", "2", "--patch-size", "64", "-o"]
    quiet = CliRunner().invoke(main, ["-q", *args, str(tmp_path / "a")])
    assert quiet.exit_code == 0, quiet.output
    assert "pairs" in quiet.stderr and "it/s" not in quiet.stderr and "patch/s" not in quiet.stderr
    loud = CliRunner().invoke(main, ["-vv", *args, str(tmp_path / "b")])
    assert loud.exit_code == 0, loud.output
