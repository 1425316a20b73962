"""The ARM stand-in's diagnostic settings (`GET {account}/providers/Microsoft.Insights/diagnosticSettings`), and the
JWT-shaped own-identity token the self-check reads its `oid` from."""

from __future__ import annotations

import requests

from localazure import JwtCredential
from shared.core.doctor import jwt_claims

API = {"api-version": "2021-05-01-preview"}


def diagnostic_settings(az, account_id: str) -> requests.Response:
    return requests.get(f"{az.arm_url}{account_id}/providers/Microsoft.Insights/diagnosticSettings", params=API,
                        headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)


def test_an_account_sends_its_categories_to_the_main_workspace_by_default(local_azure):
    answer = diagnostic_settings(local_azure, local_azure.account_id("aoai-prod"))
    assert answer.status_code == 200
    [setting] = answer.json()["value"]
    props = setting["properties"]
    assert setting["type"] == "Microsoft.Insights/diagnosticSettings"
    assert props["workspaceId"].endswith(f"/workspaces/law-{local_azure.workspace_id[:8]}")
    assert {log["category"] for log in props["logs"] if log["enabled"]} == {"Audit", "RequestResponse", "Trace"}
    assert local_azure.calls.by_route("arm")["diagnosticSettings.list"] >= 1


def test_an_account_without_a_setting_answers_an_empty_list_and_an_unknown_one_404(local_azure_factory):
    az = local_azure_factory({"resources": [{"name": "quiet", "diagnostic_categories": []},
                                            {"name": "audit-only", "diagnostic_categories": ["Audit"]}]})
    assert diagnostic_settings(az, az.account_id("quiet")).json() == {"value": []}
    [setting] = diagnostic_settings(az, az.account_id("audit-only")).json()["value"]
    assert [log["category"] for log in setting["properties"]["logs"]] == ["Audit"]
    az.update_account("quiet", diagnostic_categories=["RequestResponse"])
    assert len(diagnostic_settings(az, az.account_id("quiet")).json()["value"]) == 1
    missing = diagnostic_settings(az, az.account_id("quiet").replace("quiet", "nowhere"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


def test_the_own_token_names_the_own_identity_and_the_stand_in_takes_it_as_such(local_azure):
    claims = jwt_claims(local_azure.info()["own_token"])
    assert claims["oid"] == local_azure.own_principal_id and claims["tid"] == local_azure.tenant_id
    credential = JwtCredential(local_azure.own_principal_id, local_azure.tenant_id)
    token = credential.get_token("https://storage.azure.com/.default").token
    assert jwt_claims(token)["aud"] == "https://storage.azure.com"
    assert jwt_claims(token)["iss"] == f"https://sts.windows.net/{local_azure.tenant_id}/"
