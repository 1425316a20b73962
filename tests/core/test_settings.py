import json

import pytest

from shared.core import roles
from shared.settings import SPECS, Settings, SettingsError, load_settings, missing_host_settings, sample_values
from tests.support.paths import REPO_ROOT

SP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def test_defaults_load_and_mode_is_recommend():
    settings = load_settings({})
    assert settings.mode == "recommend"
    assert settings.max_grants_per_run == 5
    assert settings.max_grants_per_day == 20
    assert settings.propagation_window_seconds == 600
    assert settings.allowlist.entries == ()


def test_every_bad_key_is_named_in_one_error():
    env = {
        "TRIAGE_MODE": "yolo",
        "TRIAGE_MAX_GRANTS_PER_RUN": "many",
        "TRIAGE_ARM_ENDPOINT": "http://insecure",
        "TRIAGE_TICKET_SINKS": "log,github",
    }
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    keys = [k for k, _ in info.value.problems]
    assert keys == [
        "TRIAGE_MODE",
        "TRIAGE_MAX_GRANTS_PER_RUN",
        "TRIAGE_ARM_ENDPOINT",
        "TRIAGE_GITHUB_REPO",
        "TRIAGE_GITHUB_TOKEN",
    ]
    assert "expected one of: observe, recommend, enforce" in str(info.value)
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize("role", ["Owner", "Contributor", "User Access Administrator",
                                  "Role Based Access Control Administrator", "Cognitive Services Contributor",
                                  "Foundry Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Nonexistent"])
def test_allowlist_naming_a_non_grantable_role_is_rejected_at_load(role):
    allowlist = json.dumps([{"object_id": SP, "roles": [role]}])
    with pytest.raises(SettingsError) as info:
        load_settings({"TRIAGE_ALLOWLIST": allowlist})
    assert info.value.problems[0][0] == "TRIAGE_ALLOWLIST"
    assert "not grantable" in info.value.problems[0][1]


def test_allowlist_entries_are_normalized_and_narrowed():
    allowlist = json.dumps([{"object_id": " {" + SP.upper() + "} ", "roles": ["Azure AI User"],
                             "scopes": ["/SUBSCRIPTIONS/x/resourceGroups/rg/"]}])
    settings = load_settings({"TRIAGE_ALLOWLIST": allowlist})
    entry = settings.allowlist.find(SP)
    assert entry is not None
    assert entry.role_ids == frozenset({roles.FOUNDRY_USER.guid})
    assert entry.allows_scope("/subscriptions/X/resourcegroups/RG/providers/Microsoft.CognitiveServices/accounts/a")
    assert not entry.allows_scope("/subscriptions/x/resourceGroups/rg2/providers/x")
    assert settings.allowlist.find(SP[:-1] + "0") is None


def test_secrets_are_redacted():
    settings = load_settings({"TRIAGE_TICKET_SINKS": "webhook", "TRIAGE_WEBHOOK_URL": "https://hooks.example",
                              "TRIAGE_WEBHOOK_SECRET": "s3cr3t-value"})
    shown = json.dumps(settings.redacted())
    assert "s3cr3t-value" not in shown
    assert settings.redacted()["TRIAGE_WEBHOOK_SECRET"] == "<set>"


def test_sample_file_lists_every_setting_with_a_value_that_loads():
    sample = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())["Values"]
    for spec in SPECS:
        assert spec.env in sample, spec.env
        assert isinstance(sample[spec.env], str)
    assert sample_values().items() <= sample.items()
    assert isinstance(load_settings(sample_values()), Settings)


def test_reference_files_are_generated_from_the_specs():
    from shared.settings_reference import sample_json, settings_markdown

    assert (REPO_ROOT / "local.settings.sample.json").read_text() == sample_json(), (
        "run: python -m shared settings-files")
    text = (REPO_ROOT / "docs" / "settings.md").read_text()
    assert text == settings_markdown(), "run: python -m shared settings-files"
    assert [s.env for s in SPECS if f"`{s.env}`" not in text] == []


def test_a_schedule_the_host_would_refuse_is_a_host_problem_not_a_settings_error():
    settings = load_settings({"TRIAGE_SCAN_SCHEDULE": "0 60 * * * *", "TRIAGE_MODE": "observe"})
    assert settings.mode == "observe"  # the service's own settings load: only the timer is affected
    ((key, expected),) = settings.host_problems
    assert key == "TRIAGE_SCAN_SCHEDULE" and "the minute field '60'" in expected


@pytest.mark.parametrize("value", ["00:05:00", "0 30 9 * Jan Mon", " 0 */5 * * * * "])
def test_schedules_the_host_accepts_load_without_problems(value):
    settings = load_settings({"TRIAGE_SCAN_SCHEDULE": value})
    assert settings.host_problems == () and settings.scan_schedule == value.strip()


def test_a_blank_schedule_is_not_replaced_by_the_default_the_host_never_sees():
    ((key, expected),) = load_settings({"TRIAGE_SCAN_SCHEDULE": "  "}).host_problems
    assert key == "TRIAGE_SCAN_SCHEDULE" and "empty" in expected


def test_an_unset_schedule_is_missing_for_the_host_only():
    assert load_settings({}).host_problems == ()  # the CLI and tests never go through the host
    assert [k for k, _ in missing_host_settings({})] == ["TRIAGE_SCAN_SCHEDULE"]
    assert missing_host_settings({"TRIAGE_SCAN_SCHEDULE": "0 */5 * * * *"}) == []


# ---- settings hygiene and identity-based storage (issue 15) ----

