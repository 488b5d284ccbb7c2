"""Service-side JWT verification with the same issuer, keys, audiences and claim rules the mesh enforces.

    verifier = TokenVerifier.from_env()          # reads the `secstack-auth` ConfigMap the stack writes
    claims = verifier.verify(token)              # signature, alg, iss, aud, exp, nbf, iat, required claims
    verifier.require(claims, roles=["customer"], scopes=["orders:write"])

No Pulumi import: any Python service can use this module. Error messages never contain the token.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import jwt
from pydantic import ValidationError

from secstack.jwks import JwksCache, JwksError, KeySet, NeedsNetwork
from stacks.settings.mesh import ASYMMETRIC_ALGORITHMS, JwtAuthSettings

CONFIGMAP_NAME = "secstack-auth"
CONFIG_KEY = "auth.json"
DEFAULT_CONFIG_DIR = "/etc/secstack/auth"
ENV_JSON = "SECSTACK_AUTH_JSON"
ENV_DIR = "SECSTACK_AUTH_DIR"
CLAIMS_KEY = "secstack.claims"  # where the adapters put verified claims (ASGI scope, WSGI environ)
MAX_TOKEN_BYTES = 16 * 1024
# Istio always splits these claims on spaces; `spaceDelimitedClaims` adds to them (see components/mesh.py).
ISTIO_SPACE_DELIMITED = frozenset({"scope", "permission"})
ALWAYS_REQUIRED = ("exp", "iss", "aud")  # a token without expiry, issuer or audience is never accepted


# --- errors -------------------------------------------------------------------------------------------------------


class AuthError(Exception):
    """Base of every verification failure. `str()` is a fixed description, never the token or its parts."""

    status = 401
    error: Optional[str] = "invalid_token"  # RFC 6750 error code for WWW-Authenticate
    message = "invalid token"

    def __init__(self, message: Optional[str] = None):
        super().__init__(message or self.message)

    @property
    def description(self) -> str:
        return self.args[0]


class MissingToken(AuthError):
    error = None  # RFC 6750 3.1: a request without credentials gets no error code
    message = "bearer token required"


class InvalidToken(AuthError):
    message = "malformed token"


class TokenExpired(AuthError):
    message = "token expired"


class TokenNotYetValid(AuthError):
    message = "token not yet valid (nbf or iat in the future)"


class BadAudience(AuthError):
    message = "token audience not accepted"


class BadIssuer(AuthError):
    message = "token issuer not accepted"


class BadSignature(AuthError):
    message = "token signature invalid"


class UnknownKey(AuthError):
    message = "token signing key not in the issuer's key set"


class AlgorithmNotAllowed(AuthError):
    message = "token algorithm not allowed"


class MissingClaim(AuthError):
    def __init__(self, claim: str):
        self.claim = claim
        super().__init__(f"token lacks required claim {claim!r}")


class JwksUnavailable(AuthError):
    status = 503
    error = None
    message = "issuer key set unavailable"


class Forbidden(AuthError):
    status = 403
    error = "insufficient_scope"

    def __init__(self, missing_roles: Iterable[str] = (), missing_scopes: Iterable[str] = ()):
        self.missing_roles, self.missing_scopes = sorted(missing_roles), sorted(missing_scopes)
        parts = []
        if self.missing_roles:
            parts.append(f"roles {self.missing_roles}")
        if self.missing_scopes:
            parts.append(f"scopes {self.missing_scopes}")
        super().__init__("token lacks " + " and ".join(parts))


class AuthConfigError(ValueError):
    """The auth settings handed to the service are unusable; the message names the file/variable and the fix."""


def _mapped(exc: jwt.PyJWTError) -> AuthError:
    # Most specific first: several PyJWT errors subclass others (InvalidSignatureError is a DecodeError).
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenExpired()
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenNotYetValid()
    if isinstance(exc, jwt.InvalidAudienceError):
        return BadAudience()
    if isinstance(exc, jwt.InvalidIssuerError):
        return BadIssuer()
    if isinstance(exc, jwt.InvalidSignatureError):
        return BadSignature()
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return AlgorithmNotAllowed()
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return MissingClaim(exc.claim)
    if isinstance(exc, jwt.InvalidKeyError):
        return BadSignature("token signing key rejected (too weak or malformed)")
    return InvalidToken()


# --- the verifier -------------------------------------------------------------------------------------------------


def space_delimited_claims(settings: JwtAuthSettings) -> frozenset[str]:
    """Claims matched per space-separated word, exactly as the mesh configures Istio."""
    extra = {settings.scopes_claim} if settings.scopes_claim in ("scope", "scp") else set()
    return ISTIO_SPACE_DELIMITED | extra


def claim_values(claims: Mapping[str, Any], name: str, space_delimited: bool) -> set[str]:
    """Istio's view of a claim: a string (split on spaces if space-delimited) or the strings of a list."""
    value = claims.get(name)
    if isinstance(value, str):
        return set(value.split()) if space_delimited else {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


class TokenVerifier:
    def __init__(self, settings: JwtAuthSettings, *, jwks: Optional[JwksCache] = None):
        bad = [a for a in settings.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:  # the settings type already forbids these; a hand-built model must not slip through
            raise AuthConfigError(f"algorithms: {bad} are not asymmetric; allowed: {list(ASYMMETRIC_ALGORITHMS)}")
        self.settings = settings
        self.issuer = settings.issuer
        self.audiences = list(settings.audiences)
        self.algorithms = frozenset(settings.algorithms)
        self.leeway = settings.leeway_seconds
        self.required = sorted(set(settings.required_claims) | set(ALWAYS_REQUIRED))
        self.space_delimited = space_delimited_claims(settings)
        self.jwks = jwks or JwksCache(str(settings.jwks_uri))
        self._jwt = jwt.PyJWT({"require": self.required, "enforce_minimum_key_length": True})

    # construction from the ConfigMap -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str, source: str = "auth settings", **kwargs: Any) -> "TokenVerifier":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise AuthConfigError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                                  f"mount the {CONFIGMAP_NAME!r} ConfigMap unchanged") from None
        try:
            settings = JwtAuthSettings.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise AuthConfigError(f"{source}: {problems}; fix secstack:mesh.jwt in the stack and redeploy") from None
        return cls(settings, **kwargs)

    @classmethod
    def from_configmap_dir(cls, path: str | os.PathLike = DEFAULT_CONFIG_DIR, **kwargs: Any) -> "TokenVerifier":
        """Read `auth.json` from a mounted `secstack-auth` ConfigMap volume."""
        file = Path(path) / CONFIG_KEY
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthConfigError(f"{file}: cannot read ({exc.strerror or exc}); mount ConfigMap {CONFIGMAP_NAME!r} "
                                  f"at {Path(path)} or set {ENV_JSON}") from None
        return cls.from_json(text, str(file), **kwargs)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **kwargs: Any) -> "TokenVerifier":
        """`SECSTACK_AUTH_JSON` (the ConfigMap key as an env var), else the directory `SECSTACK_AUTH_DIR`
        (default /etc/secstack/auth)."""
        env = os.environ if environ is None else environ
        if env.get(ENV_JSON):
            return cls.from_json(env[ENV_JSON], f"${ENV_JSON}", **kwargs)
        return cls.from_configmap_dir(env.get(ENV_DIR) or DEFAULT_CONFIG_DIR, **kwargs)

    # verification --------------------------------------------------------------------------------------------

    def authenticate(self, authorization: Optional[str], *, network: bool = True) -> dict[str, Any]:
        """Verify an `Authorization` header value (`Bearer <token>`)."""
        if not authorization:
            raise MissingToken()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
            raise InvalidToken("Authorization header must be 'Bearer <token>'")
        return self.verify(token.strip(), network=network)

    def verify(self, token: str, *, network: bool = True) -> dict[str, Any]:
        """The verified claims, or an AuthError. With network=False, raises NeedsNetwork instead of fetching keys."""
        header = self._header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AlgorithmNotAllowed()
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken()
        keyset = self._keys(lambda: self.jwks.current(network))
        if kid is not None and kid not in keyset.by_kid:
            refreshed = self._keys(lambda: self.jwks.refetch_for_unknown_key(network))
            if refreshed is None or kid not in refreshed.by_kid:
                raise UnknownKey()
            keyset = refreshed
        candidates = keyset.candidates(kid, alg)
        if kid is not None and not candidates:
            raise BadSignature("token algorithm does not match its signing key")
        claims = self._try_keys(token, alg, candidates)
        if claims is not None:
            return claims
        if kid is None:
            # No kid and no held key verifies: the issuer may have rotated keys. One rate-limited refetch.
            refreshed = self._keys(lambda: self.jwks.refetch_for_unknown_key(network))
            fresh = refreshed.candidates(None, alg) if refreshed is not None else []
            claims = self._try_keys(token, alg, fresh)
            if claims is not None:
                return claims
            if not candidates and not fresh:
                raise UnknownKey()
        raise BadSignature()

    def require(self, claims: Mapping[str, Any], *, roles: Iterable[str] = (), scopes: Iterable[str] = ()) -> None:
        """Mirror of the mesh's claim rules: every listed role and every listed scope must be present."""
        roles_claim, scopes_claim = self.settings.roles_claim, self.settings.scopes_claim
        have_roles = claim_values(claims, roles_claim, roles_claim in self.space_delimited)
        have_scopes = claim_values(claims, scopes_claim, scopes_claim in self.space_delimited)
        missing_roles = [r for r in roles if r not in have_roles]
        missing_scopes = [s for s in scopes if s not in have_scopes]
        if missing_roles or missing_scopes:
            raise Forbidden(missing_roles, missing_scopes)

    def _try_keys(self, token: str, alg: str, keys: list[jwt.PyJWK]) -> Optional[dict[str, Any]]:
        for key in keys:
            try:
                return self._jwt.decode(token, key=key, algorithms=[alg], audience=self.audiences, issuer=self.issuer, leeway=self.leeway)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise _mapped(exc) from None
        return None

    @staticmethod
    def _keys(get: Callable[[], Optional[KeySet]]) -> Optional[KeySet]:
        try:
            return get()
        except JwksError as exc:
            raise JwksUnavailable(str(exc)) from None

    @staticmethod
    def _header(token: Any) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise InvalidToken()
        segment = token.split(".", 1)[0]
        try:
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error):
            raise InvalidToken() from None
        if not isinstance(header, dict):
            raise InvalidToken()
        return header


