"""The azd template, read offline: every `.bicep` parses, and the properties the service depends on are there.

Compiling (`az bicep build`) and `what-if` need a connected pipeline (docs/deploy.md); these tests read the source.
"""

from __future__ import annotations

import json

import pytest

from shared.core import roles
from shared.settings import SPECS
from tests.support.bicep import (
    INFRA,
    bicep_files,
    modules,
    parameters,
    parsed,
    relative,
    resources,
    text_of,
    variable,
)
from tests.support.paths import REPO_ROOT

ROLE_IDS = json.loads((INFRA / "rbac" / "roles.json").read_text(encoding="utf-8"))

# App settings that are not TRIAGE_* settings of shared/settings.py, each documented by the Functions host or the
# platform (not by us): identity-based host storage, and Application Insights with Entra ingestion.
HOST_SETTINGS = {
    # "Connecting to host storage with an identity" (Functions reference, identity-based connections)
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    # "Microsoft Entra authentication for Application Insights" (Functions app settings reference)
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # "Use OpenTelemetry with Azure Functions" (Python): the worker exports OpenTelemetry itself
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME",
}
KNOWN_SETTINGS = {spec.env for spec in SPECS} | HOST_SETTINGS
SECRET_SETTINGS = {spec.env for spec in SPECS if spec.secret}


def one(resource_type: str):
    found = list(resources(resource_type))
    assert len(found) == 1, f"expected one {resource_type}, found {[(r.file, r.symbol) for r in found]}"
    return found[0]


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_every_bicep_file_parses(path):
    assert parsed(relative(path)) is not None


def test_every_module_path_exists():
    for path in bicep_files():
        for symbol, (_body, _condition, module_path) in modules(relative(path)).items():
            assert (path.parent / module_path).is_file(), f"{relative(path)}: module {symbol} -> {module_path}"


def test_main_is_deployed_at_subscription_scope_with_a_resource_group():
    assert parsed("main.bicep")["globals"]["scope"]["value"] == "subscription"
    groups = [r for r in resources("Microsoft.Resources/resourceGroups") if r.file == "main.bicep"]
    assert len(groups) == 1


def test_the_plan_is_flex_consumption():
    plan = one("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.body["properties"]["reserved"] is True  # Linux


def test_the_site_runs_python_3_11_with_the_user_assigned_identity():
    site = one("Microsoft.Web/sites")
    assert site.body["kind"] == "functionapp,linux"
    assert site.body["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert site.body["identity"]["type"] == "UserAssigned"
    assert site.body["properties"]["keyVaultReferenceIdentity"] == "identityId"
    package = site.body["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert package == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert one("Microsoft.ManagedIdentity/userAssignedIdentities").file == "core/identity.bicep"
    assert modules("main.bicep")["functionApp"][0]["params"]["identityId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "identity", "operand_2": {
            "operator": {"type": "property_accessor", "operands": {"operand_1": "outputs", "operand_2": "id"}}}}}}


def test_storage_has_shared_keys_off_and_the_identity_holds_blob_owner_and_table_contributor():
    storage = one("Microsoft.Storage/storageAccounts")
    assert storage.body["properties"]["allowSharedKeyAccess"] is False
    assert storage.body["properties"]["allowBlobPublicAccess"] is False
    granted = {assignment_role(r) for r in resources("Microsoft.Authorization/roleAssignments")
               if r.file == "rbac/app-roles.bicep" and r.body["scope"] == "storage"}
    assert granted == {ROLE_IDS["storageBlobDataOwner"], ROLE_IDS["storageTableDataContributor"]}


def test_application_insights_is_workspace_based_with_local_auth_off_and_metrics_publisher():
    insights = one("Microsoft.Insights/components")
    assert insights.body["properties"]["DisableLocalAuth"] is True
    assert insights.body["properties"]["WorkspaceResourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": "id"}}}
    scoped = {assignment_role(r): r.body["scope"] for r in resources("Microsoft.Authorization/roleAssignments")
              if r.file == "rbac/app-roles.bicep"}
    assert scoped[ROLE_IDS["monitoringMetricsPublisher"]] == "appInsights"
    assert scoped[ROLE_IDS["keyVaultSecretsUser"]] == "vault"


def test_key_vault_is_in_rbac_mode():
    vault = one("Microsoft.KeyVault/vaults")
    assert vault.body["properties"]["enableRbacAuthorization"] is True
    assert "accessPolicies" not in vault.body["properties"]


