"""The customer-center pages on teamaccess: ``pip install 'teamaccess[web]'``.

Written once and framework-free: :class:`Pages` turns a :class:`Request` into a
:class:`Render` (a template name and its context) or a :class:`Redirect`; the Jinja2
templates render them. ``teamaccess.web.flask`` is the Flask adapter, a blueprint.
See ``docs/web.md``.
"""

from __future__ import annotations

from ._core import (
    HEADERS,
    INVITATION_COOKIE_MAX_AGE,
    LANGUAGES,
    ROUTES,
    Redirect,
    Render,
    Request,
    Result,
    Route,
    User,
    open_invitations,
    pick_language,
    seal_invitations,
)
from ._pages import Pages, ResourcesHook
from ._templates import STATIC_DIR, TEMPLATE_DIR, environment, render

__all__ = [
    "HEADERS",
    "INVITATION_COOKIE_MAX_AGE",
    "LANGUAGES",
    "ROUTES",
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "Pages",
    "Redirect",
    "Render",
    "Request",
    "ResourcesHook",
    "Result",
    "Route",
    "User",
    "environment",
    "open_invitations",
    "pick_language",
    "render",
    "seal_invitations",
]
