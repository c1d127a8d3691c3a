"""Every ``ministry`` command's ``--help`` says what the command does and takes.

The parser is walked as ``ministry.cli.main.build_parser`` builds it, every command
and sub-command, and each is checked for what can be checked without running it: it
has a description (its ``--help`` starts by saying what it is for), every argument has
help text, an argument whose help says it may be left out can be, every flag a help
text names exists, every ``ministry …`` command it names exists, and every default a
help text states is the default the argument has.
"""

from __future__ import annotations

import argparse
import re

import pytest

from ministry.cli.main import build_parser
from support.commands import commands

_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_COMMAND = re.compile(r"\bministry ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
# Help that says an argument may be left out ("without it: the whole project").
_OPTIONAL = re.compile(r"\b(optional|without it|unless|if given|left out|leave it out)\b")
# A default the help states: "(default 100)", "default: main", "(default 'upstream';".
_STATED_DEFAULT = re.compile(r"\bdefault:? '?([^';),]+)'?")


_PARSER = build_parser()
_ALL = list(commands(_PARSER))
_BY_PATH = {path: parser for path, parser, _line in _ALL}
_IDS = [" ".join(path) for path, _parser, _line in _ALL]


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
    ]


def _texts(parser: argparse.ArgumentParser) -> list[str]:
    texts = [parser.description or ""]
    texts += [action.help or "" for action in _arguments(parser)]
    return [text for text in texts if text and text != argparse.SUPPRESS]


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_the_walk_finds_every_command() -> None:
    """The walk reaches the leaves (a check of this test itself, which passes on none)."""
    assert ("user", "list") in _BY_PATH
    assert ("log",) in _BY_PATH
    assert len(_ALL) > 40


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_every_command_says_what_it_does(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """Listed with a line by its parent, and its own ``--help`` says what it does."""
    assert line.strip(), f"'ministry {' '.join(path)}' has no help line in its parent's list"
    assert (parser.description or "").strip(), f"'ministry {' '.join(path)} --help' says nothing"
    parser.format_help()  # a stray % in a help text fails here, as `--help` would


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_every_argument_has_help(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """No argument is shown without saying what it is."""
    bare = [
        action.option_strings[0] if action.option_strings else action.dest
        for action in _arguments(parser)
        if not action.help
    ]
    assert not bare, f"'ministry {' '.join(path)}': no help for {bare}"


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_positionals_said_to_be_optional_are_optional(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """A positional argument whose help says it may be left out takes ``nargs`` ``?`` or
    ``*``; one that may be left out says when, or what leaving it out means."""
    for action in _arguments(parser):
        if action.option_strings:
            continue
        said_optional = bool(_OPTIONAL.search(action.help or ""))
        optional = action.nargs in ("?", "*")
        where = f"'ministry {' '.join(path)}' argument {action.dest!r}: {action.help!r}"
        if said_optional:
            assert optional, f"{where} is said to be optional but is required"
        if action.nargs == "?":
            assert said_optional or "only" in (action.help or ""), (
                f"{where} may be left out, and its help does not say what that means"
            )


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_every_flag_named_in_help_exists(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """A flag a help text names is one of this command's, or of the command it names."""
    for text in [line, *_texts(parser)]:
        named = {(m[1],) if not m[2] else (m[1], m[2]) for m in _COMMAND.finditer(text)}
        other = [_BY_PATH.get(p) or _BY_PATH.get(p[:1]) for p in named]
        known = _flags(parser).union(*(_flags(p) for p in other if p is not None))
        unknown = set(_FLAG.findall(text)) - known
        assert not unknown, f"'ministry {' '.join(path)}' help names {unknown}: {text!r}"


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_every_command_named_in_help_exists(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """``ministry NAME [ACTION]`` in a help text is a command there is."""
    for text in [line, *_texts(parser)]:
        for match in _COMMAND.finditer(text):
            command = _BY_PATH.get((match[1],))
            assert command is not None, f"{text!r} names 'ministry {match[1]}', which is none"
            actions = {p[1] for p in _BY_PATH if len(p) == 2 and p[0] == match[1]}
            if actions and match[2]:
                assert match[2] in actions, f"{text!r}: 'ministry {match[1]}' has no {match[2]}"


@pytest.mark.parametrize(("path", "parser", "line"), _ALL, ids=_IDS)
def test_stated_defaults_are_the_defaults(
    path: tuple[str, ...], parser: argparse.ArgumentParser, line: str
) -> None:
    """A default the help states is the value the argument gets when left out."""
    for action in _arguments(parser):
        stated = _STATED_DEFAULT.search(action.help or "")
        if stated is None or action.default in (None, argparse.SUPPRESS):
            continue  # None: a setting, whose default the settings table decides and states
        assert str(action.default) == stated[1].strip(), (
            f"'ministry {' '.join(path)}' {action.dest}: help says default {stated[1]!r}, "
            f"it is {action.default!r}"
        )