def assignment_role(resource) -> str:
    """The role GUID of a role assignment written as subscriptionResourceId(..., roles.<key>)."""
    definition = resource.body["properties"]["roleDefinitionId"]["function"]
    assert definition["type"] == "subscription_resource_id"
    assert definition["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    operands = definition["parameters"]["resource_name_1"]["operator"]["operands"]
    assert operands["operand_1"] == "roles", "role GUIDs come from rbac/roles.json"
    return ROLE_IDS[operands["operand_2"]]


def test_role_guids_are_the_built_in_ones_the_service_knows():
    assert ROLE_IDS["reader"] == roles.lookup("Reader").guid
    assert ROLE_IDS["roleBasedAccessControlAdministrator"] == roles.lookup(
        "Role Based Access Control Administrator").guid


def test_every_role_assignment_names_a_service_principal_and_a_deterministic_guid():
    found = list(resources("Microsoft.Authorization/roleAssignments"))
    assert len(found) >= 8
    for r in found:
        assert r.body["properties"]["principalType"] == "ServicePrincipal", (r.file, r.symbol)
        assert r.body["name"]["function"]["type"] == "guid", (r.file, r.symbol)


def test_the_role_writer_is_rbac_administrator_on_each_account_with_the_condition_parameter():
    writers = [r for r in resources("Microsoft.Authorization/roleAssignments")
               if assignment_role(r) == ROLE_IDS["roleBasedAccessControlAdministrator"]]
    assert [w.file for w in writers] == ["rbac/account-role-writer.bicep"]
    writer = writers[0]
    assert writer.body["scope"] == "account"
    account = parsed(writer.file)["resources"]["account"]
    assert account["type"] == "Microsoft.CognitiveServices/accounts" and account["existing"] is True
    assert writer.body["properties"]["conditionVersion"] == "2.0"
    assert writer.body["properties"]["condition"] == "condition"
    # main.bicep: one per account, in the account's own resource group, only with enableRoleWriter, and the
    # condition is the rbacCondition parameter (tests/infra/test_condition.py checks its value).
    body, condition, path = modules("main.bicep")["roleWriters"]
    assert path == "rbac/account-role-writer.bicep"
    assert condition == "enableRoleWriter"
    assert body["params"]["condition"] == "rbacCondition"
    assert text_of(body["scope"]).count('"resource_group"') == 1
    assert "rbacCondition" in parameters("main.bicep")
    assert parameters("main.bicep")["enableRoleWriter"]["default"] is False


def test_readers_on_workspaces_and_subscriptions():
    reader = [r for r in resources("Microsoft.Authorization/roleAssignments")
              if r.file == "rbac/workspace-reader.bicep"]
    assert [assignment_role(r) for r in reader] == [ROLE_IDS["logAnalyticsReader"]]
    assert reader[0].body["scope"] == "workspace"
    subscription = [r for r in resources("Microsoft.Authorization/roleAssignments")
                    if r.file == "events/watched-subscription.bicep"]
    assert [assignment_role(r) for r in subscription] == [ROLE_IDS["reader"]]
    assert "scope" not in subscription[0].body  # the module's scope: the subscription itself
    assert parsed("events/watched-subscription.bicep")["globals"]["scope"]["value"] == "subscription"
    main = modules("main.bicep")
    for symbol in ("workspaceReaders", "appInsightsReaders", "apimReaders"):
        assert main[symbol][2] == "rbac/workspace-reader.bicep"
    assert main["watchedSubscriptions"][2] == "events/watched-subscription.bicep"


def test_each_account_sends_request_response_logs():
    setting = one("Microsoft.Insights/diagnosticSettings")
    assert setting.body["scope"] == "account"
    assert [log["category"] for log in setting.body["properties"]["logs"]] == ["RequestResponse"]
    assert all(log["enabled"] is True for log in setting.body["properties"]["logs"])
    assert modules("main.bicep")["accountDiagnostics"][2] == "monitor/account-diagnostics.bicep"


def test_a_system_topic_per_watched_subscription_for_arm_events():
    topic = one("Microsoft.EventGrid/systemTopics")
    assert topic.body["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    assert topic.body["location"] == "global"
    assert topic.body["identity"]["type"] == "SystemAssigned"  # writes the dead letters
    outputs = parsed("main.bicep")["outputs"]
    assert {"EVENT_GRID_SYSTEM_TOPIC_IDS", "SERVICE_API_RESOURCE_ID", "EVENT_GRID_DEAD_LETTER_STORAGE_ID",
            "EVENT_GRID_DEAD_LETTER_CONTAINER"} <= set(outputs)


def test_the_action_group_calls_the_alerts_function_in_the_common_alert_schema():
    groups = {r.symbol: r for r in resources("Microsoft.Insights/actionGroups")}
    receivers = groups["triage"].body["properties"]["azureFunctionReceivers"]
    assert [(r["functionName"], r["useCommonAlertSchema"]) for r in receivers] == [("alerts", True)]
    assert receivers[0]["httpTriggerUrl"] == "https://${functionAppHostName}/api/alerts"


def test_app_service_authentication_guards_approve_and_revoke_when_a_client_id_is_given():
    auth = [r for r in resources("Microsoft.Web/sites/config") if r.body["name"] == "authsettingsV2"]
    assert len(auth) == 1 and auth[0].condition is not None and "authClientId" in text_of(auth[0].condition)
    validation = auth[0].body["properties"]["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    excluded = variable("app/function.bicep", "machineRoutes")
    # No excluded path may be a prefix of the approve/revoke routes, or they would be let through.
    for route in ("/api/incidents/x/approve", "/api/incidents/x/revoke"):
        assert not any(route.startswith(path) for path in excluded)
    assert {"/api/health", "/api/alerts", "/runtime/webhooks/eventgrid"} <= set(excluded)


def app_settings() -> dict[str, object]:
    """Every app setting the template sets: main.bicep's triageSettings and function.bicep's own."""
    (config,) = [r for r in resources("Microsoft.Web/sites/config") if r.body["name"] == "appsettings"]
    union = config.body["properties"]["function"]
    assert union["type"] == "union" and union["parameters"]["arg_1"] == "triageSettings"
    assert modules("main.bicep")["functionApp"][0]["params"]["triageSettings"] == "triageSettings"
    return {**variable("main.bicep", "triageSettings"), **union["parameters"]["arg_2"]}


def test_every_app_setting_is_a_known_setting():
    settings = app_settings()
    unknown = sorted(set(settings) - KNOWN_SETTINGS)
    assert not unknown, f"app settings that are neither in shared/settings.py SPECS nor host settings: {unknown}"
    assert "AzureWebJobsStorage" not in settings  # a connection string needs shared keys, which are off


def test_the_app_exports_opentelemetry_as_the_functions_docs_say():
    """"Use OpenTelemetry with Azure Functions": the host's telemetryMode, and for Python the worker's own export of
    the service's logger (the one the adapter exports when it sets the distro up itself)."""
    from shared.adapters.telemetry import SERVICE_LOGGER

    host = json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = app_settings()
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert settings["PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"] == SERVICE_LOGGER
    pins = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").split()
    assert any(pin.startswith("azure-monitor-opentelemetry==") for pin in pins)


def test_host_storage_is_identity_based():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for key in ("AzureWebJobsStorage__clientId", "AzureWebJobsStorage__blobServiceUri",
                "AzureWebJobsStorage__tableServiceUri", "TRIAGE_SCAN_SCHEDULE", "TRIAGE_MODE"):
        assert settings[key], key
    assert settings["TRIAGE_STATE_BACKEND"] == "table"


def test_secret_settings_are_only_ever_key_vault_references():
    settings = app_settings()
    reference = variable("app/function.bicep", "keyVaultReference")
    assert reference.startswith("@Microsoft.KeyVault(VaultName=")
    for key in SECRET_SETTINGS & set(settings):
        branches = settings[key]["operator"]["operands"]
        assert branches["true_value"].startswith("${keyVaultReference}"), key
        assert branches["false_value"] == "", key
    assert {"TRIAGE_GITHUB_TOKEN", "TRIAGE_JIRA_TOKEN", "TRIAGE_ADO_PAT"} <= set(settings)
    assert "TRIAGE_LOCAL_TOKEN" not in settings and "TRIAGE_CA_BUNDLE" not in settings  # stand-in only


def test_ticket_settings_read_from_the_object_parameter_are_known_settings():
    for key, value in variable("main.bicep", "triageSettings").items():
        if "ticketSettings" in text_of(value):
            assert f'"{key}"' in text_of(value), f"{key} reads another key of ticketSettings"


def test_key_vault_crypto_user_is_only_granted_when_github_app_signing_is_asked_for():
    (crypto,) = [r for r in resources("Microsoft.Authorization/roleAssignments")
                 if assignment_role(r) == ROLE_IDS["keyVaultCryptoUser"]]
    assert (crypto.file, crypto.body["scope"], crypto.condition) == ("rbac/app-roles.bicep", "vault",
                                                                     "keyVaultCryptoUser")
    assert parameters("main.bicep")["githubAppKeySigning"]["default"] is False
    settings = variable("main.bicep", "triageSettings")
    for key in ("TRIAGE_GITHUB_APP_ID", "TRIAGE_GITHUB_APP_KEY_NAME", "TRIAGE_ADO_AUTH", "TRIAGE_ADO_AREA_PATH"):
        assert key in settings
