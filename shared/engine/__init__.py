"""The imperative shell: runs a scan cycle, verifications, approvals, using the core and the adapters."""
