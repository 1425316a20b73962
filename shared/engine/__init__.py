"""The imperative shell: scan cycles, verifications, approvals, events, over the ports in `shared.core.ports`.

It imports the core and the ticket wording, never an adapter: the composition root (`shared.bootstrap`) hands it
a Runtime whose ports are adapters, or fakes in the fast test tier.
"""
