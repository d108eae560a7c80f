"""TokenVerifier and mint: algorithms, key sources, time claims, claim names, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from eventwire.auth import (
    AuthClose,
    AuthCode,
    AuthConfigError,
    AuthError,
    AuthSettings,
    Identity,
    TokenVerifier,
    mint,
)
from tests.unit.auth.helpers import NOW, SECRET, KeyPair, Writer, hs_settings


def _token(
    claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **headers: Any
) -> str:
    base = {"sub": "user-1", "iat": int(NOW), "exp": int(NOW) + 600}
    return jwt.encode({**base, **claims}, key, algorithm=algorithm, headers=headers or None)


def _refusal(verifier: TokenVerifier, token: str, now: float = NOW) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(token, now)
    return info.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes = b"") -> str:
    """A token built by hand: for algorithms PyJWT refuses to produce."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    if not secret:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


# -- algorithms and key sources ---------------------------------------------------------


def test_hs256_token_becomes_an_identity() -> None:
    verifier = TokenVerifier(hs_settings())
    token = _token({"tenant_id": "acme", "subscribe": ["gift-list:*"], "publish": ["room:lobby"]})
    identity = verifier.verify(token, NOW)
    assert identity == Identity(
        user_id="user-1",
        tenant_id="acme",
        subscribe=("gift-list:*",),
        publish=("room:lobby",),
        expires_at=NOW + 600 + 30,  # exp plus the leeway: when this gateway stops accepting it
        issued_at=NOW,
    )
    assert verifier.algorithms == {"HS256"}


def test_rs256_from_a_pem_file(rsa_keys: KeyPair, write: Writer) -> None:
    settings = AuthSettings(jwt_public_key_file=write("rsa.pem", rsa_keys.public_pem))
    verifier = TokenVerifier(settings)
    assert verifier.algorithms == {"RS256"}
    identity = verifier.verify(_token({}, rsa_keys.private_pem, "RS256"), NOW)
    assert identity.user_id == "user-1"


def test_es256_from_a_pem_file(ec_keys: KeyPair, write: Writer) -> None:
    settings = AuthSettings(jwt_public_key_file=write("ec.pem", ec_keys.public_pem))
    verifier = TokenVerifier(settings)
    assert verifier.algorithms == {"ES256"}
    assert verifier.verify(_token({}, ec_keys.private_pem, "ES256"), NOW).user_id == "user-1"


def _jwks(*entries: dict[str, Any]) -> str:
    return json.dumps({"keys": list(entries)})


def test_jwks_file_picks_the_key_by_kid(
    rsa_keys: KeyPair, rsa_keys_other: KeyPair, ec_keys: KeyPair, write: Writer
) -> None:
    jwks = _jwks(
        {**RSAAlgorithm.to_jwk(rsa_keys.public, as_dict=True), "kid": "r1", "use": "sig"},
        {**RSAAlgorithm.to_jwk(rsa_keys_other.public, as_dict=True), "kid": "r2"},
        {**ECAlgorithm.to_jwk(ec_keys.public, as_dict=True), "kid": "e1"},
    )
    verifier = TokenVerifier(AuthSettings(jwks_file=write("jwks.json", jwks)))
    assert verifier.algorithms == {"RS256", "ES256"}
    assert verifier.verify(_token({}, rsa_keys.private_pem, "RS256", kid="r1"), NOW)
    assert verifier.verify(_token({}, rsa_keys_other.private_pem, "RS256", kid="r2"), NOW)
    assert verifier.verify(_token({}, ec_keys.private_pem, "ES256", kid="e1"), NOW)
    # Signed by r2's key but claiming r1: only r1 is tried.
    wrong = _refusal(verifier, _token({}, rsa_keys_other.private_pem, "RS256", kid="r1"))
    assert wrong.details["reason"] == "bad_signature"
    unknown = _refusal(verifier, _token({}, rsa_keys.private_pem, "RS256", kid="nope"))
    assert unknown.details["reason"] == "unknown_key"
    # No kid at all: every key of the algorithm is tried.
    assert verifier.verify(_token({}, rsa_keys_other.private_pem, "RS256"), NOW)


