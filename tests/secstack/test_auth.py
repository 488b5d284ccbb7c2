"""secstack.auth against a real OpenID provider on 127.0.0.1 (oidc-provider-mock): what verifies, what is rejected
with which error, and that no error ever carries the token."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import threading
import traceback
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.util import setup_testing_defaults

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secstack import auth
from secstack.jwks import JwksCache, JwksError, KeySet, NeedsNetwork
from stacks.settings.mesh import JwtAuthSettings
from tests.helpers.oidc_issuer import LocalIssuer, free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(issuer_url: str, jwks_uri: str, **overrides) -> JwtAuthSettings:
    return JwtAuthSettings(issuer=issuer_url, jwks_uri=jwks_uri, audiences=["shop-api"], **overrides)


def verifier_for(issuer: LocalIssuer, clock: Clock, **overrides) -> auth.TokenVerifier:
    config = settings(overrides.pop("issuer_url", issuer.url), overrides.pop("jwks_uri", issuer.jwks_uri), **overrides)
    return auth.TokenVerifier(config, jwks=JwksCache(str(config.jwks_uri), clock=clock, timeout=2))


def rejected(verifier: auth.TokenVerifier, token: str, error: type[auth.AuthError]) -> auth.AuthError:
    with pytest.raises(error) as caught:
        verifier.verify(token)
    assert type(caught.value) is error, f"expected {error.__name__}, got {type(caught.value).__name__}"
    exc = caught.value
    text = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
    for part in [token, *token.split(".")]:
        if len(part) >= 8:
            assert part not in text, f"{error.__name__} message echoes the token"
    return exc


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_now(issuer: LocalIssuer, **extra) -> dict:
    now = int(time.time())
    return {"iss": issuer.url, "aud": "shop-api", "sub": "alice", "iat": now, "exp": now + 300, **extra}


# --- tokens from the issuer ---------------------------------------------------------------------------------------


def test_token_from_the_issuer_verifies(issuer, clock):
    verifier = verifier_for(issuer, clock)
    token = issuer.token(roles=["customer"], scope="orders:read orders:write")
    claims = verifier.verify(token)
    assert claims["sub"] == "alice" and claims["iss"] == issuer.url and "shop-api" in claims["aud"]
    verifier.require(claims, roles=["customer"], scopes=["orders:write"])
    assert verifier.authenticate(f"Bearer {token}")["sub"] == "alice"
    assert verifier.jwks.fetches == 1
    verifier.verify(token)
    assert verifier.jwks.fetches == 1, "a warm cache verifies without the network"


def test_wrong_audience(issuer, clock):
    rejected(verifier_for(issuer, clock), issuer.token(audience="billing-api"), auth.BadAudience)


def test_wrong_issuer(issuer, clock):
    rejected(verifier_for(issuer, clock, issuer_url=issuer.url + "/tenant-b"), issuer.token(), auth.BadIssuer)


def test_expired_token_beyond_leeway():
    clock = Clock()
    with LocalIssuer(token_max_age=timedelta(seconds=-120)) as expiring:
        token = expiring.token()
        rejected(verifier_for(expiring, clock, leeway_seconds=30), token, auth.TokenExpired)
        # The same token within the leeway is accepted: leewaySeconds is the clock skew the mesh tolerates too.
        assert verifier_for(expiring, clock, leeway_seconds=300).verify(token)["sub"] == "alice"


def test_tampered_signature_and_payload(issuer, clock):
    verifier = verifier_for(issuer, clock)
    header, payload, signature = issuer.token().split(".")
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    rejected(verifier, f"{header}.{payload}.{flipped}", auth.BadSignature)
    forged = json.loads(base64.urlsafe_b64decode(payload + "==")) | {"sub": "mallory", "roles": ["admin"]}
    rejected(verifier, f"{header}.{b64(json.dumps(forged).encode())}.{signature}", auth.BadSignature)


def test_alg_none_is_rejected(issuer, clock):
    body = b64(json.dumps(claims_now(issuer)).encode())
    for alg in ("none", "None", "NONE"):
        rejected(verifier_for(issuer, clock), f"{b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{body}.", auth.AlgorithmNotAllowed)


def test_hs256_signed_with_the_public_key_is_rejected(issuer, clock):
    [jwk] = issuer.public_jwks()["keys"]
    pem = jwt.PyJWK(jwk, "RS256").key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': jwk['kid']}).encode())}.{b64(json.dumps(claims_now(issuer)).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    rejected(verifier_for(issuer, clock), f"{signing_input}.{b64(mac)}", auth.AlgorithmNotAllowed)


def test_symmetric_algorithms_cannot_be_configured(issuer):
    with pytest.raises(ValueError):
        settings(issuer.url, issuer.jwks_uri, algorithms=["HS256"])
    sneaky = JwtAuthSettings.model_construct(**settings(issuer.url, issuer.jwks_uri).model_dump() | {"algorithms": ["HS256"]})
    with pytest.raises(auth.AuthConfigError, match="not asymmetric"):
        auth.TokenVerifier(sneaky)


def test_token_alg_must_match_the_key_type(issuer, clock):
    """An ES256 token naming the issuer's RSA kid: allowed algorithm, wrong key type."""
    [jwk] = issuer.public_jwks()["keys"]
    token = jwt.encode(claims_now(issuer), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": jwk["kid"]})
    exc = rejected(verifier_for(issuer, clock), token, auth.BadSignature)
    assert "does not match" in str(exc)


def test_claim_time_and_presence_rules(issuer, clock):
    verifier = verifier_for(issuer, clock)
    rejected(verifier, issuer.sign(claims_now(issuer, nbf=int(time.time()) + 600)), auth.TokenNotYetValid)
    rejected(verifier, issuer.sign(claims_now(issuer, iat=int(time.time()) + 600)), auth.TokenNotYetValid)
    no_exp = claims_now(issuer)
    del no_exp["exp"]
    assert rejected(verifier, issuer.sign(no_exp), auth.MissingClaim).claim == "exp"
    no_sub = claims_now(issuer)
    del no_sub["sub"]
    assert rejected(verifier, issuer.sign(no_sub), auth.MissingClaim).claim == "sub"
    rejected(verifier, "not-a-jwt", auth.InvalidToken)
    rejected(verifier, "a" * 20000 + ".b.c", auth.InvalidToken)


# --- key rotation and the JWKS cache ------------------------------------------------------------------------------


def test_key_rotation_refetches_and_unknown_kids_are_rate_limited(clock):
    with LocalIssuer() as rotating:
        verifier = verifier_for(rotating, clock)
        old = rotating.token()
        assert verifier.verify(old)["sub"] == "alice"
        hits = rotating.jwks_hits

        rotating.rotate_key()
        clock.advance(31)
        # A token from the issuer's new key (no kid, as this provider issues them): no held key verifies -> refetch.
        assert verifier.verify(rotating.token())["sub"] == "alice"
        assert rotating.jwks_hits == hits + 1
        rejected(verifier, old, auth.BadSignature)  # the retired key is gone from the JWKS

        rotating.rotate_key()
        clock.advance(31)
        [new_jwk] = rotating.public_jwks()["keys"]
        hits = rotating.jwks_hits
        # The usual shape: the token names its new key by kid -> unknown kid -> refetch -> verifies.
        assert verifier.verify(rotating.sign(claims_now(rotating), headers={"kid": new_jwk["kid"]}))["sub"] == "alice"
        assert rotating.jwks_hits == hits + 1

        # A flood of tokens naming keys nobody has: at most one fetch per min_refetch_interval.
        for i in range(25):
            rejected(verifier, rotating.sign(claims_now(rotating), headers={"kid": f"made-up-{i}"}), auth.UnknownKey)
        assert rotating.jwks_hits == hits + 1, "refetches inside min_refetch_interval must not reach the issuer"
        clock.advance(31)
        for i in range(5):
            rejected(verifier, rotating.sign(claims_now(rotating), headers={"kid": f"later-{i}"}), auth.UnknownKey)
        assert rotating.jwks_hits == hits + 2


def test_cache_lifetime_expiry_refetches(issuer, clock):
    verifier = verifier_for(issuer, clock)
    token = issuer.token()
    verifier.verify(token)
    clock.advance(299)
    verifier.verify(token)
    assert verifier.jwks.fetches == 1
    clock.advance(2)
    verifier.verify(token)
    assert verifier.jwks.fetches == 2


def test_jwks_endpoint_unreachable(issuer, clock):
    dead = f"http://127.0.0.1:{free_port()}/jwks"
    verifier = verifier_for(issuer, clock, jwks_uri=dead)
    token = issuer.token()
    exc = rejected(verifier, token, auth.JwksUnavailable)
    assert dead in str(exc) and exc.status == 503
    rejected(verifier, token, auth.JwksUnavailable)
    assert verifier.jwks.fetches == 1, "a failed fetch is not retried within min_refetch_interval"


def test_jwks_endpoint_down_after_warm_cache_serves_stale_then_fails(clock):
    with LocalIssuer() as flaky:
        verifier = verifier_for(flaky, clock)
        token = flaky.token()
        verifier.verify(token)
        flaky.jwks_down = True
        clock.advance(301)  # cache expired: refresh fails (HTTP 503) but the keys are within stale_if_error
        assert verifier.verify(token)["sub"] == "alice"
        assert verifier.jwks.fetches == 2
        clock.advance(600)  # beyond lifetime + stale_if_error
        rejected(verifier, token, auth.JwksUnavailable)
        flaky.jwks_down = False
        clock.advance(31)
        assert verifier.verify(token)["sub"] == "alice"


def test_jwks_rules():
    with pytest.raises(ValueError, match="https"):
        JwksCache("http://issuer.example.com/jwks")
    with pytest.raises(JwksError, match="no usable signing keys"):
        KeySet({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "use": "enc", "n": "x", "e": "AQAB"}]})
    with pytest.raises(NeedsNetwork):
        JwksCache("https://issuer.example.com/jwks").current(network=False)


