"""Adapters to Azure: the only modules that import Azure SDK clients (always inside functions).

They implement the core's ports (`shared.core.ports`: FailureSource, EvidenceProvider, RoleWriter, EventPublisher)
and return core types; they import the core and `shared.settings`, never the engine or the composition root.
"""