def test_jwks_skips_encryption_keys(rsa_keys: KeyPair, ec_keys: KeyPair, write: Writer) -> None:
    jwks = _jwks(
        {**RSAAlgorithm.to_jwk(rsa_keys.public, as_dict=True), "kid": "enc", "use": "enc"},
        {**ECAlgorithm.to_jwk(ec_keys.public, as_dict=True), "kid": "sig"},
    )
    verifier = TokenVerifier(AuthSettings(jwks_file=write("jwks.json", jwks)))
    assert verifier.algorithms == {"ES256"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"keys": 3}', "no 'keys' list"),
        ('{"keys": []}', "did not contain any keys"),
    ],
)
def test_bad_jwks_files_stop_startup(content: str, message: str, write: Writer) -> None:
    with pytest.raises(AuthConfigError, match=message):
        TokenVerifier(AuthSettings(jwks_file=write("jwks.json", content)))


def test_jwks_with_private_keys_is_refused(rsa_keys: KeyPair, write: Writer) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(rsa_keys.private_pem, password=None)
    assert isinstance(private, RSAPrivateKey)
    jwks = _jwks(RSAAlgorithm.to_jwk(private, as_dict=True))
    with pytest.raises(AuthConfigError, match="private keys"):
        TokenVerifier(AuthSettings(jwks_file=write("jwks.json", jwks)))


def test_a_private_key_as_public_key_file_is_refused(rsa_keys: KeyPair, write: Writer) -> None:
    with pytest.raises(AuthConfigError, match="holds a private key"):
        TokenVerifier(AuthSettings(jwt_public_key_file=write("k.pem", rsa_keys.private_pem)))


def test_missing_and_garbage_key_files_stop_startup(write: Writer) -> None:
    with pytest.raises(AuthConfigError, match="cannot read"):
        TokenVerifier(AuthSettings(jwt_public_key_file=write("k.pem", b"x").parent / "none"))
    with pytest.raises(AuthConfigError, match="not a PEM"):
        TokenVerifier(AuthSettings(jwt_public_key_file=write("k.pem", b"garbage")))


def test_weak_rsa_keys_stop_startup(write: Writer) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = weak.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(AuthConfigError, match="1024 bits"):
        TokenVerifier(AuthSettings(jwt_public_key_file=write("weak.pem", pem)))


def test_jwt_algorithms_must_have_a_key() -> None:
    with pytest.raises(AuthConfigError, match="RS256"):
        TokenVerifier(hs_settings(jwt_algorithms=["HS256", "RS256"]))


def test_jwt_algorithms_narrow_the_configured_keys(rsa_keys: KeyPair, write: Writer) -> None:
    settings = hs_settings(
        jwt_public_key_file=write("rsa.pem", rsa_keys.public_pem), jwt_algorithms=["RS256"]
    )
    verifier = TokenVerifier(settings)
    assert verifier.algorithms == {"RS256"}
    assert _refusal(verifier, _token({})).details["reason"] == "algorithm"


# -- forged tokens ----------------------------------------------------------------------


def test_wrong_secret_is_refused() -> None:
    verifier = TokenVerifier(hs_settings())
    error = _refusal(verifier, _token({}, "another-secret-that-is-long-enough-0123"))
    assert error.code is AuthCode.UNAUTHORIZED
    assert error.details == {"reason": "bad_signature"}
    assert error.close_code is AuthClose.UNAUTHORIZED
    assert error.http_status == 401


def test_wrong_rsa_key_is_refused(
    rsa_keys: KeyPair, rsa_keys_other: KeyPair, write: Writer
) -> None:
    verifier = TokenVerifier(AuthSettings(jwt_public_key_file=write("k.pem", rsa_keys.public_pem)))
    token = _token({}, rsa_keys_other.private_pem, "RS256")
    assert _refusal(verifier, token).details["reason"] == "bad_signature"


