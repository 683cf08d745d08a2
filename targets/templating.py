"""Line-oriented text artifacts (systemd units, env files, shell scripts, READMEs) from the
jinja2 templates in targets/templates. StrictUndefined: a missing value is an error, never an
empty string.

Every value reaches a template either as a plain word (letters, digits and `._/:@+=-`, which
mean themselves in every format here) or through an encoder of the format it lands in
(`shell_word`, `comment_text`, `markdown_code`, ...), which marks its result `Encoded`. render()
refuses any other string, so free text (a file name, a label) cannot reach a template raw."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9._/:@+=-]*$")


class Encoded(str):
    """Text already encoded for the format of the template slot it is passed to."""


class Unencodable(ValueError):
    """A value holds a character the target format cannot carry (NUL in a shell word...)."""


def shell_word(value: str) -> Encoded:
    """A value quoted as one POSIX shell word (a shell word cannot hold NUL)."""
    if "\x00" in value:
        raise Unencodable(f"{value!r} holds a NUL character, which a shell word cannot carry")
    return Encoded(shlex.quote(value))


def comment_text(value: str) -> Encoded:
    """A value inside a `#` comment of a shell script, systemd unit or hosts file: bare when a
    plain word, else a JSON string (ASCII, escapes for every control character, never ending
    in a backslash that systemd would join with the next line)."""
    return Encoded(value if _PLAIN_WORD.fullmatch(value) else json.dumps(value))


def markdown_code(value: str) -> Encoded:
    """A value as a Markdown code span: fenced with more backticks than it holds, with its
    control characters escaped (a code span cannot hold a line break)."""
    text = json.dumps(value)[1:-1] if not _PLAIN_WORD.fullmatch(value) else value
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return Encoded(f"{fence}{padding}{text}{padding}{fence}")


def _check_value(name: str, value: Any) -> None:
    if isinstance(value, str):
        if not isinstance(value, Encoded) and not _PLAIN_WORD.fullmatch(value):
            raise TypeError(f"template value {name} = {value!r} is neither a plain word nor encoded")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_value(name, item)
    elif not isinstance(value, (bool, int)):
        raise TypeError(f"template value {name} has type {type(value).__name__}")


@cache
def _environment() -> Environment:
    # jinja2 is imported when a template is first rendered: a mesh without VMs or Cloud Foundry
    # apps renders none, and `meshc check` of it skips the import (about 8% of the check)
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True,
    )


def render(name: str, **values: Any) -> bytes:
    for key, value in values.items():
        _check_value(key, value)
    return _environment().get_template(name).render(**values).encode("utf-8")
