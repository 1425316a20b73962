"""Open the store the settings choose. The table backend (and its SDK) is imported only when chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.settings import MANAGED_IDENTITY, Settings
from shared.state.base import Store, StoreError

MEMORY = ":memory:"


def open_store(settings: Settings, *, credential: Any = None) -> Store:
    """`credential` (a TokenCredential) replaces the one identity-based table storage would build from settings
    (tests; the connection-string form ignores it)."""
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
        from shared.state.tables import TableStore

        if settings.storage_connection:
            return TableStore(settings.storage_connection, prefix=settings.table_prefix)
        if settings.table_endpoint:
            options = {"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}
            return TableStore(endpoint=settings.table_endpoint, credential=credential or storage_credential(settings),
                              prefix=settings.table_prefix, **options)
        raise StoreError("the table backend needs AzureWebJobsStorage (a storage connection string) or "
                         "AzureWebJobsStorage__tableServiceUri / __accountName (identity-based access)")
    raise ValueError(f"unknown state backend {settings.state_backend!r}: expected sqlite or table")


def storage_credential(settings: Settings) -> Any:
    """The token credential for identity-based table storage, as the Functions host reads the same settings:
    `AzureWebJobsStorage__credential=managedidentity` is the app's managed identity (the user-assigned one whose
    client id is `__clientId`, else AZURE_CLIENT_ID, else the system-assigned one); otherwise
    DefaultAzureCredential (a developer's own sign-in, locally)."""
    client_id = settings.storage_identity_client_id or None
    if settings.storage_credential == MANAGED_IDENTITY:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
