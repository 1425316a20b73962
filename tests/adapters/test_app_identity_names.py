"""An Application Insights app's AppRoleName names the caller it resolves to (AppIdentities.name_of): directly mapped
object ids at once, app resources once their managed identity was read. No I/O: ARM's GET is a stub."""

from __future__ import annotations

from shared.adapters.app_identity import AppIdentities

DIRECT = "0f5a7c3e-1d2b-4e6f-8a9b-0000000000d1"
SITE_OID = "0f5a7c3e-1d2b-4e6f-8a9b-0000000000d2"
SITE = "/subscriptions/s1/resourceGroups/rg-apps/providers/Microsoft.Web/sites/checkout"


def _identities(reads: list[str]) -> AppIdentities:
    def get_json(resource_id: str, api_version: str):
        reads.append(resource_id)
        return {"id": resource_id, "identity": {"type": "SystemAssigned", "principalId": SITE_OID.upper()}}

    return AppIdentities({"orders-web": DIRECT.upper(), "checkout-web": SITE, "checkout-alias": SITE,
                          "orders-copy": DIRECT}, get_json)


def test_a_directly_mapped_caller_is_named_without_a_read():
    reads: list[str] = []
    apps = _identities(reads)
    assert apps.name_of(DIRECT) == apps.name_of(DIRECT.upper()) == "orders-web"  # the first app of that identity
    assert reads == []


def test_an_app_resource_names_its_identity_once_resolved_and_across_runs():
    reads: list[str] = []
    apps = _identities(reads)
    assert apps.name_of(SITE_OID) is None  # not read yet: no look-up for a name
    assert apps.identity_of("checkout-alias") == SITE_OID
    assert apps.name_of(SITE_OID) == "checkout-web"  # the first app in the mapping, not the one that resolved it
    apps.new_run()
    assert apps.name_of(SITE_OID) == "checkout-web" and reads == [SITE]


def test_unknown_and_malformed_callers_have_no_name():
    apps = _identities([])
    assert apps.name_of("0f5a7c3e-1d2b-4e6f-8a9b-0000000000ff") is None
    assert apps.name_of("not-a-guid") is None and apps.name_of("") is None
