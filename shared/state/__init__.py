"""Incident state and audit: a Store protocol with SQLite (embedded) and Azure Table Storage backends."""
