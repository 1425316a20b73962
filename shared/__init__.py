"""Entra ID 401/403 triage for Azure OpenAI and Microsoft Foundry.

The layers, as the imports are (checked by tests/test_layers.py; see docs/architecture.md):
- `shared.core`: the pure core (diagnosis, policy, incident lifecycle, triage rules, the ports). Imports only
  itself and the standard library.
- `shared.adapters`, `shared.state`, `shared.tickets`: the edge (Azure SDK clients, the stores, the ticket
  sinks). They implement the core's ports and import the core, never the engine.
- `shared.engine`: the imperative shell that runs the steps over the ports.
- `shared.bootstrap`: the composition root that builds a Runtime from settings.
- `shared.cli`, `shared.commands` and `function_app.py`: entry points.
Importing this package must stay cheap: it is on the Function App's cold-start path.
"""
