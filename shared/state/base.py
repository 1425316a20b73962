"""The Store contract (`shared.core.ports.Store`); both backends pass tests/state/test_store_contract.py.

Rules every backend keeps:
- Writes are conditional: `put_incident(inc, expected_etag=None)` creates and fails with `ConflictError` if the
  incident exists; with an etag it replaces only if unchanged since read, else `ConflictError`. This is what lets
  several instances run at once without acting twice.
- Any other failure raises `StoreError` (or the SDK's own error): callers fail the run loudly and do not advance
  watermarks.
- Datetimes are timezone-aware UTC in and out.

The types are core types, re-exported here for the backends.
"""

from __future__ import annotations

from shared.core.ports import Store
from shared.core.records import AuditRecord, ConflictError, StoreError, Suppression

__all__ = ["AuditRecord", "ConflictError", "Store", "StoreError", "Suppression"]
