"""History database fixtures: a SQLite file per test, and a fresh database on the local PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from recognizer.storage import database


@pytest.fixture
def sqlite_engine(tmp_path) -> Engine:
    return database.make_engine(f"sqlite:///{tmp_path / 'data' / 'recognizer.db'}")


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = database.make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.database)])
def engine(request) -> Engine:
    return request.getfixturevalue(
        f"{request.param}_engine" if request.param == "sqlite" else "postgres_engine"
    )
