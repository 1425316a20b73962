"""Account settings handed over from a cut-off scan's checkpoint (`AzureEvidenceProvider.accept_accounts`), through
the real ARM clients against the stand-in: the batch takes them instead of a GET, and a new run forgets them."""

from __future__ import annotations

import pytest

from shared.core.model import ResourceEvidence
from shared.core.resource_ids import account_key
from tests.adapters.test_evidence import P1, make_clients


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(None)
    az.add_principal(P1, type="ServicePrincipal")
    return az


def test_accepted_account_settings_are_used_instead_of_a_get_until_the_next_run(az):
    a = az.add_account("acct-a")
    b = az.add_account("acct-b")
    clients = make_clients(az)
    handed = ResourceEvidence(account_key(a), kind="OpenAI", disable_local_auth=True)
    clients.evidence.accept_accounts({a: handed})
    evidence = clients.evidence.gather_evidence({(P1, a), (P1, b), (None, a + "/projects/p1")})

    assert evidence[(P1, a)].resource == handed and evidence[(None, a + "/projects/p1")].resource == handed
    assert evidence[(P1, b)].resource is not None and evidence[(P1, b)].resource.resource_id == account_key(b)
    gets = [c.path for c in az.calls.records if c.service == "arm" and c.route == "accounts.get"]
    assert [p.lower() for p in gets] == [b.lower()]  # only the account nobody handed over
    assert az.calls.count(service="arm", route="roleAssignments.list") == 1  # assignments are still read

    az.calls.reset()
    clients.evidence.new_run()
    again = clients.evidence.gather_evidence({(P1, a)})
    assert az.calls.count(service="arm", route="accounts.get") == 1  # forgotten: read from ARM
    assert again[(P1, a)].resource != handed
