"""Every command's --help ends with examples, and every example is a command line the parser accepts (so an
example cannot outlive a flag)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from shared.cli import COMMANDS, build_parser
from shared.cli_examples import EXAMPLES
from tests.support.paths import REPO_ROOT


def example_argv(line: str) -> list[str]:
    """The arguments of an example: after `python -m shared`, before a comment or a redirection."""
    words = shlex.split(line, comments=True)
    assert words[:3] == ["python", "-m", "shared"], line
    cut = next((i for i, word in enumerate(words) if word in ("<", ">", "|")), len(words))
    return words[3:cut]


def test_every_command_has_examples_and_only_commands_that_exist_do():
    assert set(EXAMPLES) == set(COMMANDS)
    for name, lines in EXAMPLES.items():
        assert lines, name
        assert all(example_argv(line)[0] == name for line in lines), name


@pytest.mark.parametrize("line", [line for lines in EXAMPLES.values() for line in lines])
def test_every_example_parses(line):
    args = build_parser().parse_args(example_argv(line))
    assert args.command == example_argv(line)[0]


@pytest.mark.parametrize("command", ["incidents", "approve", "scan"])
def test_help_shows_the_examples_and_the_global_arguments(command):
    result = subprocess.run([sys.executable, "-m", "shared", command, "--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "examples:\n  python -m shared " + command in result.stdout
    assert "-o {json,jsonc,table,tsv,none}" in result.stdout and "--query QUERY" in result.stdout


def test_review_kinds_show_their_own_examples_and_take_the_global_arguments_after_their_name():
    parser = build_parser()
    args = parser.parse_args(["review", "readiness", "-o", "tsv", "--query", "readiness[].account"])
    assert (args.output, args.query) == ("tsv", "readiness[].account")
    args = parser.parse_args(["review", "-o", "json", "upgrade"])  # before the kind's name also works
    assert args.output == "json"
    result = subprocess.run([sys.executable, "-m", "shared", "review", "upgrade", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert "examples:\n  python -m shared review upgrade" in result.stdout
    assert "review readiness" not in result.stdout.split("examples:")[1]


def test_a_bad_output_format_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "shared", "samples", "-o", "yaml"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "invalid choice: 'yaml'" in result.stderr and result.stdout == ""
