"""Authentication: a bearer token (a JWT, verified with PyJWT) becomes the request's
`Principal`; what that principal may do is write_model/access.py's rule.

Configured by one of JWT_SECRET (HS256), JWT_PUBLIC_KEY or JWT_JWKS_URL (RS256 / ES256);
JWT_ISSUER and JWT_AUDIENCE, when set, must match; `exp` and `sub` are required, `exp` and
`nbf` are checked with JWT_LEEWAY_SECONDS of clock skew. Only the configured key's
algorithms are accepted, so `alg: none` and an HS256 token signed with a public key are
refused. The subject is a customer id, unless the roles claim (JWT_ROLES_CLAIM) holds the
staff role (JWT_STAFF_ROLE): then it is a staff member's id.

Without any key the API is open: every request is the anonymous principal, which may do
everything (as before authentication existed), and the server says so at start.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import jwt

from app.settings import Settings
from write_model.command_context import ANONYMOUS, Principal

HMAC_ALGORITHMS = ["HS256"]
PUBLIC_KEY_ALGORITHMS = ["RS256", "ES256"]
REQUIRED_CLAIMS = ["exp", "sub"]


class Unauthenticated(Exception):
    """No valid token where one is required; the message says what is wrong with it."""


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    expires_at: float | None = None  # the token's `exp` (epoch seconds); None: never


OPEN = Authenticated(ANONYMOUS)


class Authenticator:
    """Turns an `Authorization` header value (HTTP) or a token (websocket `connection_init`)
    into who asks. `enabled` is False when no key is configured."""

    def __init__(self, settings: Settings, *, clock: Any = time.time) -> None:
        configured = [
            name
            for name, value in (
                ("JWT_SECRET", settings.jwt_secret),
                ("JWT_PUBLIC_KEY", settings.jwt_public_key),
                ("JWT_JWKS_URL", settings.jwt_jwks_url),
            )
            if value
        ]
        if len(configured) > 1:
            raise ValueError(f"set only one of {' and '.join(configured)}, not several")
        self._settings = settings
        self._clock = clock
        self._jwks = (
            # Keys cached (the set for 5 minutes); a fetch waits at most one connect timeout.
            jwt.PyJWKClient(settings.jwt_jwks_url, timeout=int(settings.connect_timeout_seconds))
            if settings.jwt_jwks_url
            else None
        )
        self.enabled = bool(configured)

    def describe(self) -> str:
        """What the start-up log and `orders dev`'s banner say about authentication."""
        if not self.enabled:
            return (
                "authentication is not configured: the API is open to every client (no "
                "JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL is set)"
            )
        source = (
            "JWT_SECRET (HS256)"
            if self._settings.jwt_secret
            else "JWT_PUBLIC_KEY"
            if self._settings.jwt_public_key
            else f"the keys at JWT_JWKS_URL {self._settings.jwt_jwks_url}"
        )
        return f"authentication is on: bearer tokens verified with {source}"

    async def from_header(self, authorization: str | None) -> Authenticated:
        if not self.enabled:
            return OPEN
        if not authorization:
            raise Unauthenticated("this API needs a bearer token: send Authorization: Bearer <JWT>")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <JWT>`")
        return await self.from_token(token.strip())

    async def from_token(self, token: object) -> Authenticated:
        if not self.enabled:
            return OPEN
        if not isinstance(token, str) or not token:
            raise Unauthenticated("this API needs a bearer token")
        key, algorithms = await self._key_for(token)
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={
                    "require": REQUIRED_CLAIMS
                    + (["iss"] if settings.jwt_issuer else [])
                    + (["aud"] if settings.jwt_audience else []),
                    # Without a configured audience, a token that names one is still fine.
                    "verify_aud": settings.jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token's issuer (iss) is not the one accepted") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token's audience (aud) is not this API") from None
        except jwt.MissingRequiredClaimError as missing:
            raise Unauthenticated(f"the token has no `{missing.claim}` claim") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(
                f"the token's algorithm is not accepted (accepted: {', '.join(algorithms)})"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify") from None
        except jwt.InvalidTokenError as invalid:
            raise Unauthenticated(f"the token is invalid: {invalid}") from None
        return Authenticated(self._principal(claims), float(claims["exp"]))

    async def _key_for(self, token: str) -> tuple[Any, list[str]]:
        settings = self._settings
        if settings.jwt_secret:
            return settings.jwt_secret, HMAC_ALGORITHMS
        if settings.jwt_public_key:
            return settings.jwt_public_key, PUBLIC_KEY_ALGORITHMS
        assert self._jwks is not None
        try:
            # PyJWKClient fetches with urllib (blocking) and caches the key set.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            raise Unauthenticated(f"the token's key could not be fetched: {error}") from None
        except (jwt.PyJWKClientError, jwt.DecodeError) as error:
            raise Unauthenticated(f"the token's key is not known: {error}") from None
        return signing_key.key, PUBLIC_KEY_ALGORITHMS

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated("the token's subject (sub) must be a non-empty string")
        roles = claims.get(self._settings.jwt_roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        elif not isinstance(roles, list):
            roles = []
        if self._settings.jwt_staff_role in roles:
            return Principal.staff(subject)
        return Principal.customer(subject)

    def mint(self, subject: str, *, staff: bool, ttl_seconds: float) -> str:
        """A token for `subject` signed with JWT_SECRET (`orders token`, tests)."""
        settings = self._settings
        if not settings.jwt_secret:
            raise ValueError("minting a token needs JWT_SECRET (HS256) to be set")
        now = int(self._clock())
        claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl_seconds)}
        if staff:
            claims[settings.jwt_roles_claim] = [settings.jwt_staff_role]
        if settings.jwt_issuer:
            claims["iss"] = settings.jwt_issuer
        if settings.jwt_audience:
            claims["aud"] = settings.jwt_audience
        return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def www_authenticate(message: str) -> str:
    """The 401's WWW-Authenticate header (RFC 6750)."""
    description = message.replace("\\", "").replace('"', "'")
    return f'Bearer realm="orders", error="invalid_token", error_description="{description}"'


def connection_token(params: dict[str, object] | None) -> object:
    """The token of a `connection_init` payload, None when it carries none."""
    params = params or {}
    token = params.get("token")
    if token is not None:
        return token
    for name, value in params.items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, rest = value.strip().partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else None
    return None
