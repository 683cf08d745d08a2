"""Line-oriented text artifacts (systemd units, env files, shell scripts, READMEs) from the
jinja2 templates in targets/templates. StrictUndefined: a missing value is an error, never an
empty string; callers validate and quote every value for its format before rendering."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True,
    )


def render(name: str, **values: Any) -> bytes:
    return _environment().get_template(name).render(**values).encode("utf-8")
