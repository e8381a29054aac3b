"""The Jinja2 templates and the stylesheet, for any adapter."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._core import Render

if TYPE_CHECKING:
    import jinja2

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "environment", "render"]

#: the default templates, named ``teamaccess/<page>.html``
TEMPLATE_DIR = Path(__file__).parent / "templates"
#: ``teamaccess.css``, the one stylesheet
STATIC_DIR = Path(__file__).parent / "static"


def environment(*search_path: str | os.PathLike[str]) -> jinja2.Environment:
    """A Jinja2 environment with autoescaping that looks in *search_path* first.

    A template of the same name in one of your folders (say ``teamaccess/base.html``)
    replaces the default one; the rest come from ``TEMPLATE_DIR``.
    """
    try:
        import jinja2
    except ModuleNotFoundError as exc:
        if exc.name != "jinja2":
            raise
        # Jinja2 is the web extra, not a dependency: say which one.
        raise ModuleNotFoundError(
            "teamaccess.web's templates need the web extra (Jinja2): pip install 'teamaccess[web]'",
            name=exc.name,
        ) from exc

    loaders: list[jinja2.BaseLoader] = []
    if search_path:
        loaders.append(jinja2.FileSystemLoader([os.fspath(p) for p in search_path]))
    loaders.append(jinja2.FileSystemLoader(os.fspath(TEMPLATE_DIR)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
    )


def render(
    env: jinja2.Environment,
    page: Render,
    *,
    url: Callable[..., str],
    static_url: str,
    **extra: Any,
) -> str:
    """Render *page* with the adapter's *url* builder (``url(endpoint, **params)``)."""
    template = env.get_template(page.template)
    return template.render({**page.context, "url": url, "static_url": static_url, **extra})