def test_alg_none_is_refused() -> None:
    verifier = TokenVerifier(hs_settings())
    token = _unsigned({"alg": "none", "typ": "JWT"}, {"sub": "root", "exp": NOW + 60})
    error = _refusal(verifier, token)
    assert error.details == {"reason": "algorithm", "algorithm": "none"}


def test_hs256_signed_with_the_public_key_is_refused(rsa_keys: KeyPair, write: Writer) -> None:
    """Algorithm confusion: the public key, which anyone has, used as an HMAC secret."""
    claims = {"sub": "root", "admin": True, "exp": NOW + 60}
    forged = _unsigned({"alg": "HS256", "typ": "JWT"}, claims, rsa_keys.public_pem)
    only_rsa = TokenVerifier(AuthSettings(jwt_public_key_file=write("k.pem", rsa_keys.public_pem)))
    assert _refusal(only_rsa, forged).details["reason"] == "algorithm"
    both = TokenVerifier(hs_settings(jwt_public_key_file=write("k.pem", rsa_keys.public_pem)))
    assert _refusal(both, forged).details["reason"] == "bad_signature"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 10])
def test_garbage_is_refused(token: str) -> None:
    verifier = TokenVerifier(hs_settings(allow_anonymous=False))
    with pytest.raises(AuthError) as info:
        verifier.verify(token, NOW)
    assert info.value.code is AuthCode.UNAUTHORIZED


def test_oversized_tokens_are_refused_before_parsing() -> None:
    verifier = TokenVerifier(hs_settings(jwt_max_token_bytes=256))
    token = _token({"subscribe": [f"room:{i}" for i in range(50)]})
    assert _refusal(verifier, token).details["reason"] == "too_large"


def test_tampered_payload_is_refused() -> None:
    verifier = TokenVerifier(hs_settings())
    header, _, signature = _token({}).split(".")
    payload = _b64(json.dumps({"sub": "user-1", "admin": True, "exp": NOW + 60}).encode())
    assert _refusal(verifier, f"{header}.{payload}.{signature}").details["reason"] == (
        "bad_signature"
    )


# -- time claims, issuer, audience ------------------------------------------------------


def test_exp_with_leeway() -> None:
    verifier = TokenVerifier(hs_settings(jwt_leeway=10))
    token = _token({"exp": int(NOW)})
    assert verifier.verify(token, NOW + 9.9).expires_at == NOW + 10
    error = _refusal(verifier, token, NOW + 10)
    assert error.code is AuthCode.TOKEN_EXPIRED
    assert error.close_code is AuthClose.TOKEN_EXPIRED
    assert error.details == {"reason": "expired"}


def test_nbf_with_leeway() -> None:
    verifier = TokenVerifier(hs_settings(jwt_leeway=5))
    token = _token({"nbf": int(NOW) + 100, "iat": int(NOW) + 100})
    assert _refusal(verifier, token, NOW + 94).details["reason"] == "not_yet_valid"
    assert verifier.verify(token, NOW + 95).user_id == "user-1"


def test_iat_in_the_future_is_refused() -> None:
    verifier = TokenVerifier(hs_settings(jwt_leeway=5))
    assert _refusal(verifier, _token({"iat": int(NOW) + 60})).details["reason"] == (
        "issued_in_future"
    )


def test_exp_is_required_unless_configured_otherwise() -> None:
    token = jwt.encode({"sub": "user-1"}, SECRET, algorithm="HS256")
    error = _refusal(TokenVerifier(hs_settings()), token)
    assert error.details == {"reason": "missing_claim", "claim": "exp"}
    identity = TokenVerifier(hs_settings(jwt_require_exp=False)).verify(token, NOW)
    assert identity.expires_at is None
    assert not identity.expired(NOW + 10**9)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_time_claims_must_be_numbers(claim: str) -> None:
    error = _refusal(TokenVerifier(hs_settings()), _token({claim: True}))
    assert error.details["reason"] in ("invalid_claim", "malformed")


