"""Methods for the library's attrs classes that attrs would compile at import.

attrs writes the source of each class's ``__repr__``, ``__eq__``, ``__hash__`` and
``__init__`` and compiles it when the class is defined: about half of the time each
class costs ``import teamaccess``. The classes that load with the package take this
module's ``__repr__`` instead, and the ``__eq__`` and ``__hash__`` of :func:`eq_hash`,
built from their fields without compiling anything; each behaves as attrs' own (tests
compare them). ``__init__`` stays attrs' own: attrs compiles one whatever a class
defines.
"""

from __future__ import annotations

import reprlib
from operator import attrgetter
from typing import Any, TypeVar

import attrs

__all__ = ["attrs_repr", "eq_hash"]

_C = TypeVar("_C", bound=type)


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


def eq_hash(cls: _C) -> _C:
    """Give *cls*, made by ``@attrs.frozen(eq=False)``, the ``__eq__`` and ``__hash__``
    that ``@attrs.frozen`` would: equal when of the same class with equal fields (those
    with ``eq=True``), hashed over the fields with ``hash`` (or else ``eq``) true."""
    fields = attrs.fields(cls)
    if any(a.eq_key is not None for a in fields):  # attrs' eq=callable: not supported
        raise TypeError(f"{cls.__name__}: eq_hash() does not take an eq key function")
    # attrgetter reads the fields in C, and its tuples compare as attrs' generated
    # "self.a == other.a and ..." does, field by field, in order (a tuple also takes a
    # field that is the same object as equal, which differs only for a NaN: none here).
    compared = attrgetter(*[a.name for a in fields if a.eq])
    hashed = attrgetter(*[a.name for a in fields if (a.eq if a.hash is None else a.hash)])
    # As attrs' hash, the class is part of it: equal fields of two classes hash apart.
    salt = hash(f"teamaccess {cls.__module__}.{cls.__qualname__}")

    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return compared(self) == compared(other)

    def __hash__(self: Any) -> int:
        return hash((salt, hashed(self)))

    for method in (__eq__, __hash__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        method.__module__ = cls.__module__
        setattr(cls, method.__name__, method)
    return cls
