"""``TeamAccess.import_accounts()``: move whole accounts in from another panel.

Only the method is here; the checks and writes are in ``import_rows``, which loads on
the first call, so ``import teamaccess`` does not pay for what a panel runs once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .core import _Core

if TYPE_CHECKING:
    from .._domain import Account
    from .import_rows import Progress

__all__ = ["_Importing"]


class _Importing(_Core):
    """Move whole accounts in: owners, members and contacts, without invitations."""

    def import_accounts(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        existing: Literal["error", "skip"] = "error",
        chunk_size: int = 1000,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> list[Account]:
        """Create accounts with their owners, members and contacts; a vendor operation.

        Each row is a mapping: ``name``, ``owner_id``, ``owner_email``, optionally ``id``
        (the account id to use, e.g. the old panel's customer number; generated if
        missing), ``members`` (mappings with ``user_id``, ``email``, ``permissions`` and
        optionally ``access_until`` and ``metadata``) and ``contacts`` (mappings with
        ``name``, ``email``, ``categories`` and optionally ``company``, ``phone``,
        ``role``). Members join at once, without invitation or mail; the audit log of
        each account gets one ``account.imported`` event by ``teamaccess.SYSTEM``.

        Every row is checked before anything is written; if any breaks a rule,
        ``InvalidImport`` lists the problems by row and nothing is stored. The rows are
        then written *chunk_size* accounts per commit. If the store fails partway,
        ``ImportInterrupted`` says which accounts are stored. An account id that exists
        is a problem, unless *existing* is ``"skip"``: then that row is left out (to
        resume an interrupted import). *progress*, if given, is called as
        ``progress(phase, done, total)`` with phase ``"check"`` and then ``"write"``.
        With *dry_run* only the checks run; the accounts that would be created are
        returned, and nothing is stored.

        Returns the accounts created, in row order.
        """
        from .import_rows import _Importer  # loads on the first import

        return _Importer(self).run(rows, existing, chunk_size, progress, dry_run)
