"""The store contract, run on every backend this project ships."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import drop_postgres_schema, postgres_conninfo, prepare_postgres_schema

from teamaccess import MemoryStore, PostgresStore, SQLiteStore, Store
from teamaccess.testing.contract import StoreContract


class TestMemoryStore(StoreContract):
    """MemoryStore keeps the store contract."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        return MemoryStore


class TestSQLiteStore(StoreContract):
    """SQLiteStore on a file keeps the store contract."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], Store]:
        return lambda: SQLiteStore(tmp_path / "contract.db")


class TestSQLiteStoreReopened(StoreContract):
    """SQLiteStore keeps the contract when every read-back goes through a reopened file."""

    reopens = True

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], Store]:
        return lambda: SQLiteStore(tmp_path / "contract.db")


class TestSQLiteStoreInMemory(StoreContract):
    """SQLiteStore(":memory:") keeps the store contract."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], Store]:
        return lambda: SQLiteStore(":memory:")


class TestContractNeedsAFactory:
    """The base class says what to do when a subclass forgets store_factory."""

    def test_message(self) -> None:
        with pytest.raises(NotImplementedError, match="override the store_factory fixture"):
            StoreContract.store_factory.__wrapped__(StoreContract())  # type: ignore[attr-defined]


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    """PostgresStore keeps the contract, every read-back through a freshly opened store."""

    reopens = True

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Iterator[Callable[[], Store]]:
        conninfo = postgres_conninfo()
        schema = prepare_postgres_schema(tmp_path)
        yield lambda: PostgresStore(conninfo, schema=schema, max_size=4)
        drop_postgres_schema(tmp_path)


@pytest.mark.postgres
class TestPostgresStoreOnADictRowPool(StoreContract):
    """PostgresStore keeps the contract on the application's pool whose connections
    return rows as dicts (``row_factory=dict_row``): the store reads rows its own way."""

    reopens = True

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Iterator[Callable[[], Store]]:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        schema = prepare_postgres_schema(tmp_path)
        with ConnectionPool(
            postgres_conninfo(), min_size=1, max_size=4,
            kwargs={"row_factory": dict_row}, open=True,
        ) as pool:  # fmt: skip
            yield lambda: PostgresStore(pool, schema=schema)
        drop_postgres_schema(tmp_path)
