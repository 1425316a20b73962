"""Ticket sinks: one ticket per incident fingerprint, updated on recurrence, resolved when verified."""
