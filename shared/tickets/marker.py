"""The searchable marker that ties a ticket to an incident fingerprint in every tracker."""

from __future__ import annotations

import hashlib

MANAGED_LABEL = "aoai-auth-triage"  # tag/label on every ticket this service manages
MARKER_PREFIX = "triage-"


def marker_for(fingerprint: str) -> str:
    """`triage-<12 hex>`: fits label/tag rules (no spaces, short) in every tracker; the body keeps the full
    fingerprint. 48 bits make an accidental collision between two live incidents negligible."""
    return MARKER_PREFIX + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:12]


# The self-check's look-up (`probe()` on a sink): a marker no incident has, so the read finds nothing and writes
# nothing, yet proves the URL, the credentials and the project or repository.
PROBE_MARKER = marker_for("aoai-auth-triage self-check")
