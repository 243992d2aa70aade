"""JWT_JWKS_URL: tokens verified with keys fetched from a real HTTP server (a JWKS served on
a local port), picked by `kid`; an unknown key or an unreachable server refuses the token."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.auth import Authenticator, Unauthenticated
from app.settings import Settings
from tests.integration.test_cli_messages import closed_port
from write_model.command_context import Principal


@contextlib.contextmanager
def serving_jwks(keys: list[dict[str, Any]]) -> Iterator[str]:
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def claims() -> dict[str, Any]:
    return {"sub": "cust-7", "exp": int(time.time()) + 60}


async def test_tokens_signed_with_a_key_of_the_jwks_are_accepted_others_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = [
        {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1", "use": "sig"},
        {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "ec-1", "use": "sig"},
    ]
    with serving_jwks(keys) as url:
        auth = Authenticator(Settings(jwt_jwks_url=url))
        assert auth.enabled and url in auth.describe()
        for key, algorithm, kid in ((rsa_key, "RS256", "rsa-1"), (ec_key, "ES256", "ec-1")):
            token = jwt.encode(claims(), key, algorithm=algorithm, headers={"kid": kid})
            assert (await auth.from_token(token)).principal == Principal.customer("cust-7")
        unknown = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "other"})
        with pytest.raises(Unauthenticated, match="key is not known"):
            await auth.from_token(unknown)
        forged = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "rsa-1"})
        with pytest.raises(Unauthenticated, match="signature"):
            await auth.from_token(forged)


async def test_an_unreachable_jwks_refuses_the_token_saying_so() -> None:
    url = f"http://127.0.0.1:{closed_port()}/jwks.json"
    auth = Authenticator(Settings(jwt_jwks_url=url))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k"})
    with pytest.raises(Unauthenticated, match="could not be fetched"):
        await auth.from_token(token)