def test_issuer_is_checked() -> None:
    verifier = TokenVerifier(hs_settings(jwt_issuer="https://id.example.com"))
    assert verifier.verify(_token({"iss": "https://id.example.com"}), NOW)
    assert _refusal(verifier, _token({"iss": "https://evil.example"})).details["reason"] == (
        "issuer"
    )
    missing = _refusal(verifier, _token({}))
    assert missing.details == {"reason": "missing_claim", "claim": "iss"}


def test_audience_is_checked() -> None:
    verifier = TokenVerifier(hs_settings(jwt_audience="eventwire"))
    assert verifier.verify(_token({"aud": "eventwire"}), NOW)
    assert verifier.verify(_token({"aud": ["billing", "eventwire"]}), NOW)
    assert _refusal(verifier, _token({"aud": "billing"})).details["reason"] == "audience"
    assert _refusal(verifier, _token({})).details["reason"] == "missing_claim"


def test_a_token_for_an_audience_is_refused_when_none_is_configured() -> None:
    """RFC 7519 4.1.3: a recipient that is not in ``aud`` must refuse the token."""
    verifier = TokenVerifier(hs_settings())
    assert _refusal(verifier, _token({"aud": "billing"})).details["reason"] == "audience"


# -- claims -----------------------------------------------------------------------------


def test_claim_names_are_configurable() -> None:
    settings = hs_settings(
        claim_user="uid",
        claim_tenant="org",
        claim_subscribe="can_read",
        claim_publish="can_write",
        claim_admin="staff",
    )
    token = _token(
        {
            "uid": "u-9",
            "org": "acme",
            "can_read": "room:1 room:2",  # a space-separated string, as OAuth scopes
            "can_write": ["room:1"],
            "staff": True,
            "sub": "ignored",
            "admin": False,
        }
    )
    identity = TokenVerifier(settings).verify(token, NOW)
    assert identity.user_id == "u-9"
    assert identity.tenant_id == "acme"
    assert identity.subscribe == ("room:1", "room:2")
    assert identity.publish == ("room:1",)
    assert identity.admin is True


@pytest.mark.parametrize(
    ("claims", "claim"),
    [
        ({"sub": ""}, "sub"),
        ({"sub": 42}, "sub"),
        ({"tenant_id": ["acme"]}, "tenant_id"),
        ({"admin": "true"}, "admin"),
        ({"admin": 1}, "admin"),
        ({"subscribe": {"room:1": True}}, "subscribe"),
        ({"publish": ["room:1", 7]}, "publish"),
    ],
)
def test_claims_of_the_wrong_type_are_refused(claims: dict[str, Any], claim: str) -> None:
    error = _refusal(TokenVerifier(hs_settings()), _token(claims))
    assert error.code is AuthCode.UNAUTHORIZED
    assert error.details["claim"] == claim


def test_missing_sub_is_refused() -> None:
    token = jwt.encode({"exp": int(NOW) + 60}, SECRET, algorithm="HS256")
    assert _refusal(TokenVerifier(hs_settings()), token).details["claim"] == "sub"


def test_configured_grants_are_added_with_placeholders() -> None:
    settings = hs_settings(
        grant_subscribe=["user:{user_id}:*", "tenant:{tenant_id}:news"],
        grant_publish=["room:{user_id}"],
    )
    identity = TokenVerifier(settings).verify(_token({"sub": "u1", "subscribe": ["a:b"]}), NOW)
    # No tenant: the tenant grant is dropped, never widened.
    assert identity.subscribe == ("a:b", "user:u1:*")
    assert identity.publish == ("room:u1",)
    assert identity.dropped == ("tenant:{tenant_id}:news",)


