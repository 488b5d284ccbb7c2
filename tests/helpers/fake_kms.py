"""A local stand-in for the three KMS actions secstack calls (GenerateDataKey, Decrypt, GetSecretValue), served on
127.0.0.1 so the real Alibaba Cloud SDK runs end to end. Data keys are really encrypted (AES-GCM under a per-key
master secret held only by the server), so a swapped or tampered blob fails as it would at KMS.

Special key/secret names produce KMS errors: `alias/denied` (403 Forbidden.RAM), `alias/throttled`
(429 Rejected.Throttling), `alias/disabled` (400 Rejected.Disabled); secrets `denied`, `throttled`, `missing`."""
from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ACCESS_KEY_ID = "LTAI-fake-test-id"
ACCESS_KEY_SECRET = "fake-test-secret"
ERRORS = {
    "denied": (403, "Forbidden.RAM", "User not authorized to operate on the specified resource."),
    "throttled": (429, "Rejected.Throttling", "QPS Limit Exceeded"),
    "disabled": (400, "Rejected.Disabled", "The key is disabled."),
    "missing": (404, "Forbidden.ResourceNotFound", "The resource does not exist."),
}


class FakeKms:
    def __init__(self) -> None:
        self.masters: dict[str, bytes] = {}  # key id -> master secret
        self.aliases: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.issued_data_keys: list[bytes] = []
        self.calls: list[tuple[str, dict]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def add_key(self, alias: str) -> str:
        key_id = str(uuid.uuid4())
        self.masters[key_id] = os.urandom(32)
        self.aliases[alias] = key_id
        return key_id

    def __enter__(self) -> "FakeKms":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _resolve(self, key: str) -> str | None:
        return self.aliases.get(key) or (key if key in self.masters else None)

    def handle(self, action: str, params: dict) -> tuple[int, dict]:
        self.calls.append((action, params))
        target = params.get("KeyId") or params.get("SecretName") or ""
        name = target.removeprefix("alias/")
        if name in ERRORS:
            status, code, message = ERRORS[name]
            return status, {"Code": code, "Message": message}
        context = params.get("EncryptionContext")
        if action == "GenerateDataKey":
            key_id = self._resolve(target)
            if key_id is None:
                return 404, {"Code": "Forbidden.KeyNotFound", "Message": f"The specified Key {target} is not found."}
            data_key = os.urandom(32)
            self.issued_data_keys.append(data_key)
            nonce = os.urandom(12)
            sealed = AESGCM(self.masters[key_id]).encrypt(nonce, data_key, (context or "").encode())
            blob = base64.b64encode(key_id.encode() + b"|" + nonce + sealed).decode()
            return 200, {"KeyId": key_id, "KeyVersionId": "v1", "Plaintext": base64.b64encode(data_key).decode(), "CiphertextBlob": blob}
        if action == "Decrypt":
            try:
                raw = base64.b64decode(params["CiphertextBlob"])
                key_id, rest = raw.split(b"|", 1)
                key_id = key_id.decode()
                plain = AESGCM(self.masters[key_id]).decrypt(rest[:12], rest[12:], (context or "").encode())
            except Exception:
                return 400, {"Code": "InvalidCiphertext", "Message": "The specified ciphertext is invalid."}
            return 200, {"KeyId": key_id, "KeyVersionId": "v1", "Plaintext": base64.b64encode(plain).decode()}
        if action == "GetSecretValue":
            if target not in self.secrets:
                return 404, {"Code": "Forbidden.ResourceNotFound", "Message": f"The secret {target} does not exist."}
            return 200, {"SecretName": target, "SecretData": self.secrets[target], "SecretDataType": "text", "VersionId": "v1", "VersionStages": {"VersionStage": ["ACSCurrent"]}}
        return 400, {"Code": "InvalidApiName", "Message": f"unknown action {action}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                params = {k: v[0] for k, v in {**parse_qs(urlparse(self.path).query), **parse_qs(body)}.items()}
                auth = self.headers.get("Authorization") or ""
                if f"Credential={ACCESS_KEY_ID}," not in auth:
                    status, payload = 400, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
                else:
                    status, payload = fake.handle(self.headers.get("x-acs-action", ""), params)
                payload = {"RequestId": str(uuid.uuid4()), **payload}
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        return Handler


def sdk_environment(fake: FakeKms, home: str) -> dict[str, str]:
    """Environment for the SDK's default credential chain pointing at the fake (nothing from the repo)."""
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "ALIBABA_CLOUD_REGION_ID": "cn-hangzhou",
        "SECSTACK_KMS_ENDPOINT": fake.endpoint,
        "SECSTACK_KMS_PROTOCOL": "http",
        "HOME": home,  # no ~/.alibabacloud/credentials of the developer
    }
