"""Prompt templates are Jinja2 files in buildbench/generators/templates/; this loads them."""

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@lru_cache(maxsize=None)
def template(name: str):
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, autoescape=False,
                      keep_trailing_newline=False)
    return env.get_template(name)
