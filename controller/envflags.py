"""Every command-line flag also read from the environment: ``--max-agents`` from
``CONTROLLER_MAX_AGENTS``, a flag given on the command line winning.

Why: the controller runs as a container next to a user's stack, and a compose file
configures a container through ``environment:``, as users configure docker-autoheal or
watchtower. Environment values become the parser's defaults, converted and checked by
the flag's own ``type`` and ``choices`` (``flagvalues``), so a bad value is refused as a
bad flag would be (exit 2, one line), naming the variable. An empty value is an error
for every flag that takes one (a switch reads it as false).
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping

PREFIX = "CONTROLLER_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def variable(flag: str) -> str:
    """``--max-agents`` -> ``CONTROLLER_MAX_AGENTS``."""
    return PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse has no public accessor for its actions; _actions is stable since 3.2
    return [
        action
        for action in parser._actions
        if action.option_strings
        and action.dest != argparse.SUPPRESS
        and not isinstance(action, argparse._HelpAction | argparse._VersionAction)
    ]


def _convert(action: argparse.Action, name: str, text: str) -> object:
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        lowered = text.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError(f"{name}: expected true or false, got {text!r}")
        on = lowered in _TRUE
        return on if isinstance(action, argparse._StoreTrueAction) else not on
    if not text.strip():  # "" would otherwise mean "." (a path) or every interface (a host)
        raise ValueError(f"{name}: must not be empty (unset it for the default)")
    convert = action.type if callable(action.type) else str
    try:
        value = convert(text)
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ValueError(f"{name}: {exc or 'invalid value'}") from exc
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ValueError(f"{name}: {text!r} is not one of {choices}")
    return value


def with_environment(
    parser: argparse.ArgumentParser, environ: Mapping[str, str], skip: Collection[str] = ()
) -> argparse.ArgumentParser:
    """``parser`` with the defaults of its flags taken from ``CONTROLLER_<FLAG>``, but for
    the flags whose ``dest`` is in ``skip`` (Compose's ``-f`` and ``-p``, which read
    Compose's own variables).

    A bad value ends the program the way a bad flag does (``parser.error``: exit 2).
    The help of each flag names its variable.
    """
    defaults: dict[str, object] = {}
    for action in _options(parser):
        if action.dest in skip:
            continue
        flag = max(action.option_strings, key=len)
        name = variable(flag)
        if action.help not in (None, argparse.SUPPRESS):
            action.help = f"{action.help} [env {name}]"
        if name not in environ:
            continue
        try:
            defaults[action.dest] = _convert(action, name, environ[name])
        except ValueError as exc:
            parser.error(str(exc))
    parser.set_defaults(**defaults)
    return parser
