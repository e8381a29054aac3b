"""The vendor's own code the command loads by name: ``--mail python:MODULE:FACTORY``,
``--catalog`` and ``--templates python:MODULE:NAME``. Whatever that code raises while it
loads is a ``ConfigError`` naming the option, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .config import _FACTORY_FORM, ConfigError

if TYPE_CHECKING:
    from .._mail.templates import Templates
    from .._permissions import Catalog
    from .._ports import Mailer

__all__ = [
    "check_catalog_spec",
    "check_templates_spec",
    "load_catalog",
    "load_mailer",
    "load_templates",
]


def _raised(exc: BaseException) -> str:
    """What *exc* says, even if its own ``__str__`` fails (the vendor's code is any code)."""
    try:
        text = str(exc)
    except Exception:
        text = "(its message cannot be read)"
    if isinstance(exc, SystemExit):
        return f"SystemExit: exit({exc.code!r}) was called"
    return f"{type(exc).__name__}: {text}"


def load_mailer(spec: str) -> Mailer:
    """The Mailer that the callable named by *spec* (``module:attribute``) returns when
    called with no arguments; what goes wrong is a ``ConfigError`` saying what to do."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    # Its own code may raise anything while it loads, or call sys.exit() (which would end
    # the command without a word).
    except (Exception, SystemExit) as exc:
        raise ConfigError(
            f"--mail python:{spec}: could not import {module_name} "
            f"({_raised(exc)}); install it or put its folder on PYTHONPATH"
        ) from None
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ConfigError(
                f"--mail python:{spec}: {module_name} has no {attribute}; name a function "
                "or class in it that returns a mailer"
            ) from None
        except Exception as exc:  # a module's __getattr__ or a property may raise anything
            raise ConfigError(
                f"--mail python:{spec}: reading {name} raised {_raised(exc)}; name a "
                "function or class that returns a mailer"
            ) from None
    if not callable(target):
        raise ConfigError(
            f"--mail python:{spec}: {attribute} is not callable; name a function or class "
            "that takes no arguments and returns a mailer"
        )
    try:
        mailer = target()
    except (Exception, SystemExit) as exc:
        raise ConfigError(
            f"--mail python:{spec}: {attribute}() raised {_raised(exc)}; fix "
            "its settings (it is called with no arguments)"
        ) from None
    try:
        send = getattr(mailer, "send", None)
    except Exception as exc:  # a property named send
        raise ConfigError(
            f"--mail python:{spec}: reading send of what {attribute}() returned raised "
            f"{_raised(exc)}; return a teamaccess Mailer"
        ) from None
    if not callable(send):
        raise ConfigError(
            f"--mail python:{spec}: {attribute}() returned {type(mailer).__name__}, which "
            "has no send(message) method; return a teamaccess Mailer"
        )
    return cast("Mailer", mailer)


def check_named_spec(
    option: str, spec: str, example: str, wanted: str, default: str
) -> tuple[str, str]:
    """A ``python:MODULE:NAME`` option's module and name, checked before anything is
    opened (``--catalog``, ``--templates``)."""
    if not spec:
        # Mostly --catalog "$VAR" with the variable unset: run without the panel's own,
        # the worker's mail would leave them out without a word (as --db "" is refused).
        raise ConfigError(
            f"{option} is empty: give python:MODULE:NAME, e.g. {example} (a shell "
            f'variable in {option} "$VAR" may be unset); leave {option} out for {default}'
        )
    match = _FACTORY_FORM.fullmatch(spec)
    if match is None:
        raise ConfigError(
            f"{option} takes python:MODULE:NAME, e.g. {example}, naming {wanted} or a "
            "function that returns it (dotted Python names)"
        )
    return match[1], match[2]


def check_catalog_spec(spec: str) -> tuple[str, str]:
    """``--catalog``'s module and name, checked before anything is opened."""
    return check_named_spec(
        "--catalog", spec, "python:mypanel.team:CATALOG", "your panel's Catalog",
        "the built-in catalog",
    )  # fmt: skip


def check_templates_spec(spec: str) -> tuple[str, str]:
    """``--templates``' module and name, checked before anything is opened."""
    return check_named_spec(
        "--templates", spec, "python:mypanel.mail:TEMPLATES", "your panel's mail templates",
        "the shipped wording",
    )  # fmt: skip


def _load_named(
    option: str, spec: str, wanted: str, module_name: str, attribute: str,
    accepts: Callable[[object], bool], kind: str,
) -> Any:  # fmt: skip
    """What ``python:MODULE:NAME`` names: NAME if *accepts* it, else what NAME() returns
    when called with no arguments; what goes wrong is a ``ConfigError``."""
    import importlib

    try:
        target: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # its own code may raise anything
        raise ConfigError(
            f"{option} {spec}: could not import {module_name} ({_raised(exc)}); "
            "install it or put its folder on PYTHONPATH"
        ) from None
    try:
        for name in attribute.split("."):
            target = getattr(target, name)
    except AttributeError:
        raise ConfigError(
            f"{option} {spec}: {module_name} has no {attribute}; name {wanted} or a "
            "function that returns it"
        ) from None
    except (Exception, SystemExit) as exc:  # a module's __getattr__ or a property
        raise ConfigError(
            f"{option} {spec}: reading {attribute} raised {_raised(exc)}; name {wanted} "
            "or a function that returns it"
        ) from None
    if callable(target) and not accepts(target):
        # Its own failure, an AttributeError included, named as the call's (as --mail
        # does): "reading NAME raised" sent the reader to a name that was there.
        try:
            target = target()
        except (Exception, SystemExit) as exc:
            raise ConfigError(
                f"{option} {spec}: {attribute}() raised {_raised(exc)}; fix it (it is "
                f"called with no arguments), or name {wanted}"
            ) from None
    if not accepts(target):
        raise ConfigError(
            f"{option} {spec}: {attribute} is {type(target).__name__}, not {kind}; name "
            f"{wanted} or a function that returns it"
        )
    return target


def load_catalog(spec: str) -> Catalog:
    """``--catalog python:MODULE:NAME``: the panel's ``Catalog`` (NAME, or what NAME()
    returns when called with no arguments); what goes wrong is a ``ConfigError``.

    The command names permissions by this catalog: in the invitation mail it sends (the
    worker's, too), ``-p``, ``check`` and ``catalog``.
    """
    from .._permissions import Catalog

    module_name, attribute = check_catalog_spec(spec)
    catalog: Catalog = _load_named(
        "--catalog", spec, "your panel's Catalog", module_name, attribute,
        lambda found: isinstance(found, Catalog), "a teamaccess.Catalog",
    )  # fmt: skip
    return catalog


def _is_templates(found: object) -> bool:
    """Whether *found* renders mail as ``Templates`` does: an object (not a class, which
    is called to make one) with ``invitation()`` and ``notification()``."""
    if isinstance(found, type):
        return False
    try:
        methods = (getattr(found, "invitation", None), getattr(found, "notification", None))
    except Exception:  # a property may raise anything: then it is not usable templates
        return False
    return all(callable(method) for method in methods)


def load_templates(spec: str) -> Templates:
    """``--templates python:MODULE:NAME``: the panel's mail templates (NAME, or what
    NAME() returns when called with no arguments: a ``DefaultTemplates`` with the panel's
    brand and strings, or its own ``Templates``); what goes wrong is a ``ConfigError``.

    The command, and so its delivery worker, words the mail it builds with them.
    """
    module_name, attribute = check_templates_spec(spec)
    templates: Templates = _load_named(
        "--templates", spec, "your panel's mail templates", module_name, attribute,
        _is_templates, "mail templates (no invitation() and notification() methods)",
    )  # fmt: skip
    return templates
