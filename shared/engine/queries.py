"""Read-only services for on-call engineers: explain a failure with live evidence, list and show incidents."""

from __future__ import annotations

from typing import Any

from shared.core import incidents as inc
from shared.core.diagnose import diagnose
from shared.core.model import Diagnosis, FailureSignal
from shared.core.ports import evidence_key
from shared.engine.runtime import Runtime
from shared.engine.unit_of_work import load_revocations


def explain(rt: Runtime, signal: FailureSignal) -> tuple[Diagnosis, bool]:
    """The diagnosis of one failure, with fresh live evidence when the principal and resource are known (True),
    else from the text alone (False). Writes nothing."""
    evidence = None
    if signal.resource_id and signal.object_id:
        pair = evidence_key(signal.object_id, signal.resource_id)
        rt.refresh_evidence()
        evidence = rt.evidence.gather_evidence({pair}).get(pair)
    diagnosis = diagnose(signal, evidence, now=rt.clock(), propagation_window=rt.window)
    return diagnosis, evidence is not None


def incident_summaries(rt: Runtime, status: str | None = None) -> list[dict[str, Any]]:
    return [summary(i) for i in rt.store.list_incidents(status)]


def revocation_list(rt: Runtime, principal_id: str | None = None) -> list[dict[str, Any]]:
    """The revocations in force (of one principal, when given); an unreadable record says so."""
    found = load_revocations(rt)
    if found.unreadable:
        return [{"error": found.unreadable}]
    entries = found.of_principal(principal_id) if principal_id is not None else found.entries
    return [r.to_json() for r in sorted(entries, key=lambda r: r.at)]


def incident_detail(rt: Runtime, incident_id: str) -> dict[str, Any] | None:
    """The incident's record with its audit trail and the revocations of its principal; None when there is no such
    incident."""
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        return None
    body = incident.to_record()
    body["revocations"] = revocation_list(rt, incident.principal_id) if incident.principal_id else []
    body["audit"] = [
        {"at": a.at.isoformat(), "kind": a.kind, "actor": a.actor, "correlation_id": a.correlation_id,
         "detail": a.detail, "inputs": a.inputs, **({"trace_id": a.trace_id} if a.trace_id else {})}
        for a in rt.store.list_audit(incident_id)
    ]
    return body


def summary(incident: inc.Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "status": incident.status,
        "cause": incident.cause,
        "principal_id": incident.principal_id,
        "resource_id": incident.resource_id,
        "count": incident.count,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "role": incident.diagnosis.role_name if incident.diagnosis else None,
        "scope": incident.diagnosis.scope if incident.diagnosis else None,
        "tickets": incident.ticket_refs,
    }
