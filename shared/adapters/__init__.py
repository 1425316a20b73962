"""Adapters to Azure: the only modules that import Azure SDK clients (always inside functions)."""
