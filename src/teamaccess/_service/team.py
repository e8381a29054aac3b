"""The public facade: one class over the use-case modules."""

from __future__ import annotations

from .accounts import _Accounts
from .batch import _Batching
from .contacts import _Contacts
from .importing import _Importing
from .lifecycle import _Lifecycle
from .privacy import _Privacy
from .scopes import _Scopes

__all__ = ["TeamAccess"]


class TeamAccess(_Batching, _Accounts, _Contacts, _Lifecycle, _Scopes, _Privacy, _Importing):
    """Accounts, members, permissions, invitations and contacts, on a ``Store``.

    Each method is one unit of work. The use cases live in their own modules
    (``accounts``, ``invitations``, ``contacts``, ``delivery``, ``lifecycle``, ``scopes``,
    ``privacy``, ``batch``, ``importing``), sharing the settings and plumbing of ``core``;
    this class only puts them together.

    >>> from teamaccess import TeamAccess, MemoryStore, MemoryMailer
    >>> team = TeamAccess(MemoryStore(), MemoryMailer(), secret_key="change me")
    """
