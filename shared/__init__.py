"""Entra ID 401/403 triage for Azure OpenAI and Microsoft Foundry.

`shared.core` is the pure functional core (no I/O, no Azure SDK imports); `shared.adapters`,
`shared.state` and `shared.tickets` are the imperative edge; `shared.engine` wires them together.
Importing this package must stay cheap: it is on the Function App's cold-start path.
"""
