"""Which failures a retry (an Event Grid redelivery, the next timer run) can cure, as the Azure SDK reports them."""

from __future__ import annotations

from shared.core.records import TRANSIENT_ERRORS, in_cause_chain

# HTTP statuses azure-core itself retries: still failing after its retries means "unavailable for now".
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """The store, or an Azure service (Log Analytics, ARM) that stayed unavailable after the SDK's own retries.
    Adapters wrap SDK errors (`SourceError(...) from exc`), so the explicit cause chain is followed; a bad request
    (400, 403) is not transient."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    def retryable(error: BaseException) -> bool:
        if isinstance(error, (*TRANSIENT_ERRORS, ServiceRequestError, ServiceResponseError)):
            return True
        return isinstance(error, HttpResponseError) and error.status_code in RETRYABLE_STATUS

    return in_cause_chain(exc, retryable)
