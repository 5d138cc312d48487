"""What the web front's pages are made with: the templates' Jinja2 environment (autoescape on, the
filters the mail templates have), without the mail stylesheet inlined."""

from __future__ import annotations

from jinja2 import Environment, FileSystemLoader

from digest.render.templates import environment
from digest.resources import resource_dir


def page_templates() -> Environment:
    return environment(FileSystemLoader(str(resource_dir("templates"))))


def static_dir() -> str:
    """The folder of the pages' stylesheet and script."""
    return str(resource_dir("templates") / "web" / "static")
