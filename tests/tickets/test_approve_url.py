"""The approve hint carries the full approve URL when the app's address is known (issue 17, item 3): the
TRIAGE_PUBLIC_BASE_URL setting, else on Azure https:// + the platform's WEBSITE_HOSTNAME; else the relative path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.core.approval import ApprovalTerms
from shared.settings import SettingsError, load_settings
from shared.tickets.content import approve_hint, approve_url
from tests.tickets.test_content import ACCOUNT, OID, _incident

BASE = {"TRIAGE_SCAN_SCHEDULE": "0 */5 * * * *"}
IN_AZURE = {**BASE, "WEBSITE_INSTANCE_ID": "abc123", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
TERMS = ApprovalTerms(OID, "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", "Cognitive Services OpenAI User", ACCOUNT,
                      "8c1d304e9d00")


def base_url(env: dict[str, str]) -> str:
    return load_settings(env).public_base_url


def test_the_setting_names_the_address_people_reach():
    assert base_url({**IN_AZURE, "WEBSITE_HOSTNAME": "triage.azurewebsites.net",
                     "TRIAGE_PUBLIC_BASE_URL": "https://oncall.contoso.com/"}) == "https://oncall.contoso.com"
    assert base_url({**BASE, "TRIAGE_PUBLIC_BASE_URL": "https://oncall.contoso.com"}) == "https://oncall.contoso.com"


def test_on_azure_the_platform_host_name_is_the_default():
    assert base_url({**IN_AZURE, "WEBSITE_HOSTNAME": "Triage-Prod.azurewebsites.net"}) == \
        "https://triage-prod.azurewebsites.net"


@pytest.mark.parametrize("env", [
    BASE,  # not on Azure, nothing set
    {**BASE, "WEBSITE_HOSTNAME": "localhost:7071"},  # the local Functions host sets it too, and serves http
    IN_AZURE,  # on Azure without a host name
    {**IN_AZURE, "WEBSITE_HOSTNAME": "bad host/with a path"},
], ids=["local", "local-functions-host", "azure-no-host", "azure-bad-host"])
def test_unknown_address_keeps_the_relative_path(env):
    assert base_url(env) == ""


def test_a_base_url_that_is_not_https_is_refused():
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "TRIAGE_PUBLIC_BASE_URL": "http://oncall.contoso.com"})
    assert [key for key, _ in caught.value.problems] == ["TRIAGE_PUBLIC_BASE_URL"]


def test_the_hint_carries_the_full_url_when_the_address_is_known():
    incident = replace(_incident(), approval_terms=TERMS)
    full = f"https://triage.azurewebsites.net/api/incidents/{incident.id}/approve"
    assert approve_url(incident.id, "https://triage.azurewebsites.net/") == full
    hint = approve_hint(incident, base_url="https://triage.azurewebsites.net")
    assert f"POST {full} with" in hint and TERMS.fingerprint in hint
    assert full in approve_hint(replace(incident, approval_terms=None), base_url="https://triage.azurewebsites.net")


def test_the_hint_keeps_the_relative_path_when_the_address_is_unknown():
    incident = replace(_incident(), approval_terms=TERMS)
    assert f"POST /api/incidents/{incident.id}/approve with" in approve_hint(incident)
    assert approve_hint(incident) == approve_hint(incident, base_url="")