class _JsonServer:
    """A bare HTTP server on 127.0.0.1 answering every GET with one status, headers and body."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_weak_keys_and_redirects_are_refused(issuer, clock):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(weak.public_key())) | {"kid": "weak"}
    served = _JsonServer(200, json.dumps({"keys": [jwk]}).encode(), {"content-type": "application/json"})
    redirect = _JsonServer(302, b"", {"location": issuer.jwks_uri})
    try:
        token = jwt.encode(claims_now(issuer), weak, algorithm="RS256", headers={"kid": "weak"})
        exc = rejected(verifier_for(issuer, clock, jwks_uri=served.uri), token, auth.BadSignature)
        assert "too weak" in str(exc)
        # The issuer's real JWKS is one redirect away: a redirect could downgrade to http or another host.
        exc = rejected(verifier_for(issuer, clock, jwks_uri=redirect.uri), issuer.token(), auth.JwksUnavailable)
        assert "HTTP 302" in str(exc)
    finally:
        served.close()
        redirect.close()


# --- claim rules, as the mesh renders them ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "roles", "scopes", "allowed"),
    [
        ({"roles": ["customer"], "scope": "orders:read orders:write"}, ["customer"], ["orders:write"], True),
        ({"roles": "customer", "scope": ["orders:write"]}, ["customer"], ["orders:write"], True),
        ({"roles": "customer admin"}, ["customer"], [], False),  # roles is not space-delimited in Istio
        ({"roles": ["customer"]}, ["customer", "admin"], [], False),  # every listed role is required
        ({"scope": "orders:read"}, [], ["orders:write"], False),
        ({"scope": "orders:read orders:write"}, [], ["orders:read", "orders:write"], True),
        ({}, [], [], True),
    ],
)
def test_require_mirrors_the_mesh_claim_rules(issuer, claims, roles, scopes, allowed):
    verifier = auth.TokenVerifier(settings(issuer.url, issuer.jwks_uri))
    if allowed:
        verifier.require(claims, roles=roles, scopes=scopes)
    else:
        with pytest.raises(auth.Forbidden) as caught:
            verifier.require(claims, roles=roles, scopes=scopes)
        assert caught.value.status == 403


def test_custom_scope_claim_is_exact_match_like_istio(issuer):
    verifier = auth.TokenVerifier(settings(issuer.url, issuer.jwks_uri, scopes_claim="permissions"))
    with pytest.raises(auth.Forbidden):
        verifier.require({"permissions": "orders:read orders:write"}, scopes=["orders:write"])
    verifier.require({"permissions": ["orders:write"]}, scopes=["orders:write"])


# --- reading the ConfigMap ----------------------------------------------------------------------------------------


def test_from_configmap_dir_and_env(tmp_path, issuer):
    document = {"issuer": issuer.url, "jwksUri": issuer.jwks_uri, "audiences": ["shop-api"], "leewaySeconds": 10}
    (tmp_path / auth.CONFIG_KEY).write_text(json.dumps(document))
    from_dir = auth.TokenVerifier.from_configmap_dir(tmp_path)
    assert (from_dir.issuer, from_dir.audiences, from_dir.leeway) == (issuer.url, ["shop-api"], 10)
    assert from_dir.verify(issuer.token())["sub"] == "alice"
    assert auth.TokenVerifier.from_env({auth.ENV_DIR: str(tmp_path)}).issuer == issuer.url
    assert auth.TokenVerifier.from_env({auth.ENV_JSON: json.dumps(document), auth.ENV_DIR: "/nonexistent"}).leeway == 10


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ('{"issuer": "x", "jwksUri": "http://keys.example.com/jwks", "audiences": ["a"]}', "jwksUri: Value error, must be an https://"),
        ('{"issuer": "x", "jwksUri": "https://keys.example.com/jwks", "audiences": []}', "audiences"),
        ('{"issuer": "x", "jwksUri": "https://keys.example.com/jwks", "audiences": ["a"], "algorithms": ["HS256"]}', "algorithms"),
    ],
)
def test_bad_configmap_names_the_file_and_key(tmp_path, content, expected):
    if content is not None:
        (tmp_path / auth.CONFIG_KEY).write_text(content)
    with pytest.raises(auth.AuthConfigError) as caught:
        auth.TokenVerifier.from_configmap_dir(tmp_path)
    assert str(tmp_path / auth.CONFIG_KEY) in str(caught.value)
    assert expected in str(caught.value)


# --- adapters -----------------------------------------------------------------------------------------------------


def _asgi_call(middleware, headers, scope_type="http"):
    seen, sent = {}, []

    async def app(scope, receive, send):
        seen.update(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "path": "/api/orders", "method": "GET", "headers": headers}
    asyncio.run(middleware(app)(scope, receive, send))
    return seen, sent


def test_asgi_adapter(issuer, clock):
    verifier = verifier_for(issuer, clock)  # cold cache: the first fetch runs in a worker thread
    token = issuer.token(scope="orders:read")
    seen, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier, scopes=["orders:read"]), [(b"authorization", f"Bearer {token}".encode())])
    assert sent[0]["status"] == 200 and seen[auth.CLAIMS_KEY]["sub"] == "alice"

    _, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier, realm="shop"), [])
    assert sent[0]["status"] == 401 and dict(sent[0]["headers"])[b"www-authenticate"] == b'Bearer realm="shop"'

    tampered = token[:-6] + "AAAAAA"
    _, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier), [(b"authorization", f"Bearer {tampered}".encode())])
    challenge = dict(sent[0]["headers"])[b"www-authenticate"].decode()
    assert sent[0]["status"] == 401 and 'error="invalid_token"' in challenge
    assert tampered.split(".")[2] not in challenge + sent[1]["body"].decode()

    _, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier, scopes=["orders:write"]), [(b"authorization", f"Bearer {token}".encode())])
    assert sent[0]["status"] == 403 and b'error="insufficient_scope"' in dict(sent[0]["headers"])[b"www-authenticate"]

    _, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier), [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])
    assert sent[0]["status"] == 401

    _, sent = _asgi_call(lambda app: auth.AsgiAuth(app, verifier), [], scope_type="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_wsgi_adapter(issuer, clock):
    verifier = verifier_for(issuer, clock)
    token = issuer.token(roles=["customer"])
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    def call(middleware, authorization=None, path="/account/orders"):
        environ = {"PATH_INFO": path}
        if authorization:
            environ["HTTP_AUTHORIZATION"] = authorization
        setup_testing_defaults(environ)
        status = {}
        body = b"".join(middleware(environ, lambda s, h: status.update(status=s, headers=dict(h))))
        return status["status"], status["headers"], body

    status, _, _ = call(auth.WsgiAuth(app, verifier, roles=["customer"]), f"Bearer {token}")
    assert status == "200 OK" and seen[auth.CLAIMS_KEY]["sub"] == "alice"
    status, headers, body = call(auth.WsgiAuth(app, verifier), "Basic dXNlcjpwYXNz")
    assert status.startswith("401") and 'error="invalid_token"' in headers["www-authenticate"]
    status, headers, _ = call(auth.WsgiAuth(app, verifier, roles=["admin"]), f"Bearer {token}")
    assert status.startswith("403") and token not in json.dumps(headers)
    status, _, _ = call(auth.WsgiAuth(app, verifier, exempt_paths=["/healthz"]), None, "/healthz")
    assert status == "200 OK"
    dead = verifier_for(issuer, clock, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks")
    status, headers, body = call(auth.WsgiAuth(app, dead), f"Bearer {token}")
    assert status.startswith("503") and "www-authenticate" not in headers
    assert json.loads(body) == {"error": "temporarily_unavailable", "error_description": "issuer key set unavailable"}


def test_importable_without_pulumi():
    code = "import sys, secstack.auth; bad = [m for m in sys.modules if m.split('.')[0] == 'pulumi']; sys.exit(1 if bad else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
