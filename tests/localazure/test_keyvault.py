"""The Key Vault stand-in as LocalAzure serves it: sign and get secret over HTTPS, Key Vault's token checks."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localazure import JwtCredential
from shared.tickets.base import TicketAuthError
from shared.tickets.http import HttpOptions
from shared.tickets.keyvault import KeyVault

IDENTITY = "5e5e5e5e-0000-4000-8000-00000000b0b0"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def vault_of(local_azure, credential=None) -> KeyVault:
    return KeyVault(vault_url=local_azure.keyvault_url, credential=credential or JwtCredential(IDENTITY, "t"),
                    options=HttpOptions(connection_verify=local_azure.ca_path, retry_total=0),
                    sink="github", setting="TRIAGE_GITHUB_APP_KEY_VAULT_URL", name_setting="TRIAGE_GITHUB_APP_KEY_NAME")


def test_sign_answers_an_rs256_signature_by_the_latest_or_a_pinned_version(local_azure, key):
    import hashlib

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    first = local_azure.keyvault.add_key("app-key", key)
    local_azure.keyvault.add_key("app-key", other)  # a rotation: the latest version is `other`
    digest = hashlib.sha256(b"header.payload").digest()
    vault = vault_of(local_azure)
    latest, pinned = vault.sign_rs256("app-key", digest), vault.sign_rs256(f"app-key/{first}", digest)
    other.public_key().verify(latest, b"header.payload", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(pinned, b"header.payload", padding.PKCS1v15(), hashes.SHA256())
    assert local_azure.info()["keyvault"] == local_azure.keyvault_url


def test_without_a_token_key_vault_answers_its_challenge(local_azure):
    answer = requests.get(f"{local_azure.keyvault_url}/secrets/anything?api-version=7.4",
                          verify=local_azure.ca_path, timeout=10)
    assert answer.status_code == 401
    assert 'resource="https://vault.azure.net"' in answer.headers["WWW-Authenticate"]


def test_get_secret_and_rbac(local_azure):
    local_azure.keyvault.add_secret("pem", "-----BEGIN RSA PRIVATE KEY-----\nnot really\n")
    assert vault_of(local_azure).secret("pem").startswith("-----BEGIN")
    try:
        local_azure.keyvault.assign(IDENTITY, "Key Vault Crypto User")
        with pytest.raises(TicketAuthError, match="'Key Vault Secrets User' role"):
            vault_of(local_azure).secret("pem")
        local_azure.keyvault.assign(IDENTITY, "Key Vault Secrets User")
        assert vault_of(local_azure).secret("pem")
    finally:
        local_azure.keyvault.grants = None
    with pytest.raises(TicketAuthError, match="no secret 'missing'"):
        vault_of(local_azure).secret("missing")
