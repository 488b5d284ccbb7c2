"""TokenVerifier.verify with a warm JWKS cache vs PyJWT's bare `jwt.decode` on the same token, in the same run.

The JWKS is served over HTTP from 127.0.0.1 and fetched once (warm-up); after that both sides are pure CPU. Bare
`jwt.decode` is given the already-loaded public key, the algorithm, audience and issuer — the least a correct
caller passes — so the ratio is the cost of what TokenVerifier adds (header pre-check, key lookup, the extra
required-claim and key-length checks). Target: ratio >= 0.8 for each algorithm.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from secstack.auth import TokenVerifier  # noqa: E402
from stacks.settings.mesh import JwtAuthSettings  # noqa: E402

ISSUER = "https://auth.bench.example.com/"
AUDIENCE = "shop-api"
KEYS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": lambda: ed25519.Ed25519PrivateKey.generate(),
}


def serve(document: dict) -> ThreadingHTTPServer:
    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def bench(alg: str, n: int, rounds: int) -> tuple[float, float]:
    private = KEYS[alg]()
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private.public_key()))
    jwk.update(kid=f"bench-{alg}", use="sig", alg=alg)
    server = serve({"keys": [jwk]})
    try:
        settings = JwtAuthSettings(issuer=ISSUER, jwks_uri=f"http://127.0.0.1:{server.server_port}/jwks", audiences=[AUDIENCE], algorithms=[alg])
        verifier = TokenVerifier(settings)
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600, "scope": "orders:read"}
        token = jwt.encode(claims, private, algorithm=alg, headers={"kid": jwk["kid"]})
        public = private.public_key()
        assert verifier.verify(token) == jwt.decode(token, public, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
        ours, bare = [], []
        for _ in range(rounds):  # interleaved, so drift in machine load hits both sides alike
            bare.append(rate(lambda: jwt.decode(token, public, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER), n))
            ours.append(rate(lambda: verifier.verify(token), n))
        assert verifier.jwks.fetches == 1, "the measured loop must not touch the network"
        return statistics.median(ours), statistics.median(bare)
    finally:
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="verifications per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{'alg':6} {'TokenVerifier/s':>16} {'jwt.decode/s':>14} {'ratio':>7}")
    worst = float("inf")
    for alg in KEYS:
        ours, bare = bench(alg, args.n, args.rounds)
        worst = min(worst, ours / bare)
        print(f"{alg:6} {ours:16,.0f} {bare:14,.0f} {ours / bare:7.2f}")
    print(f"worst ratio {worst:.2f} (target >= 0.80): {'ok' if worst >= 0.8 else 'BELOW TARGET'}")
    return 0 if worst >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
