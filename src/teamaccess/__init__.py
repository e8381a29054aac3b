"""teamaccess: share a hosting account with members and contacts.

Everything public is re-exported here; the implementation lives in private modules.
The stores, ``SmtpMailer``, the mail classes and what only the rare calls use (bulk
import, export, erasure, purge) are imported on first use, so ``import teamaccess``
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._domain import (
    METADATA_MAX_BYTES,
    NOTE_MAX_LENGTH,
    SYSTEM,
    Account,
    AuditEvent,
    Contact,
    Invitation,
    Member,
    OutboxMessage,
)
from ._emails import Address, normalize_email
from ._errors import (
    AccountNotFound,
    AlreadyContact,
    AlreadyInvited,
    AlreadyMember,
    ClockError,
    Conflict,
    ContactNotFound,
    DeliveryFailed,
    DeliveryRefused,
    EmailMismatch,
    ImportInterrupted,
    InvalidEmail,
    InvalidImport,
    InvalidInvitation,
    InvitationError,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationUsed,
    MemberNotFound,
    NotFound,
    OwnershipRequired,
    PermissionDenied,
    RateLimited,
    ScrubFailed,
    StorageError,
    TeamAccessError,
    UnknownCategory,
    UnknownPermission,
    ValidationError,
)
from ._permissions import (
    RESOURCE_ID_MAX_LENGTH,
    Catalog,
    Categories,
    Category,
    Permission,
    PermissionSet,
    Preset,
    Resources,
)
from ._ports import (
    AccountDeletion,
    BatchMailer,
    BulkUnitOfWork,
    Clock,
    CombinedReads,
    DeferredWrites,
    Mailer,
    Store,
    SystemClock,
    UnitOfWork,
)
from ._service import TeamAccess

if TYPE_CHECKING:
    from ._backends.memory import MemoryStore
    from ._backends.postgres import PostgresStore
    from ._backends.sqlite import SQLiteStore
    from ._mail.mailers import FileMailer, MemoryMailer
    from ._mail.smtp import SmtpMailer
    from ._mail.templates import (
        DefaultTemplates,
        InvitationContext,
        NotificationContext,
        RenderedMail,
        Templates,
    )
    from ._messages import error_message
    from ._privacy import AccountDeletionReport, ErasureReport, PurgeReport, Retention
    from ._service.import_rows import ImportProblem

__version__ = "0.1.0.dev0"

__all__ = [
    "METADATA_MAX_BYTES",
    "NOTE_MAX_LENGTH",
    "RESOURCE_ID_MAX_LENGTH",
    "SYSTEM",
    "Account",
    "AccountDeletion",
    "AccountDeletionReport",
    "AccountNotFound",
    "Address",
    "AlreadyContact",
    "AlreadyInvited",
    "AlreadyMember",
    "AuditEvent",
    "BatchMailer",
    "BulkUnitOfWork",
    "Catalog",
    "Categories",
    "Category",
    "Clock",
    "ClockError",
    "CombinedReads",
    "Conflict",
    "Contact",
    "ContactNotFound",
    "DefaultTemplates",
    "DeferredWrites",
    "DeliveryFailed",
    "DeliveryRefused",
    "EmailMismatch",
    "ErasureReport",
    "FileMailer",
    "ImportInterrupted",
    "ImportProblem",
    "InvalidEmail",
    "InvalidImport",
    "InvalidInvitation",
    "Invitation",
    "InvitationContext",
    "InvitationError",
    "InvitationExpired",
    "InvitationNotFound",
    "InvitationRevoked",
    "InvitationUsed",
    "Mailer",
    "Member",
    "MemberNotFound",
    "MemoryMailer",
    "MemoryStore",
    "NotFound",
    "NotificationContext",
    "OutboxMessage",
    "OwnershipRequired",
    "Permission",
    "PermissionDenied",
    "PermissionSet",
    "PostgresStore",
    "Preset",
    "PurgeReport",
    "RateLimited",
    "RenderedMail",
    "Resources",
    "Retention",
    "SQLiteStore",
    "ScrubFailed",
    "SmtpMailer",
    "StorageError",
    "Store",
    "SystemClock",
    "TeamAccess",
    "TeamAccessError",
    "Templates",
    "UnitOfWork",
    "UnknownCategory",
    "UnknownPermission",
    "ValidationError",
    "error_message",
    "normalize_email",
]

_LAZY = {
    "MemoryStore": ("._backends.memory", "MemoryStore"),
    "PostgresStore": ("._backends.postgres", "PostgresStore"),
    "SQLiteStore": ("._backends.sqlite", "SQLiteStore"),
    "SmtpMailer": ("._mail.smtp", "SmtpMailer"),
    # The mail builders and templates load with the first mail (or TeamAccess).
    "FileMailer": ("._mail.mailers", "FileMailer"),
    "MemoryMailer": ("._mail.mailers", "MemoryMailer"),
    "DefaultTemplates": ("._mail.templates", "DefaultTemplates"),
    "InvitationContext": ("._mail.templates", "InvitationContext"),
    "NotificationContext": ("._mail.templates", "NotificationContext"),
    "RenderedMail": ("._mail.templates", "RenderedMail"),
    "Templates": ("._mail.templates", "Templates"),
    # What only the rare calls (bulk import, export, erasure, purge, deleting an account)
    # use.
    "ImportProblem": ("._service.import_rows", "ImportProblem"),
    "AccountDeletionReport": ("._privacy", "AccountDeletionReport"),
    "ErasureReport": ("._privacy", "ErasureReport"),
    "PurgeReport": ("._privacy", "PurgeReport"),
    "Retention": ("._privacy", "Retention"),
    # The customer-facing texts of the errors, which only pages show.
    "error_message": ("._messages", "error_message"),
}


def __getattr__(name: str) -> Any:
    # PEP 562: the stores (sqlite-utils, psycopg), smtplib, the mail modules and the
    # rare calls' modules load only when these names are first used.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'teamaccess' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
