"""One ``__repr__`` for the library's attrs classes.

attrs compiles a ``__repr__`` for every class it decorates, when the class is defined:
about a third of the time each class costs ``import teamaccess``. The classes that load
with the package take this one instead; it prints what attrs would (a test compares
them), including ``...`` for an object that contains itself.
"""

from __future__ import annotations

import reprlib

import attrs

__all__ = ["attrs_repr"]


@reprlib.recursive_repr()
def attrs_repr(self: attrs.AttrsInstance) -> str:
    """``ClassName(field=value, ...)`` over the fields with ``repr=True``, as attrs writes it."""
    cls = type(self)
    shown = ", ".join(
        f"{a.name}={a.repr(value) if callable(a.repr) else repr(value)}"
        for a in attrs.fields(cls)
        if a.repr
        for value in (getattr(self, a.name),)
    )
    return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({shown})"
