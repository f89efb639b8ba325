"""An identity provider's settings as checked before they are stored, and the groups claim of an ID token."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ragapi.core.database import Database
from ragapi.core.errors import InvalidInput
from ragapi.core.settings import Settings
from ragapi.tenants import identity_providers, service
from ragapi.tenants.identity_providers import (
    GroupsClaimError,
    ProviderChange,
    check_change,
    claimed_groups,
)
from ragapi.tenants.oidc import pkce_challenge
from ragapi.tenants.sealed import PREFIX, Sealed, SecretBox, SecretUnreadable, box_for
from tests.conftest import MakeTenant, make_settings


def change(**fields: object) -> ProviderChange:
    values: dict[str, object] = {
        "issuer": "https://idp.example.com/realms/acme",
        "client_id": "ragapi",
        "client_secret": "s3cret",
        "allowed_domains": ["Example.com"],
        "groups_claim": "groups",
        "scopes": ["openid", "email"],
        "default_role": "member",
    }
    values.update(fields)
    return ProviderChange(**values)  # type: ignore[arg-type]


def test_groups_claim_is_a_bounded_list_of_names() -> None:
    claims = {"groups": [" hr ", "board", "hr", "", "Finance/EU"]}
    assert claimed_groups(claims, "groups", 10, 20) == ["hr", "board", "Finance/EU"]
    assert claimed_groups({"roles": "admins"}, "roles", 10, 20) == ["admins"]  # one value sent as a string
    assert claimed_groups({}, "groups", 10, 20) == []  # the provider sent none
    assert claimed_groups(claims, None, 10, 20) == []  # no claim configured
    assert claimed_groups({"https://acme/groups": ["a"]}, "https://acme/groups", 10, 20) == ["a"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"groups": [1, 2]}, "not a list of strings"),
        ({"groups": {"a": 1}}, "not a list of strings"),
        ({"groups": ["a", None]}, "not a list of strings"),
        ({"groups": [f"g{n}" for n in range(4)]}, "lists 4 groups, over 3"),
        ({"groups": ["x" * 21]}, "over 20 characters"),
        ({"_claim_names": {"groups": "src1"}, "_claim_sources": {}}, "overage"),
    ],
)
def test_a_groups_claim_that_is_not_a_bounded_list_refuses_the_sign_in(claims: dict[str, object], reason: str) -> None:
    # Cut short, it would silently drop memberships at the next sync: refused instead.
    with pytest.raises(GroupsClaimError, match=reason):
        claimed_groups(claims, "groups", 3, 20)


def test_settings_are_checked_and_each_error_names_its_field(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, oidc_allow_http_loopback=False)
    tenant = uuid.uuid4()
    provider = check_change(
        tenant, change(allowed_domains=["Example.com", "example.com", "b.example.org"]), None, settings
    )
    box = box_for(settings)
    assert provider.allowed_domains == ("example.com", "b.example.org")
    assert provider.client_secret is not None and provider.client_secret.open(box) == "s3cret"
    assert "s3cret" not in provider.client_secret.token and "s3cret" not in repr(provider)
    assert provider.allows_email("ann@example.com") and not provider.allows_email("ann@evil-example.com")
    kept = Sealed(box.seal("kept"))
    assert check_change(tenant, change(client_secret=None), kept, settings).client_secret == kept
    assert check_change(tenant, change(client_secret=""), kept, settings).client_secret is None
    bad = {
        "issuer": [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://",
            "https://u:p@idp.example.com",
            "https://idp.example.com?x=1",
            "http://127.0.0.1:8080",
        ],
        "client_id": ["", " " * 3, "x" * 501],
        "allowed_domains": [["not a domain"], ["example"], ["@example.com"]],
        "groups_claim": ["has space", "x" * 101],
        "scopes": [["email"], ["openid", "a b"], ["openid", 'q"uote']],
        "default_role": ["admin", "superadmin", "owner"],
    }
    for field, values in bad.items():
        for value in values:
            with pytest.raises(InvalidInput) as refused:
                check_change(tenant, change(**{field: value}), None, settings)
            assert refused.value.detail.startswith(field), (field, value, refused.value.detail)
    loopback = make_settings(tmp_path, oidc_allow_http_loopback=True)
    assert (
        check_change(tenant, change(issuer="http://127.0.0.1:8080"), None, loopback).issuer == "http://127.0.0.1:8080"
    )
    with pytest.raises(InvalidInput, match="issuer: must be an https URL"):
        check_change(tenant, change(issuer="http://10.0.0.1"), None, loopback)  # loopback only


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


async def test_a_sign_in_page_finds_a_tenant_by_id_or_by_a_name_only_one_has(
    db: Database, settings: Settings, make_tenant: MakeTenant
) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    acme, twin, other, plain = [await make_tenant(f"{name}{suffix}") for suffix in ("", " twin", " other", " plain")]  # type: ignore[call-arg]
    for tenant in (acme, twin, other):
        await identity_providers.put(db, settings, tenant.tenant_id, change())
    found = await identity_providers.named_for_sign_in(db, f"  {name.upper()} ")  # any case, trimmed
    assert found == identity_providers.SignInChoice(acme.tenant_id, name, "https://idp.example.com/realms/acme")
    assert await identity_providers.named_for_sign_in(db, str(other.tenant_id)) is not None
    assert await identity_providers.named_for_sign_in(db, name + " plain") is None  # no provider
    assert await identity_providers.named_for_sign_in(db, str(plain.tenant_id)) is None
    assert await identity_providers.named_for_sign_in(db, "") is None

    await service.update_tenant(db, other.tenant_id, {"status": "suspended"})
    assert await identity_providers.named_for_sign_in(db, str(other.tenant_id)) is None

    await service.update_tenant(db, twin.tenant_id, {"name": name})  # two active tenants of one name
    assert await identity_providers.named_for_sign_in(db, name) is None
    assert await identity_providers.named_for_sign_in(db, str(twin.tenant_id)) is not None  # its id still does


def test_a_sealed_secret_opens_only_with_the_key_that_sealed_it(tmp_path: Path) -> None:
    first = make_settings(tmp_path / "a", secrets_key="k" * 32)
    box = box_for(first)
    sealed = box.seal("client-secret-\u00e9")
    assert sealed.startswith(PREFIX) and "client-secret" not in sealed
    assert box.seal("client-secret-\u00e9") != sealed  # a fresh IV each time: equal secrets look unrelated
    assert box.open(sealed) == "client-secret-\u00e9"
    # unset, the key comes from the token signing key; another key opens nothing
    derived = box_for(make_settings(tmp_path / "b", jwt_secret="j" * 32))
    assert derived.open(derived.seal("x")) == "x"
    for other in (derived, SecretBox("another key of at least thirty-two chars")):
        with pytest.raises(SecretUnreadable, match="SECRETS_KEY"):
            other.open(sealed)
    with pytest.raises(SecretUnreadable, match="not sealed"):
        box.open("plaintext")
    with pytest.raises(ValueError, match="SECRETS_KEY must be at least 32"):
        make_settings(tmp_path, secrets_key="short")
