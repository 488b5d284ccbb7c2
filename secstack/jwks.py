"""A small JWKS cache for `secstack.auth`: cache lifetime, refetch on an unknown key, rate-limited network access.

PyJWT's `PyJWKClient` caches but cannot rate-limit refetches, so a flood of tokens with random `kid`s would turn
every request into a request to the issuer. Here every network attempt (after the first) is at least
`min_refetch_interval` seconds after the previous one, whatever triggered it.
"""
from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import jwt

# Which key a token algorithm may be verified with. A JWKS key outside this table is never used.
KEY_TYPES: dict[str, tuple[str, Optional[str]]] = {
    **{f"{p}{n}": ("RSA", None) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
MAX_KEYS = 20  # a JWKS with more keys is truncated; kid-less tokens are tried against each compatible key


class JwksError(Exception):
    """The key set could not be fetched or used (the message names the URI, never a token)."""


class NeedsNetwork(Exception):
    """Raised instead of fetching when the caller asked not to block (the ASGI adapter retries in a thread)."""


def _loopback(host: Optional[str]) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could move the key fetch to plain HTTP or another host; the URI is exact or nothing.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class KeySet:
    """One fetched JWKS: signing keys by `kid`, and PyJWK objects built lazily per (key, algorithm)."""

    def __init__(self, document: Any):
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksError("not a JWK set (expected an object with a 'keys' list)")
        keys = [k for k in document["keys"] if isinstance(k, dict) and self._usable(k)][:MAX_KEYS]
        if not keys:
            raise JwksError("the JWK set has no usable signing keys (RSA, EC or OKP with use=sig)")
        self.keys = keys
        self.by_kid = {k["kid"]: k for k in keys if isinstance(k.get("kid"), str)}
        self._built: dict[tuple[int, str], Optional[jwt.PyJWK]] = {}

    @staticmethod
    def _usable(key: dict) -> bool:
        # Symmetric ("oct") keys are never accepted from a JWKS: that is the algorithm-confusion door.
        if key.get("kty") not in ("RSA", "EC", "OKP"):
            return False
        if key.get("use", "sig") != "sig":
            return False
        ops = key.get("key_ops")
        return ops is None or (isinstance(ops, list) and "verify" in ops)

    def candidates(self, kid: Optional[str], alg: str) -> list[jwt.PyJWK]:
        """Keys a token with this header may be verified with (empty: none is compatible)."""
        keys = [self.by_kid[kid]] if kid is not None and kid in self.by_kid else ([] if kid is not None else self.keys)
        out = []
        for key in keys:
            built = self._build(key, alg)
            if built is not None:
                out.append(built)
        return out

    def _build(self, key: dict, alg: str) -> Optional[jwt.PyJWK]:
        slot = (id(key), alg)
        if slot not in self._built:
            kty, crv = KEY_TYPES.get(alg, (None, None))
            compatible = key.get("kty") == kty and (crv is None or key.get("crv") == crv) and key.get("alg", alg) == alg
            built = None
            if compatible:
                try:
                    built = jwt.PyJWK(key, alg)
                except jwt.PyJWTError:
                    built = None
            self._built[slot] = built
        return self._built[slot]


class JwksCache:
    def __init__(
        self,
        uri: str,
        *,
        lifetime: float = 300.0,
        min_refetch_interval: float = 30.0,
        stale_if_error: float = 600.0,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        ssl_context: Optional[ssl.SSLContext] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        parts = urlsplit(uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
            raise ValueError(f"JWKS URI {uri!r} must be https:// (plain http only for localhost/127.0.0.1)")
        self.uri = uri
        self.lifetime = lifetime
        self.min_refetch_interval = min_refetch_interval
        self.stale_if_error = stale_if_error
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.clock = clock
        handlers: list[Any] = [_NoRedirect()]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)
        self._lock = threading.Lock()
        self._keyset: Optional[KeySet] = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self.fetches = 0  # network attempts, successful or not

    def current(self, network: bool = True) -> KeySet:
        """The cached key set, refreshed once it is older than `lifetime`."""
        keyset = self._keyset
        if keyset is not None and self.clock() - self._fetched_at < self.lifetime:
            return keyset
        with self._lock:
            now = self.clock()
            if self._keyset is not None and now - self._fetched_at < self.lifetime:
                return self._keyset
            if now - self._attempted_at < self.min_refetch_interval:
                return self._stale_or_raise(now, "the last fetch failed moments ago")
            if not network:
                raise NeedsNetwork()
            try:
                return self._fetch(now)
            except JwksError as exc:
                return self._stale_or_raise(now, exc.args[0])

    def refetch_for_unknown_key(self, network: bool = True) -> Optional[KeySet]:
        """A token names a key we do not hold (rotation?). Refetch unless one happened recently (then None)."""
        with self._lock:
            now = self.clock()
            if now - self._attempted_at < self.min_refetch_interval:
                return None
            if not network:
                raise NeedsNetwork()
            try:
                return self._fetch(now)
            except JwksError as exc:
                raise JwksError(f"JWKS {self.uri} unavailable: {exc.args[0]}") from None

    def _stale_or_raise(self, now: float, reason: str) -> KeySet:
        if self._keyset is not None and now - self._fetched_at < self.lifetime + self.stale_if_error:
            return self._keyset
        raise JwksError(f"JWKS {self.uri} unavailable: {reason}")

    def _fetch(self, now: float) -> KeySet:
        """Raises JwksError with a short reason (the callers add the URI)."""
        self._attempted_at = now
        self.fetches += 1
        request = urllib.request.Request(self.uri, headers={"Accept": "application/json", "User-Agent": "secstack-auth"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                if response.status != 200:
                    raise JwksError(f"HTTP {response.status}")
                body = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise JwksError(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise JwksError(type(reason).__name__ if isinstance(reason, BaseException) else str(reason)) from None
        if len(body) > self.max_bytes:
            raise JwksError(f"response larger than {self.max_bytes} bytes")
        try:
            keyset = KeySet(json.loads(body))
        except ValueError:
            raise JwksError("response is not JSON") from None
        self._keyset, self._fetched_at = keyset, now
        return keyset