# --- ASGI and WSGI adapters ---------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')


def _challenge(exc: AuthError, realm: str) -> list[tuple[str, str]]:
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    if exc.status in (401, 403):
        value = f'Bearer realm="{_quoted(realm)}"'
        if exc.error:
            value += f', error="{exc.error}", error_description="{_quoted(exc.description)}"'
        headers.append(("www-authenticate", value))
    return headers


def _body(exc: AuthError) -> bytes:
    if exc.status == 503:  # the detailed reason (JWKS URI, cause) is for the service's logs, not the caller
        return json.dumps({"error": "temporarily_unavailable", "error_description": JwksUnavailable.message}).encode()
    return json.dumps({"error": exc.error or "unauthorized", "error_description": exc.description}).encode()


class AsgiAuth:
    """ASGI middleware: verifies `Authorization: Bearer`, puts the claims in `scope["secstack.claims"]`."""

    def __init__(self, app: Any, verifier: TokenVerifier, *, roles: Iterable[str] = (), scopes: Iterable[str] = (),
                 exempt_paths: Iterable[str] = (), realm: str = "api"):
        self.app, self.verifier, self.realm = app, verifier, realm
        self.roles, self.scopes, self.exempt = list(roles), list(scopes), frozenset(exempt_paths)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.exempt:
            return await self.app(scope, receive, send)
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        try:
            if len(values) > 1:
                raise InvalidToken("more than one Authorization header")
            header = values[0].decode("latin-1") if values else None
            try:
                claims = self.verifier.authenticate(header, network=False)
            except NeedsNetwork:  # a key fetch would block the event loop: do it in a worker thread
                claims = await asyncio.to_thread(self.verifier.authenticate, header)
            self.verifier.require(claims, roles=self.roles, scopes=self.scopes)
        except AuthError as exc:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": [(k.encode(), v.encode()) for k, v in _challenge(exc, self.realm)]})
            return await send({"type": "http.response.body", "body": _body(exc)})
        await self.app({**scope, CLAIMS_KEY: claims}, receive, send)


class WsgiAuth:
    """WSGI middleware: verifies `Authorization: Bearer`, puts the claims in `environ["secstack.claims"]`."""

    def __init__(self, app: Any, verifier: TokenVerifier, *, roles: Iterable[str] = (), scopes: Iterable[str] = (),
                 exempt_paths: Iterable[str] = (), realm: str = "api"):
        self.app, self.verifier, self.realm = app, verifier, realm
        self.roles, self.scopes, self.exempt = list(roles), list(scopes), frozenset(exempt_paths)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self.exempt:
            return self.app(environ, start_response)
        try:
            claims = self.verifier.authenticate(environ.get("HTTP_AUTHORIZATION"))
            self.verifier.require(claims, roles=self.roles, scopes=self.scopes)
        except AuthError as exc:
            reason = {401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}.get(exc.status, "Error")
            start_response(f"{exc.status} {reason}", _challenge(exc, self.realm))
            return [_body(exc)]
        environ[CLAIMS_KEY] = claims
        return self.app(environ, start_response)
