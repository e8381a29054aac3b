"""A hook on a store's write units for the erasure tests: *between* runs once, just
before the next unit opens (after the erasure's work before its unit), and ``in_unit``
tells whether a unit is open."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from teamaccess import Store


class UnitHook:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
        self.between: Callable[[], None] | None = None
        self.in_unit = False
        real_begin = store.begin

        @contextmanager
        def unit(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if self.between is not None:
                between, self.between = self.between, None
                between()
            with real_begin(*args, **kwargs) as uow:
                self.in_unit = True
                try:
                    yield uow
                finally:
                    self.in_unit = False

        def begin(*args: Any, **kwargs: Any) -> AbstractContextManager[Any]:
            return unit(*args, **kwargs)

        monkeypatch.setattr(store, "begin", begin)
