"""A real OpenID provider (`oidc-provider-mock`) on 127.0.0.1 for the auth tests: tokens, key rotation, JWKS hits."""
from __future__ import annotations

import socket
import threading
from datetime import timedelta
from typing import Any, Optional
from urllib.parse import parse_qs, urlparse

import flask
import httpx
import jwt
import oidc_provider_mock
import werkzeug.serving

REDIRECT = "http://127.0.0.1/callback"


def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalIssuer:
    def __init__(self, token_max_age: timedelta = timedelta(hours=1)):
        app = oidc_provider_mock.app(access_token_max_age=token_max_age)
        self._storage: Any = None
        self.jwks_hits = 0
        self.jwks_down = False

        @app.before_request
        def _observe() -> Optional[tuple[str, int]]:
            self._storage = flask.g.oidc_provider_mock_storage
            if flask.request.path == "/jwks":
                self.jwks_hits += 1
                if self.jwks_down:
                    return "down", 503
            return None

        self._server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._http = httpx.Client(base_url=self.url, timeout=5)

    def __enter__(self) -> "LocalIssuer":
        self._thread.start()
        self._http.get("/.well-known/openid-configuration").raise_for_status()  # also captures the storage
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        self._http.close()

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks"

    def token(self, sub: str = "alice", audience: str = "shop-api", **claims: Any) -> str:
        """An ID token obtained through the provider's authorization-code flow."""
        self._http.put(f"/users/{sub}", json=claims).raise_for_status()
        query = {"client_id": audience, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid"}
        authorized = self._http.post("/oauth2/authorize", params=query, data={"sub": sub})
        code = parse_qs(urlparse(authorized.headers["location"]).query)["code"][0]
        issued = self._http.post(
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": audience, "client_secret": "x"},
        )
        issued.raise_for_status()
        return issued.json()["id_token"]

    def private_jwk(self) -> dict:
        return self._storage.jwk.as_dict(is_private=True)

    def public_jwks(self) -> dict:
        return self._http.get("/jwks").json()

    def sign(self, payload: dict, headers: Optional[dict] = None, algorithm: str = "RS256") -> str:
        """A token signed with the issuer's current private key (for headers the provider never sets, e.g. kid)."""
        key = jwt.PyJWK(self.private_jwk(), algorithm).key
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)

    def rotate_key(self) -> None:
        """Replace the signing key: the JWKS now serves only the new key, new tokens are signed with it."""
        self._storage.jwk = type(self._storage.jwk).generate_key(is_private=True)
