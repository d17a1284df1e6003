"""Tests for the User and Client records."""

from __future__ import annotations

import dataclasses

import pytest

from porchlight_op.models import Client, InvalidClaim, User, validate_claims

FULL_CLAIMS = {
    "name": "Jürgen Groß",
    "given_name": "Jürgen",
    "family_name": "Groß",
    "email": "juergen@example.org",
    "email_verified": True,
    "phone_number": "+49 30 1234567",
    "phone_number_verified": False,
    "birthdate": "1970-01-31",
    "address": {"street_address": "Hauptstraße 1", "locality": "Berlin"},
}


def make_user(**changes: object) -> User:
    user = User(
        sub="lusab-babad",
        username="Jürgen",
        password_hash="$argon2id$secret-hash",
        claims=FULL_CLAIMS,
        created_at=1_700_000_000,
        updated_at=1_700_000_100,
    )
    return dataclasses.replace(user, **changes)  # type: ignore[arg-type]


def test_user_json_round_trip() -> None:
    user = make_user(disabled=True)

    assert User.from_json(user.to_json()) == user


def test_user_json_round_trip_from_bytes() -> None:
    user = make_user(password_hash=None)

    assert User.from_json(user.to_json().encode()) == user


def test_user_json_keeps_non_ascii() -> None:
    assert "Jürgen" in make_user().to_json()


def test_user_claims_are_read_only() -> None:
    user = make_user()

    with pytest.raises(TypeError):
        user.claims["name"] = "Mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        user.claims["address"]["locality"] = "Paris"


def test_user_copies_claims() -> None:
    claims = {"name": "Alice"}
    user = make_user(claims=claims)

    claims["name"] = "Mallory"

    assert user.claims["name"] == "Alice"


def test_user_repr_hides_password_hash() -> None:
    assert "secret-hash" not in repr(make_user())


def test_oidc_claims_add_sub_and_updated_at() -> None:
    claims = make_user().oidc_claims()

    assert claims["sub"] == "lusab-babad"
    assert claims["updated_at"] == 1_700_000_100
    assert claims["address"] == {
        "street_address": "Hauptstraße 1",
        "locality": "Berlin",
    }
    assert claims["email_verified"] is True


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"favourite_colour": "blue"}, "not a standard claim"),
        ({"sub": "other"}, "not a standard claim"),
        ({"updated_at": 1}, "not a standard claim"),
        ({"email": 42}, "expected a string"),
        ({"email_verified": "true"}, "expected true or false"),
        ({"birthdate": "31.01.1970"}, "YYYY-MM-DD"),
        ({"address": "Hauptstraße 1"}, "expected an object"),
        ({"address": {"street": "Hauptstraße 1"}}, "unknown field 'street'"),
        ({"address": {"locality": 12}}, "must be a string"),
    ],
)
def test_validate_claims_rejects(claims: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidClaim, match=message):
        validate_claims(claims)


@pytest.mark.parametrize("birthdate", ["1970-01-31", "1970", "0000-01-31"])
def test_validate_claims_accepts_birthdate_forms(birthdate: str) -> None:
    assert validate_claims({"birthdate": birthdate}) == {"birthdate": birthdate}


def test_invalid_claim_is_value_error() -> None:
    with pytest.raises(ValueError, match="favourite_colour"):
        make_user(claims={"favourite_colour": "blue"})


def make_client(**changes: object) -> Client:
    client = Client(
        client_id="webapp",
        redirect_uris=("https://rp.example.org/cb",),
        auth_method="client_secret_post",
        secret="client-secret-value",
        scope=("openid", "email"),
        name="Web app",
        created_at=1_700_000_000,
    )
    return dataclasses.replace(client, **changes)  # type: ignore[arg-type]


def test_client_json_round_trip() -> None:
    client = make_client()

    assert Client.from_json(client.to_json()) == client


def test_client_lists_become_tuples() -> None:
    client = make_client(redirect_uris=["https://rp.example.org/cb"], scope=["openid"])

    assert client.redirect_uris == ("https://rp.example.org/cb",)
    assert client.scope == ("openid",)


def test_client_repr_hides_secret() -> None:
    assert "client-secret-value" not in repr(make_client())


def test_client_is_public() -> None:
    assert make_client(auth_method="none", secret=None).is_public
    assert not make_client().is_public


def test_client_rejects_unknown_auth_method() -> None:
    with pytest.raises(ValueError, match="tls_client_auth"):
        make_client(auth_method="tls_client_auth")


def test_public_client_rejects_secret() -> None:
    with pytest.raises(ValueError, match="must not have a secret"):
        make_client(auth_method="none")


def test_confidential_client_needs_secret() -> None:
    with pytest.raises(ValueError, match="needs a secret"):
        make_client(secret=None)
