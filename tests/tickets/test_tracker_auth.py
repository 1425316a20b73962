"""Tracker auth and routing from settings: GitHub App installation tokens (the private key in Key Vault, signed there
or read from a secret), Azure DevOps with the service's Entra identity, and the routing fields set on create.

The fast tier is the token cache and the JWT with a fake clock; the rest runs the real sinks over HTTPS against the
GitHub, Azure DevOps and Key Vault stand-ins."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localazure import JwtCredential
from localazure.credentials import jwt_token
from shared.settings import SettingsError, load_settings
from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.factory import build_sinks
from shared.tickets.github_app import JWT_AHEAD, JWT_BACKDATE, REFRESH_EARLY, app_jwt
from shared.tickets.token_cache import RefreshingToken
from tests.support.trackers import CREDENTIALS, FAST, make_content, settings_for

IDENTITY = "7c0ffee0-0000-4000-8000-00000000a99e"  # the service's managed identity (object id)
TENANT = "00000000-0000-0000-0000-0000000000aa"
KEY_NAME = "github-app-key"
SECRET_NAME = "github-app-pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _LocalSigner:
    def __init__(self, key: rsa.RSAPrivateKey):
        self.key = key

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())


class _AudienceCredential:
    """Tokens for one fixed audience whatever scope is asked: a credential set up for the wrong resource."""

    def __init__(self, audience: str):
        self.audience = audience

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(jwt_token(IDENTITY, TENANT, self.audience), int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(jwt_token(IDENTITY, TENANT, self.audience), int(time.time()) + 3600)


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def github_app(standins, app_key):
    """The GitHub App registered with the GitHub stand-in; its private key a Key Vault key and, PEM, a secret."""
    public = app_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    standins.app("github").register_app(public)
    standins.keyvault.add_key(KEY_NAME, app_key)
    pem = app_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    standins.keyvault.add_secret(SECRET_NAME, pem)
    return standins.app("github")


@pytest.fixture(autouse=True)
def _fresh_switches(request: pytest.FixtureRequest):
    yield
    if "standins" in request.fixturenames:
        standins = request.getfixturevalue("standins")
        standins.keyvault.grants = None
        standins.app("azuredevops").members = None
        # Time moved for a token's lifetime goes back, so the next test's real-time clock matches the stand-ins'.
        standins.clock.advance(-(standins.clock.now() - datetime.now(UTC)).total_seconds())


def app_env(standins, **overrides: str) -> dict[str, str]:
    env = {"TRIAGE_GITHUB_TOKEN": "", "TRIAGE_GITHUB_APP_ID": CREDENTIALS.github_app_client_id,
           "TRIAGE_GITHUB_APP_INSTALLATION_ID": str(CREDENTIALS.github_installation_id),
           "TRIAGE_GITHUB_APP_KEY_VAULT_URL": standins.keyvault_url, "TRIAGE_GITHUB_APP_KEY_NAME": KEY_NAME}
    env.update(overrides)
    return env


def app_sink(standins, credential: Any = None, clock: Any = None, **overrides: str):
    settings = settings_for(standins, "github", **app_env(standins, **overrides))
    (sink,) = build_sinks(settings, http_options=FAST, credential=credential or JwtCredential(IDENTITY, TENANT),
                          clock=clock or (lambda: standins.clock.now().timestamp()))
    return sink


def received(standins, service: str, since: int = 0):
    return standins.received(service)[since:]


def token_calls(requests_: list) -> list:
    return [r for r in requests_ if r.path.endswith("/access_tokens")]


# ---- fast tier: the cache and the JWT ----


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_installation_tokens_are_reused_until_five_minutes_before_their_own_expiry():
    clock, minted = FakeClock(), []

    def mint() -> tuple[str, float]:
        minted.append(clock.now)
        return f"ghs_token{len(minted)}", clock.now + 3600

    tokens = RefreshingToken(mint, clock, REFRESH_EARLY)
    assert tokens() == "ghs_token1"
    clock.now += 3600 - 301
    assert tokens() == "ghs_token1" and len(minted) == 1
    clock.now += 1  # 300 s before expires_at
    assert tokens() == "ghs_token2" and len(minted) == 2


def test_an_invalidated_token_is_minted_again_once_and_a_stale_invalidate_is_ignored():
    clock, count = FakeClock(), [0]

    def mint() -> tuple[str, float]:
        count[0] += 1
        return f"ghs_t{count[0]}", clock.now + 3600

    tokens, seen = RefreshingToken(mint, clock, REFRESH_EARLY), []
    tokens.observers.append(seen.append)
    first = tokens()
    tokens.invalidate(first)
    second = tokens()
    tokens.invalidate(first)  # another caller's late report about the old token
    assert second != first and tokens() == second and seen == [first, second]


@pytest.mark.parametrize("issuer, expected", [("Iv23liAbCdEf0123", "Iv23liAbCdEf0123"), ("424242", 424242)])
def test_the_app_jwt_has_githubs_claims_and_an_rs256_signature(app_key, issuer, expected):
    jwt = app_jwt(issuer, _LocalSigner(app_key), 1_800_000_000.7)
    head, payload, signature = jwt.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(head))) == {"alg": "RS256", "typ": "JWT"}
    claims = json.loads(base64.urlsafe_b64decode(pad(payload)))
    assert claims == {"iat": 1_800_000_000 - JWT_BACKDATE, "exp": 1_800_000_000 + JWT_AHEAD, "iss": expected}
    assert claims["exp"] - claims["iat"] <= 600  # GitHub: no more than 10 minutes
    app_key.public_key().verify(base64.urlsafe_b64decode(pad(signature)), f"{head}.{payload}".encode(),
                                padding.PKCS1v15(), hashes.SHA256())


# ---- settings ----

BASE = {"TRIAGE_TICKET_SINKS": "github", "TRIAGE_GITHUB_REPO": "contoso/ai-platform"}
APP = {"TRIAGE_GITHUB_APP_ID": "Iv23liStandInApp0001", "TRIAGE_GITHUB_APP_INSTALLATION_ID": "51515151",
       "TRIAGE_GITHUB_APP_KEY_VAULT_URL": "https://kv-triage.vault.azure.net", "TRIAGE_GITHUB_APP_KEY_NAME": "gh"}


def _problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    return dict(info.value.problems)


def test_github_takes_a_token_or_the_app_settings_not_both_and_not_half_an_app():
    assert load_settings(BASE | APP).github_app_key_kind == "key"
    assert "not both" in _problems(BASE | APP | {"TRIAGE_GITHUB_TOKEN": "ghs_x"})["TRIAGE_GITHUB_TOKEN"]
    half = _problems(BASE | {"TRIAGE_GITHUB_APP_ID": "12345"})
    assert set(half) == {"TRIAGE_GITHUB_APP_INSTALLATION_ID", "TRIAGE_GITHUB_APP_KEY_VAULT_URL",
                         "TRIAGE_GITHUB_APP_KEY_NAME"}
    assert "unless the GitHub App settings" in _problems(BASE)["TRIAGE_GITHUB_TOKEN"]


@pytest.mark.parametrize("key, value", [("TRIAGE_GITHUB_APP_ID", "my app"), ("TRIAGE_GITHUB_APP_INSTALLATION_ID", "x1"),
                                        ("TRIAGE_GITHUB_APP_KEY_VAULT_URL", "http://kv.vault.azure.net"),
                                        ("TRIAGE_GITHUB_APP_KEY_NAME", "bad_name"),
                                        ("TRIAGE_GITHUB_APP_KEY_KIND", "pem"),
                                        ("TRIAGE_GITHUB_ASSIGNEES", "@octocat"), ("TRIAGE_GITHUB_LABELS", "x" * 51)])
def test_malformed_github_app_and_routing_settings_are_named(key, value):
    assert key in _problems(BASE | APP | {key: value})


def test_azure_devops_under_entra_needs_no_pat_and_refuses_one():
    env = {"TRIAGE_TICKET_SINKS": "azuredevops", "TRIAGE_ADO_ORG_URL": "https://dev.azure.com/contoso",
           "TRIAGE_ADO_PROJECT": "AI Platform"}
    assert "TRIAGE_ADO_AUTH=entra" in _problems(env)["TRIAGE_ADO_PAT"]
    assert load_settings(env | {"TRIAGE_ADO_AUTH": "entra"}).ado_auth == "entra"
    assert "not used with TRIAGE_ADO_AUTH=entra" in _problems(env | {"TRIAGE_ADO_AUTH": "entra",
                                                                     "TRIAGE_ADO_PAT": "p"})["TRIAGE_ADO_PAT"]
    assert load_settings(env | {"TRIAGE_ADO_PAT": "p"}).ado_auth == "pat"


# ---- GitHub App over HTTPS ----


def test_an_app_token_is_minted_through_key_vault_sign_and_the_key_never_leaves_the_vault(standins, github_app):
    vault_before, github_before = len(received(standins, "keyvault")), len(received(standins, "github"))
    ref = app_sink(standins).open_or_update(make_content())
    assert ref.created
    vault = received(standins, "keyvault", vault_before)
    assert [(r.method, r.path) for r in vault] == [("POST", f"/keys/{KEY_NAME}/sign")]
    assert json.loads(vault[0].text)["alg"] == "RS256"
    github = received(standins, "github", github_before)
    (mint,) = token_calls(github)
    assert mint.path == f"/app/installations/{CREDENTIALS.github_installation_id}/access_tokens"
    tokens = set(github_app.installation_tokens)
    issue_calls = [r for r in github if r not in (mint,)]
    assert issue_calls and all(r.headers["authorization"].split(" ", 1)[1] in tokens for r in issue_calls)


def test_the_token_is_reused_and_refreshed_before_it_expires(standins, github_app):
    sink, before = app_sink(standins), len(received(standins, "github"))
    content = make_content()
    sink.open_or_update(content)
    standins.clock.advance(54 * 60)  # 6 minutes left: still used
    sink.open_or_update(replace(content, count=5))
    assert len(token_calls(received(standins, "github", before))) == 1
    standins.clock.advance(2 * 60)  # 4 minutes left: replaced before GitHub would refuse it
    sink.open_or_update(replace(content, count=6))
    github = received(standins, "github", before)
    assert len(token_calls(github)) == 2
    assert not [r for r in github if r.path.startswith("/repos/") and _status(standins, r) == 401]


def _status(standins, request) -> int:
    return next(c.status for c in standins.calls.records if c.request is request)


def test_a_refused_cached_token_is_replaced_once_and_the_call_succeeds(standins, github_app):
    sink, content = app_sink(standins), make_content()
    sink.open_or_update(content)
    before = len(received(standins, "github"))
    github_app.revoke_installation_tokens()
    sink.open_or_update(replace(content, count=9), comment="still failing")
    github = received(standins, "github", before)
    assert [_status(standins, r) for r in github][:2] == [401, 201]  # the look-up refused, then a new token
    assert len(token_calls(github)) == 1
    assert _status(standins, github[-1]) < 300


def test_an_expired_installation_token_is_bad_credentials(standins, github_app, app_key):
    signer = _LocalSigner(app_key)
    url = f"{standins.github_url}/app/installations/{CREDENTIALS.github_installation_id}/access_tokens"
    jwt = app_jwt(CREDENTIALS.github_app_client_id, signer, standins.clock.now().timestamp())
    minted = requests.post(url, headers={"Authorization": f"Bearer {jwt}"}, verify=standins.ca_path, timeout=10)
    assert minted.status_code == 201
    token, expires_at = minted.json()["token"], minted.json()["expires_at"]
    assert expires_at.endswith("Z")
    issues = f"{standins.github_url}/repos/{CREDENTIALS.github_repo}/issues"
    assert requests.get(issues, headers={"Authorization": f"Bearer {token}"}, verify=standins.ca_path,
                        timeout=10).status_code == 200
    standins.clock.advance(3601)
    refused = requests.get(issues, headers={"Authorization": f"Bearer {token}"}, verify=standins.ca_path, timeout=10)
    assert refused.status_code == 401 and refused.json()["message"] == "Bad credentials"


def _jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64url(_LocalSigner(key).sign(f'{head}.{body}'.encode()))}"


@pytest.mark.parametrize("case, message", [
    ("exp 11 minutes ahead", "'Expiration time' claim ('exp') is too far in the future"),
    ("expired", "'Expiration time' claim ('exp') must be a numeric value"),
    ("iat in the future", "'Issued at' claim ('iat')"),
    ("another key", "A JSON web token could not be decoded"),
    ("unknown issuer", "A JSON web token could not be decoded"),
])
def test_the_github_stand_in_checks_the_app_jwt(standins, github_app, app_key, case, message):
    now = int(standins.clock.now().timestamp())
    claims: dict[str, Any] = {"iat": now - 60, "exp": now + 540, "iss": CREDENTIALS.github_app_id}
    key = app_key
    if case == "exp 11 minutes ahead":
        claims["exp"] = now + 660
    elif case == "expired":
        claims.update(iat=now - 700, exp=now - 100)
    elif case == "iat in the future":
        claims.update(iat=now + 300, exp=now + 540)
    elif case == "another key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        claims["iss"] = 999999
    url = f"{standins.github_url}/app/installations/{CREDENTIALS.github_installation_id}/access_tokens"
    answer = requests.post(url, headers={"Authorization": f"Bearer {_jwt(key, claims)}"}, verify=standins.ca_path,
                           timeout=10)
    assert answer.status_code == 401 and message in answer.json()["message"]


def test_the_key_kind_secret_reads_the_pem_once_and_signs_locally(standins, github_app):
    before = len(received(standins, "keyvault"))
    sink = app_sink(standins, TRIAGE_GITHUB_APP_KEY_KIND="secret", TRIAGE_GITHUB_APP_KEY_NAME=SECRET_NAME)
    content = make_content()
    assert sink.open_or_update(content).created
    github_app.revoke_installation_tokens()  # a second mint: the key is not read again
    sink.open_or_update(replace(content, count=4))
    assert [(r.method, r.path) for r in received(standins, "keyvault", before)] == [("GET", f"/secrets/{SECRET_NAME}")]


def test_a_wrong_app_id_is_an_auth_error_naming_the_setting_without_the_jwt(standins, github_app):
    before = len(received(standins, "github"))
    with pytest.raises(TicketAuthError) as info:
        app_sink(standins, TRIAGE_GITHUB_APP_ID="99999999").open_or_update(make_content())
    message = str(info.value)
    assert message.startswith("github sink: credentials rejected (HTTP 401: A JSON web token could not be decoded")
    assert "TRIAGE_GITHUB_APP_ID" in message
    (mint,) = token_calls(received(standins, "github", before))
    jwt = mint.headers["authorization"].split(" ", 1)[1]
    assert jwt not in message and jwt.split(".")[2] not in message


def test_a_wrong_installation_id_names_its_setting(standins, github_app):
    with pytest.raises(TicketAuthError, match="TRIAGE_GITHUB_APP_INSTALLATION_ID"):
        app_sink(standins, TRIAGE_GITHUB_APP_INSTALLATION_ID="1").open_or_update(make_content())


def test_an_identity_without_the_crypto_role_is_told_which_role_it_needs(standins, github_app):
    standins.keyvault.assign(IDENTITY, "Key Vault Secrets User")  # can read secrets, cannot sign
    with pytest.raises(TicketAuthError) as info:
        app_sink(standins).open_or_update(make_content())
    assert "HTTP 403" in str(info.value) and "'Key Vault Crypto User'" in str(info.value)
    assert "TRIAGE_GITHUB_APP_KEY_VAULT_URL" in str(info.value)
    assert app_sink(standins, TRIAGE_GITHUB_APP_KEY_KIND="secret",
                    TRIAGE_GITHUB_APP_KEY_NAME=SECRET_NAME).open_or_update(make_content()).created


def test_a_missing_key_names_the_key_setting(standins, github_app):
    with pytest.raises(TicketAuthError, match="no key 'not-there'.*TRIAGE_GITHUB_APP_KEY_NAME"):
        app_sink(standins, TRIAGE_GITHUB_APP_KEY_NAME="not-there").open_or_update(make_content())


def test_key_vault_refuses_a_token_for_another_audience(standins, github_app):
    with pytest.raises(TicketAuthError) as info:
        app_sink(standins, credential=_AudienceCredential("https://management.azure.com")).open_or_update(
            make_content())
    message = str(info.value)
    assert "HTTP 401" in message and "AKV10022: Invalid audience" in message
    assert "TRIAGE_GITHUB_APP_KEY_VAULT_URL" in message


def test_app_tokens_and_jwts_never_reach_errors_or_logs(standins, github_app, caplog):
    caplog.set_level(logging.DEBUG)
    before = len(received(standins, "github"))
    sink, content = app_sink(standins), make_content()
    outputs = [repr(sink.open_or_update(content))]
    github_app.revoke_installation_tokens()
    outputs.append(repr(sink.open_or_update(replace(content, count=2), comment="again")))
    standins.faults.add("github", route="issues.list", status=503, times=FAST.retry_total + 1, retry_after=0.01)
    with pytest.raises(TicketError) as info:
        sink.open_or_update(content)
    outputs.append(str(info.value))
    from shared.tickets.http import HttpResult

    for token in list(github_app.installation_tokens):  # an answer that echoes a token
        echoed = HttpResult(422, {}, json.dumps({"message": f"bad {token}"}).encode())
        outputs.append(str(sink._http.error_for(echoed)))
    secrets = {r.headers["authorization"].split(" ", 1)[1] for r in received(standins, "github", before)}
    secrets |= {r.headers["authorization"].split(" ", 1)[1] for r in received(standins, "keyvault")}
    assert len(secrets) >= 4  # two JWTs, two installation tokens, the Key Vault token
    everything = "\n".join(outputs) + caplog.text
    assert "Request URL" in caplog.text
    for secret in secrets:
        assert secret not in everything


# ---- Azure DevOps with Entra ----


def ado_sink(standins, credential: Any = None, **overrides: str):
    env = {"TRIAGE_ADO_AUTH": "entra", "TRIAGE_ADO_PAT": ""} | overrides
    (sink,) = build_sinks(settings_for(standins, "azuredevops", **env), http_options=FAST,
                          credential=credential or JwtCredential(IDENTITY, TENANT))
    return sink


def test_azure_devops_with_the_services_entra_identity_creates_a_work_item(standins):
    ado, before = standins.app("azuredevops"), len(received(standins, "azuredevops"))
    ado.members = {IDENTITY}
    credential = JwtCredential(IDENTITY, TENANT)
    ref = ado_sink(standins, credential).open_or_update(make_content())
    assert ref.created
    assert credential.scopes_requested[0] == ("499b84ac-1321-427f-aa17-267ca6975798/.default",)
    calls = received(standins, "azuredevops", before)
    assert calls and all(r.headers["authorization"].startswith("Bearer ey") for r in calls)
    assert set(ado.entra_callers[-len(calls):]) == {IDENTITY}


def test_azure_devops_refuses_a_token_for_another_audience_or_a_non_member(standins):
    with pytest.raises(TicketAuthError) as info:
        ado_sink(standins, _AudienceCredential("https://management.azure.com")).open_or_update(make_content())
    assert "credentials rejected (HTTP 401" in str(info.value) and "TRIAGE_ADO_AUTH=entra" in str(info.value)
    standins.app("azuredevops").members = {"0d0d0d0d-0000-4000-8000-000000000001"}
    with pytest.raises(TicketAuthError, match="member of the organization"):
        ado_sink(standins).open_or_update(make_content())


# ---- routing ----


def test_github_assignees_and_labels_are_set_on_create_only(standins):
    sink = _github(standins, TRIAGE_GITHUB_ASSIGNEES="octocat,triage-oncall", TRIAGE_GITHUB_LABELS="team:ai,aoai")
    content = make_content()
    ref = sink.open_or_update(content)
    issue = standins.app("github").issues[int(ref.ref)]
    assert [a["login"] for a in issue["assignees"]] == ["octocat", "triage-oncall"]
    assert {"team:ai", "aoai"} <= {label["name"] for label in issue["labels"]}
    # A person re-routes it: the next update leaves their choice alone.
    issue["assignees"] = [{"login": "platform-lead", "type": "User"}]
    issue["labels"] = [label for label in issue["labels"] if label["name"] != "team:ai"]
    sink.open_or_update(replace(content, count=11, escalated=True), comment="more")
    issue = standins.app("github").issues[int(ref.ref)]
    assert [a["login"] for a in issue["assignees"]] == ["platform-lead"]
    assert "team:ai" not in {label["name"] for label in issue["labels"]}


def _github(standins, **overrides: str):
    (sink,) = build_sinks(settings_for(standins, "github", **overrides), http_options=FAST)
    return sink


def test_an_assignee_github_cannot_assign_leaves_the_issue_unassigned_with_a_warning(standins, caplog):
    caplog.set_level(logging.WARNING, logger="triage.tickets")
    before = len(received(standins, "github"))
    ref = _github(standins, TRIAGE_GITHUB_ASSIGNEES="octocat,departed-dev").open_or_update(make_content())
    assert ref.created and standins.app("github").issues[int(ref.ref)]["assignees"] == []
    creates = [r for r in received(standins, "github", before) if r.method == "POST"]
    assert [_status(standins, r) for r in creates] == [422, 201]
    assert "departed-dev" in caplog.text and "TRIAGE_GITHUB_ASSIGNEES" in caplog.text


def test_azure_devops_area_and_iteration_paths_are_set_on_create_only(standins):
    ado = standins.app("azuredevops")
    area, iteration = "AI Platform\\Identity", "AI Platform\\Sprint 42"
    ado.add_area_path(area)
    ado.add_iteration_path(iteration)
    sink = ado_sink(standins, TRIAGE_ADO_AREA_PATH=area, TRIAGE_ADO_ITERATION_PATH=iteration,
                    TRIAGE_ADO_WORK_ITEM_TYPE="Task")
    content = make_content()
    ref = sink.open_or_update(content)
    fields = ado.items[int(ref.ref)]["fields"]
    assert (fields["System.AreaPath"], fields["System.IterationPath"], fields["System.WorkItemType"]) == (
        area, iteration, "Task")
    fields["System.AreaPath"] = "AI Platform"  # a person moves it back to the root
    sink.open_or_update(replace(content, count=8))
    assert ado.items[int(ref.ref)]["fields"]["System.AreaPath"] == "AI Platform"


def test_an_owner_route_sets_github_assignees_and_labels_for_that_owner_only(standins):
    routes = '{"payments": {"github": {"assignees": ["triage-oncall"], "labels": ["team:payments"]}}}'
    sink = _github(standins, TRIAGE_GITHUB_ASSIGNEES="octocat", TRIAGE_GITHUB_LABELS="team:ai",
                   TRIAGE_ROUTING_TAG="owner", TRIAGE_TICKET_ROUTES=routes)
    issues = standins.app("github").issues
    routed, unowned = make_content(owner="Payments"), make_content(owner="search")
    routed_issue = issues[int(sink.open_or_update(routed).ref)]
    unowned_issue = issues[int(sink.open_or_update(unowned).ref)]
    assert [a["login"] for a in routed_issue["assignees"]] == ["triage-oncall"]
    assert [a["login"] for a in unowned_issue["assignees"]] == ["octocat"]
    routed_labels = {label["name"] for label in routed_issue["labels"]}
    assert "team:payments" in routed_labels and "team:ai" not in routed_labels
    assert "team:ai" in {label["name"] for label in unowned_issue["labels"]}


def test_an_owner_route_sets_the_azure_devops_area_path_for_that_owner_only(standins):
    ado = standins.app("azuredevops")
    team, payments = "AI Platform\\Identity", "AI Platform\\Payments"
    ado.add_area_path(team)
    ado.add_area_path(payments)
    routes = '{"payments": {"azuredevops": {"area_path": "AI Platform\\\\Payments"}}}'
    sink = ado_sink(standins, TRIAGE_ADO_AREA_PATH=team, TRIAGE_ROUTING_TAG="owner", TRIAGE_TICKET_ROUTES=routes)
    paths = [ado.items[int(sink.open_or_update(make_content(owner=owner)).ref)]["fields"]["System.AreaPath"]
             for owner in ("payments", None)]
    assert paths == [payments, team]


def test_an_unknown_area_path_is_azure_devops_own_error(standins):
    with pytest.raises(TicketError, match="TF401347"):
        ado_sink(standins, TRIAGE_ADO_AREA_PATH="AI Platform\\NoSuchTeam").open_or_update(make_content())


# ---- the composition root ----


def test_the_self_check_probes_the_app_and_entra_sinks_with_the_services_credential(standins, github_app):
    from shared.bootstrap import build_doctor_ports

    settings = settings_for(standins, "github,azuredevops", **app_env(standins), TRIAGE_ADO_AUTH="entra",
                            TRIAGE_ADO_PAT="")
    credential = JwtCredential(IDENTITY, TENANT)
    vault_before = len(received(standins, "keyvault"))
    ports = build_doctor_ports(settings, credential=credential, store=object())
    assert [p.probe() for p in ports.sinks] == [f"repository {CREDENTIALS.github_repo} readable",
                                                f"project {CREDENTIALS.ado_project} readable"]
    assert {s[0] for s in credential.scopes_requested} == {"https://vault.azure.net/.default",
                                                           "499b84ac-1321-427f-aa17-267ca6975798/.default"}
    assert len(received(standins, "keyvault", vault_before)) == 1