WORKSPACE = "9c8b7a6d-5e4f-4a3b-8c2d-000000000003"


@pytest.mark.parametrize("key", ["TRIAGE_WORKSPACE_IDS", "TRIAGE_APPINSIGHTS_WORKSPACE_IDS",
                                 "TRIAGE_APIM_WORKSPACE_IDS"])
def test_workspace_ids_must_be_guids(key):
    assert getattr(load_settings({key: f" {WORKSPACE} , {WORKSPACE.upper()}"}),
                   key.removeprefix("TRIAGE_").lower()) == (WORKSPACE, WORKSPACE.upper())
    with pytest.raises(SettingsError) as info:
        load_settings({key: f"{WORKSPACE},law-prod"})
    ((bad_key, why),) = info.value.problems
    assert bad_key == key and "'law-prod' is not a GUID" in why


def test_chat_approvers_are_object_ids_or_sign_in_names_folded_for_matching():
    loaded = load_settings({"TRIAGE_CHAT_APPROVERS": f" Alex@Contoso.com , {WORKSPACE.upper()}, alex@contoso.com"})
    assert loaded.chat_approvers == ("alex@contoso.com", WORKSPACE)
    for bad in ("alex", "ops team@contoso.com", "@contoso.com"):
        with pytest.raises(SettingsError) as info:
            load_settings({"TRIAGE_CHAT_APPROVERS": f"alex@contoso.com,{bad}"})
        ((bad_key, why),) = info.value.problems
        assert bad_key == "TRIAGE_CHAT_APPROVERS" and repr(bad) in why


def test_unknown_triage_keys_are_kept_with_the_closest_known_name():
    settings = load_settings({"TRIAGE_MOD": "enforce", "TRIAGE_WORKSPACE_ID": WORKSPACE, "TRIAGE_QQQQQQQQQQQQQQ": "1",
                              "TRIAGE_DEMO_TICKETS": "jira", "OTHER": "x"})
    assert settings.mode == "recommend"  # the misspelled key changes nothing
    assert settings.unknown_settings == (("TRIAGE_MOD", "TRIAGE_MODE"), ("TRIAGE_QQQQQQQQQQQQQQ", ""),
                                         ("TRIAGE_WORKSPACE_ID", "TRIAGE_WORKSPACE_IDS"))


def test_in_azure_the_state_backend_defaults_to_table_and_sqlite_is_refused():
    azure = {"WEBSITE_INSTANCE_ID": "0123abcd", "AzureWebJobsStorage__accountName": "triagestate",
             "AzureWebJobsStorage__credential": "managedidentity"}
    settings = load_settings(azure)
    assert settings.running_in_azure and settings.state_backend == "table"
    assert settings.table_endpoint == "https://triagestate.table.core.windows.net"
    with pytest.raises(SettingsError) as info:
        load_settings({**azure, "TRIAGE_STATE_BACKEND": "sqlite"})
    ((key, why),) = info.value.problems
    assert key == "TRIAGE_STATE_BACKEND" and "sqlite is refused in Azure" in why
    assert load_settings({}).state_backend == "sqlite" and not load_settings({}).running_in_azure


def test_identity_based_table_storage_reads_the_functions_host_settings_in_any_case():
    uri = "https://triagestate.table.core.windows.net/"
    user_assigned = "0B0B0B0B-0000-4000-8000-000000000001"
    settings = load_settings({"TRIAGE_STATE_BACKEND": "table", "azurewebjobsstorage__TableServiceUri": uri,
                              "AzureWebJobsStorage__credential": "ManagedIdentity",
                              "AzureWebJobsStorage__clientId": user_assigned})
    assert settings.table_endpoint == uri.rstrip("/") and settings.storage_credential == "managedidentity"
    assert settings.storage_identity_client_id == user_assigned.lower()
    assert load_settings({"AZURE_CLIENT_ID": user_assigned}).storage_identity_client_id == user_assigned.lower()
    assert "unknown_settings" not in json.dumps(settings.redacted())


@pytest.mark.parametrize(("env", "key", "why"), [
    ({}, "AzureWebJobsStorage", "AzureWebJobsStorage__tableServiceUri"),
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "acct"},
     "AzureWebJobsStorage", "not both"),
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__credential": "managedidentity"},
     "AzureWebJobsStorage__credential", "only used with"),
    ({"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__clientId": SP}, "AzureWebJobsStorage__clientId",
     "credential=managedidentity"),
    ({"AzureWebJobsStorage__accountName": "Not_An_Account"}, "AzureWebJobsStorage__accountName", "storage account"),
    ({"AzureWebJobsStorage__tableServiceUri": "http://plain"}, "AzureWebJobsStorage__tableServiceUri", "https://"),
    ({"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__credential": "key"},
     "AzureWebJobsStorage__credential", "managedidentity"),
])
def test_table_storage_settings_that_do_not_fit_are_named(env, key, why):
    with pytest.raises(SettingsError) as info:
        load_settings({"TRIAGE_STATE_BACKEND": "table", **env})
    assert [k for k, _ in info.value.problems] == [key] and why in info.value.problems[0][1]


def test_a_settings_error_has_a_one_line_form():
    with pytest.raises(SettingsError) as info:
        load_settings({"TRIAGE_MODE": "yolo", "TRIAGE_WORKSPACE_IDS": "ws"})
    line = info.value.one_line()
    assert "\n" not in line and line.startswith("invalid settings: TRIAGE_MODE: ")
    assert "; TRIAGE_WORKSPACE_IDS: 'ws' is not a GUID" in line
