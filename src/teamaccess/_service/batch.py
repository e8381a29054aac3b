"""``TeamAccess.batch()``: many use cases in one unit of work, for bulk imports.

Each use case opens a unit of work of its own, and on a disk-backed store each unit is a
commit that waits for the disk. Moving tens of thousands of customers in from another
panel that way writes the same pages over and over. Inside ``with team.batch():`` every
use case runs in the batch's one unit instead: every rule is checked as usual, against
what the batch has written so far; nothing is committed, and no mail sent, until the
block ends without an error; an error that escapes the block, or that a use case raised
after it began writing, rolls back all of it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, _GeneratorContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from .._domain import Account, AuditEvent, Invitation, Member, OutboxMessage
from .._errors import DeliveryFailed, StorageError, ValidationError
from .._ports import UnitOfWork
from .checks import _log, _Work
from .delivery import _Delivery

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["_Batching"]

_Deferred = tuple[Sequence[tuple[OutboxMessage, "EmailMessage"]], Invitation | None, Sequence[str]]


class _BatchState:
    """What an open batch has done so far (one per thread: a batch is its thread's)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.events: list[AuditEvent] = []
        self.deferred: list[_Deferred] = []
        self.failed: BaseException | None = None
        self.pid = os.getpid()


class _Tracked:
    """The batch's unit of work as one use case sees it: notes whether it wrote.

    Without savepoints in the Store protocol a failed use case's own writes cannot be
    undone alone; its rule checks raise before its first write, so an error from them
    leaves the batch clean, and any later one spoils it.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.wrote = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._uow, name)
        if name.startswith(_WRITES):
            self.wrote = True
        return attr


_WRITES = ("add_", "update_", "delete_", "claim_", "erase_", "purge_", "cancel_", "commit")


class _Batching(_Delivery):
    """The batch: a unit of work shared by every use case called inside it."""

    _batches: threading.local

    def _batch_state(self) -> _BatchState | None:
        local = self.__dict__.get("_batches")
        if local is None:
            return None
        state: _BatchState | None = getattr(local, "state", None)
        if state is not None and state.pid != os.getpid():
            # A fork of the thread that opened the batch: its unit's connection is the
            # parent's (one socket, or one SQLite file handle, read by two processes).
            raise StorageError(
                f"this batch was opened in process {state.pid} and is used in process "
                f"{os.getpid()}, a fork of it, whose connections are that process's; "
                "fork before the with team.batch() block, or open the store (build the "
                "TeamAccess) in the child"
            )
        return state

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run the use cases called inside the block as one unit of work.

        Every rule is checked as in a single call, against what the batch has written so
        far. Nothing is stored until the block ends; then it is one commit, the audit
        listeners run, and the mail the batch wrote to the outbox goes out (mail for an
        invitation accepted or revoked in the batch never does). An exception that leaves
        the block rolls all of it back; so does one raised by a use case that had begun
        writing, even if you catch it (its half-done writes cannot be told apart from the
        rest). Errors raised before a use case writes anything, such as ``InvalidEmail``,
        ``AlreadyMember`` or ``PermissionDenied``, can be caught and the batch goes on.

        Batches do not nest, and a batch belongs to the thread that opened it; other
        threads' calls wait for it (one writer at a time, as for any unit of work).
        ``deliver_pending()`` cannot be called inside one.
        """
        if self._batch_state() is not None:
            raise ValidationError("a batch is already open in this thread; batches do not nest")
        local = self.__dict__.setdefault("_batches", threading.local())
        with self._store.begin() as uow:
            state = _BatchState(uow)
            local.state = state
            try:
                yield
            finally:
                local.state = None
            if state.failed is not None:
                raise ValidationError(
                    "the batch was rolled back: a call inside it failed after it had begun "
                    f"writing ({type(state.failed).__name__}: {state.failed}); check the "
                    "input first, then run the batch again"
                ) from state.failed
            uow.commit()
        self._notify_listeners(state.events)
        self._send_deferred(state.deferred)

    def _write(self, now: datetime | None = None) -> _GeneratorContextManager[_Work]:
        state = self._batch_state()
        if state is None:
            # The unit itself, not one wrapped around it: a generator layer less per unit.
            return super()._write(now)
        return self._batched(state, now)

    @contextmanager
    def _batched(self, state: _BatchState, now: datetime | None) -> Iterator[_Work]:
        """A use case's unit of work inside the batch: the batch's own unit, tracked."""
        tracked = _Tracked(state.uow)
        work = _Work(cast(UnitOfWork, tracked), self.now() if now is None else now)
        try:
            yield work
        except BaseException as exc:
            if tracked.wrote and state.failed is None:
                state.failed = exc
            raise
        state.events.extend(work.events)

    def _read(self) -> AbstractContextManager[UnitOfWork]:
        state = self._batch_state()
        if state is None:
            return super()._read()
        return nullcontext(state.uow)

    def _glance(self, account_id: str, user_id: str) -> tuple[Account, Member | None]:
        if self._batch_state() is None:
            return super()._glance(account_id, user_id)
        # What the batch wrote so far counts, and only its unit sees that.
        with self._read() as uow:
            return self._account_actor(uow, account_id, user_id)

    def _deliver_now(
        self,
        batch: Sequence[tuple[OutboxMessage, EmailMessage]],
        invitation: Invitation | None,
        unbuilt: Sequence[str] = (),
    ) -> None:
        state = self._batch_state()
        if state is None:
            super()._deliver_now(batch, invitation, unbuilt)
        else:
            state.deferred.append((batch, invitation, unbuilt))

    def deliver_pending(
        self, *, limit: int = 100, stop: Callable[[], bool] | None = None
    ) -> list[OutboxMessage]:
        # Spelled out, not (*args, **kwargs): help(), editors and type checkers read the
        # public signature from here. Whatever its arguments, it sends mail, which must
        # wait for the batch's commit.
        if self._batch_state() is not None:
            raise ValidationError(
                "deliver_pending() sends mail, which must not leave before the batch "
                "commits; call it after the with team.batch() block"
            )
        return super().deliver_pending(limit=limit, stop=stop)

    deliver_pending.__doc__ = _Delivery.deliver_pending.__doc__

    def _notify_listeners(self, events: list[AuditEvent]) -> None:
        for event in events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    _log().exception("audit listener %r failed on %s", listener, event.action)

    def _send_deferred(self, deferred: list[_Deferred]) -> None:
        """After the commit: send the batch's mail that is still pending, in order."""
        if not deferred:
            return
        failures: list[DeliveryFailed] = []
        for batch, invitation, unbuilt in deferred:
            # Each is read back before it is sent (see _Sending._still_to_send()): the
            # batch may have cancelled or deleted its own mail, and another connection
            # may have deleted or rewritten it since the commit.
            try:
                super()._deliver_now(batch, invitation, unbuilt)
            except DeliveryFailed as exc:
                failures.append(exc)
        if failures:
            ids = [i for exc in failures for i in exc.message_ids]
            raise DeliveryFailed(
                f"the batch is committed, but {len(ids)} message(s) could not be sent now; "
                "they wait in the outbox and deliver_pending() retries them",
                message_ids=ids,
            )