# -- anonymous --------------------------------------------------------------------------


def test_no_token_without_anonymous_access_is_refused() -> None:
    verifier = TokenVerifier(hs_settings())
    for token in (None, ""):
        with pytest.raises(AuthError) as info:
            verifier.authenticate(token, NOW)
        assert info.value.details == {"reason": "missing_token"}


def test_anonymous_connections_when_allowed() -> None:
    settings = hs_settings(
        allow_anonymous=True,
        anonymous_subscribe=["public:*", "user:{user_id}:*"],
    )
    verifier = TokenVerifier(settings)
    identity = verifier.authenticate(None, NOW)
    assert identity.anonymous
    assert identity.user_id is None
    assert identity.subscribe == ("public:*",)
    # A token is still verified when one is given.
    assert verifier.authenticate(_token({}), NOW).user_id == "user-1"


def test_anonymous_only_gateway_refuses_tokens() -> None:
    verifier = TokenVerifier(AuthSettings(allow_anonymous=True))
    assert verifier.authenticate(None).anonymous
    with pytest.raises(AuthError) as info:
        verifier.authenticate(_token({}), NOW)
    assert info.value.details == {"reason": "no_keys"}


def test_the_clock_is_injected() -> None:
    verifier = TokenVerifier(hs_settings(), clock=lambda: NOW + 10_000)
    with pytest.raises(AuthError) as info:
        verifier.verify(_token({}))
    assert info.value.code is AuthCode.TOKEN_EXPIRED


# -- mint -------------------------------------------------------------------------------


def test_mint_round_trips_under_the_configured_names() -> None:
    settings = hs_settings(claim_tenant="org", jwt_issuer="eventwire-dev", jwt_audience="eventwire")
    token = mint(
        settings,
        sub="user-1",
        tenant="acme",
        subscribe=["gift-list:*", "user:{user_id}:*"],
        publish=["room:lobby"],
        admin=True,
        ttl=120,
        now=NOW,
        kid="dev",
    )
    assert jwt.get_unverified_header(token)["kid"] == "dev"
    identity = TokenVerifier(settings).verify(token, NOW + 1)
    assert identity.tenant_id == "acme"
    assert identity.subscribe == ("gift-list:*", "user:user-1:*")
    assert identity.publish == ("room:lobby",)
    assert identity.admin
    assert identity.issued_at == NOW
    assert identity.expires_at == NOW + 120 + 30


@pytest.mark.parametrize("key", ["rsa_keys", "ec_keys"])
def test_mint_with_a_private_key_file(
    key: str, request: pytest.FixtureRequest, write: Writer
) -> None:
    pair: KeyPair = request.getfixturevalue(key)
    settings = AuthSettings(
        jwt_public_key_file=write("pub.pem", pair.public_pem),
        jwt_private_key_file=write("priv.pem", pair.private_pem),
    )
    token = mint(settings, sub="dev", now=NOW)
    assert jwt.get_unverified_header(token)["alg"] == ("RS256" if key == "rsa_keys" else "ES256")
    assert TokenVerifier(settings).verify(token, NOW).user_id == "dev"


def test_mint_needs_a_signing_key(rsa_keys: KeyPair, write: Writer) -> None:
    settings = AuthSettings(jwt_public_key_file=write("pub.pem", rsa_keys.public_pem))
    with pytest.raises(AuthConfigError, match="jwt_private_key_file"):
        mint(settings, sub="dev")
    with pytest.raises(AuthConfigError, match="holds a public key"):
        mint(
            settings.model_copy(update={"jwt_private_key_file": settings.jwt_public_key_file}),
            sub="dev",
        )


@pytest.mark.parametrize(
    "kwargs", [{"sub": ""}, {"sub": "u", "ttl": 0}, {"sub": "u", "subscribe": ["bad pattern"]}]
)
def test_mint_checks_its_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the messages are checked elsewhere
        mint(hs_settings(), **kwargs)
