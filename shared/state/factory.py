"""Open the store the settings choose. The table backend (and its SDK) is imported only when chosen."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings
from shared.state.base import Store, StoreError

MEMORY = ":memory:"


def open_store(settings: Settings) -> Store:
    if settings.state_backend == "sqlite":
        from shared.state.sqlite import SqliteStore

        path = settings.sqlite_path
        if path != MEMORY:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of TRIAGE_SQLITE_PATH {path!r}: {exc}") from exc
        return SqliteStore(path)
    if settings.state_backend == "table":
        if not settings.storage_connection:
            raise StoreError("the table backend needs AzureWebJobsStorage (a storage connection string)")
        from shared.state.tables import TableStore

        return TableStore(settings.storage_connection, prefix=settings.table_prefix)
    raise ValueError(f"unknown state backend {settings.state_backend!r}: expected sqlite or table")
