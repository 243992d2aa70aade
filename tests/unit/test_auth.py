"""Bearer tokens into principals (app/auth.py): what is accepted, what is refused and why."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.auth import Authenticator, Unauthenticated
from app.settings import Settings
from write_model.command_context import ANONYMOUS, Principal

SECRET = "s3cret-for-tests-only-0123456789abcdef"
ISSUER, AUDIENCE = "https://issuer.example", "orders-api"


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "cust-1", "iat": now, "exp": now + 300, "iss": ISSUER, "aud": AUDIENCE}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def authenticator(**settings: Any) -> Authenticator:
    defaults = {"jwt_secret": SECRET, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    return Authenticator(Settings(**{**defaults, **settings}))


async def test_without_a_key_every_request_is_anonymous_whatever_it_sends() -> None:
    open_api = Authenticator(Settings())
    assert not open_api.enabled
    assert "open to every client" in open_api.describe()
    assert (await open_api.from_header(None)).principal == ANONYMOUS
    assert (await open_api.from_header("Bearer garbage")).principal == ANONYMOUS


async def test_a_valid_token_names_a_customer_or_with_the_staff_role_a_staff_member() -> None:
    auth = authenticator()
    customer = await auth.from_header(f"Bearer {hs256(claims())}")
    assert customer.principal == Principal.customer("cust-1")
    assert customer.expires_at is not None and customer.expires_at > time.time()
    staff = await auth.from_token(hs256(claims(sub="ops-1", roles=["staff", "other"])))
    assert staff.principal == Principal.staff("ops-1")
    spaced = await auth.from_token(hs256(claims(sub="ops-2", roles="reader staff")))
    assert spaced.principal == Principal.staff("ops-2")
    custom = authenticator(jwt_roles_claim="groups", jwt_staff_role="admins")
    assert (await custom.from_token(hs256(claims(groups=["admins"])))).principal.kind == "STAFF"
    assert (await custom.from_token(hs256(claims(roles=["staff"])))).principal.kind == "CUSTOMER"


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = "cust-2"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _part(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(payload: dict[str, Any]) -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(payload)}."


def _hs256_by_hand(payload: dict[str, Any], key: bytes) -> str:
    """PyJWT will not sign HS256 with a PEM key; an attacker's own code would."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT'})}.{_part(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_part(signature)}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: hs256(claims(exp=int(time.time()) - 120)), "expired"),
        (lambda: hs256(claims(nbf=int(time.time()) + 600)), "not valid yet"),
        (lambda: hs256(claims(iss="https://elsewhere.example")), "issuer"),
        (lambda: hs256(claims(aud="another-api")), "audience"),
        (lambda: hs256(claims(aud=None)), "`aud`"),
        (lambda: hs256(claims(exp=None)), "`exp`"),
        (lambda: hs256(claims(sub=None)), "`sub`"),
        (lambda: _tampered(hs256(claims())), "signature"),
        (lambda: hs256(claims(), secret="another-secret-of-the-same-length-00000"), "signature"),
        (lambda: _unsigned(claims()), "algorithm"),
        (lambda: "not.a.token", "invalid"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "no-audience",
        "no-expiry",
        "no-subject",
        "tampered",
        "other-secret",
        "alg-none",
        "garbage",
    ],
)
async def test_a_bad_token_is_refused_saying_what_is_wrong(token: Any, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        await authenticator().from_token(token())


async def test_a_missing_or_malformed_header_is_refused() -> None:
    auth = authenticator()
    with pytest.raises(Unauthenticated, match="needs a bearer token"):
        await auth.from_header(None)
    with pytest.raises(Unauthenticated, match="Bearer <JWT>"):
        await auth.from_header(f"Basic {hs256(claims())}")


async def test_clock_skew_within_the_leeway_is_accepted() -> None:
    just_expired = hs256(claims(exp=int(time.time()) - 5))
    assert (await authenticator(jwt_leeway_seconds=30).from_token(just_expired)).principal
    with pytest.raises(Unauthenticated, match="expired"):
        await authenticator(jwt_leeway_seconds=0).from_token(just_expired)


def _pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ],
)
async def test_a_public_key_verifies_rs256_and_es256_and_refuses_hs256_signed_with_it(
    algorithm: str, make_key: Any
) -> None:
    private = make_key()
    auth = authenticator(jwt_secret=None, jwt_public_key=_pem(private))
    token = jwt.encode(claims(), private, algorithm=algorithm)
    assert (await auth.from_token(token)).principal == Principal.customer("cust-1")
    # The classic confusion: an HS256 token "signed" with the public key as its secret.
    confused = _hs256_by_hand(claims(), _pem(private).encode())
    with pytest.raises(Unauthenticated, match="algorithm"):
        await auth.from_token(confused)


def test_only_one_key_source_may_be_set() -> None:
    with pytest.raises(ValueError, match="only one of JWT_SECRET and JWT_PUBLIC_KEY"):
        Authenticator(Settings(jwt_secret=SECRET, jwt_public_key="pem"))


async def test_a_minted_token_is_accepted_for_a_customer_and_for_staff() -> None:
    auth = authenticator()
    customer = auth.mint("cust-9", staff=False, ttl_seconds=60)
    assert (await auth.from_token(customer)).principal == Principal.customer("cust-9")
    staff = auth.mint("ops-9", staff=True, ttl_seconds=60)
    assert (await auth.from_token(staff)).principal == Principal.staff("ops-9")
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Authenticator(Settings()).mint("x", staff=False, ttl_seconds=60)
