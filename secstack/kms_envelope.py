"""Envelope encryption of files with Alibaba Cloud KMS, and reading secrets from Secrets Manager.

KMS GenerateDataKey returns a fresh 256-bit data key twice: in plaintext and encrypted under the master key. The
file is encrypted locally with AES-256-GCM under the plaintext key, which then only lives in memory; the envelope
stores the encrypted data key beside the ciphertext. Decryption asks KMS Decrypt for the data key back. The envelope
header (format, key, encrypted data key, context) is the GCM associated data, so any change to it or to the
ciphertext fails authentication.

Credentials come from the SDK's default chain (ALIBABA_CLOUD_* environment variables, the RRSA token of a pod, the
ECS instance role, ~/.alibabacloud/credentials) and never from this repository. `SECSTACK_KMS_ENDPOINT` (or
`endpoint=`) overrides the KMS endpoint, e.g. `kms-vpc.cn-hangzhou.aliyuncs.com` or a test server.
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "secstack-kms-envelope/v1"
CONTEXT = {"secstack": "config-file"}  # KMS EncryptionContext: binds the data key to this use
ENDPOINT_ENV = "SECSTACK_KMS_ENDPOINT"
PROTOCOL_ENV = "SECSTACK_KMS_PROTOCOL"  # https (default); http only for a local test endpoint

# KMS error codes -> what the operator should do about them.
_HINTS = {
    "Forbidden.RAM": "the caller's RAM policy does not allow this action on the key/secret",
    "Forbidden.NoPermission": "the caller's RAM policy does not allow this action on the key/secret",
    "Forbidden.KeyNotFound": "no such key (check the alias and the region)",
    "Forbidden.AliasNotFound": "no such alias (check the alias and the region)",
    "Forbidden.ResourceNotFound": "no such secret (check the name and the region)",
    "Rejected.Disabled": "the key is disabled; enable it or use another key",
    "Rejected.KeyDisabled": "the key is disabled; enable it or use another key",
    "Rejected.PendingDeletion": "the key is scheduled for deletion; cancel the deletion to use it",
    "Rejected.Throttling": "KMS throttled the request; retry with backoff",
    "Throttling": "KMS throttled the request; retry with backoff",
    "InvalidAccessKeyId.NotFound": "the AccessKey in the credential chain does not exist",
    "SignatureDoesNotMatch": "the AccessKey secret in the credential chain is wrong",
}


class EnvelopeError(Exception):
    """A clear, single-line reason an encryption, decryption or secret read failed."""


@dataclass(frozen=True)
class Endpoint:
    region: str
    endpoint: Optional[str] = None
    protocol: str = "https"


def endpoint_from_env(region: str, endpoint: Optional[str] = None) -> Endpoint:
    return Endpoint(
        region=region,
        endpoint=endpoint or os.environ.get(ENDPOINT_ENV) or None,
        protocol=os.environ.get(PROTOCOL_ENV, "https").lower(),
    )


def client(where: Endpoint):
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi import utils_models

    if where.protocol not in ("https", "http"):
        raise EnvelopeError(f"{PROTOCOL_ENV}: must be https or http, not {where.protocol!r}")
    try:
        config = utils_models.Config(
            credential=CredentialClient(), region_id=where.region, endpoint=where.endpoint, protocol=where.protocol
        )
        return Client(config)
    except Exception as exc:  # the SDK raises plain exceptions for a missing credential chain
        raise EnvelopeError(f"cannot build a KMS client: {_one_line(exc)} (set credentials, see docs/data-security.md)") from None


def _call(what: str, fn, *args) -> Any:
    from Tea.exceptions import TeaException

    try:
        return fn(*args).body
    except TeaException as exc:
        code = getattr(exc, "code", None) or "Unknown"
        data = getattr(exc, "data", None) or {}
        message = data.get("Message") if isinstance(data, dict) else None
        hint = _HINTS.get(code) or ("access denied" if code.startswith("Forbidden.") else "")
        request_id = getattr(exc, "request_id", None)
        raise EnvelopeError(
            f"KMS {what} failed: {code}: {message or _one_line(exc)}"
            + (f" ({hint})" if hint else "")
            + (f" [request {request_id}]" if request_id else "")
        ) from None
    except Exception as exc:
        raise EnvelopeError(f"KMS {what} failed: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _header(key: str, key_id: str, encrypted_key: str) -> dict[str, Any]:
    return {"format": FORMAT, "key": key, "keyId": key_id, "encryptedDataKey": encrypted_key, "context": CONTEXT}


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def encrypt(plaintext: bytes, key: str, kms) -> dict[str, Any]:
    """The envelope (a JSON-able dict) of `plaintext` under the KMS key `key` (alias/... or a key id)."""
    from alibabacloud_kms20160120 import models

    body = _call("GenerateDataKey", kms.generate_data_key,
                 models.GenerateDataKeyRequest(key_id=key, key_spec="AES_256", encryption_context=dict(CONTEXT)))
    data_key = bytearray(base64.b64decode(body.plaintext))
    try:
        if len(data_key) != 32:
            raise EnvelopeError(f"KMS GenerateDataKey returned a {len(data_key)}-byte key, expected 32")
        header = _header(key, body.key_id or key, body.ciphertext_blob)
        nonce = os.urandom(12)
        ciphertext = AESGCM(bytes(data_key)).encrypt(nonce, plaintext, _aad(header))
    finally:
        data_key[:] = bytes(len(data_key))  # best effort: drop the plaintext key from memory
    return {**header, "nonce": base64.b64encode(nonce).decode(), "ciphertext": base64.b64encode(ciphertext).decode()}


def decrypt(envelope: Any, kms, expected_key: Optional[str] = None) -> bytes:
    from alibabacloud_kms20160120 import models

    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise EnvelopeError(f"not a {FORMAT} envelope")
    try:
        header = _header(envelope["key"], envelope["keyId"], envelope["encryptedDataKey"])
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"malformed envelope: {_one_line(exc)}") from None
    if envelope.get("context") != CONTEXT:
        raise EnvelopeError("envelope was tampered with: its encryption context changed")
    if expected_key and expected_key not in (envelope["key"], envelope["keyId"]):
        raise EnvelopeError(f"wrong key: the file was encrypted with {envelope['key']}, not {expected_key}")
    body = _call("Decrypt", kms.decrypt,
                 models.DecryptRequest(ciphertext_blob=envelope["encryptedDataKey"], encryption_context=dict(CONTEXT)))
    if body.key_id and body.key_id != envelope["keyId"]:
        raise EnvelopeError(f"wrong key: the data key belongs to {body.key_id}, the envelope names {envelope['keyId']}")
    data_key = bytearray(base64.b64decode(body.plaintext))
    try:
        return AESGCM(bytes(data_key)).decrypt(nonce, ciphertext, _aad(header))
    except (InvalidTag, ValueError):
        raise EnvelopeError("authentication failed: the ciphertext or its header was tampered with, or the data key is not this file's") from None
    finally:
        data_key[:] = bytes(len(data_key))


def get_secret_value(name: str, kms) -> str:
    from alibabacloud_kms20160120 import models

    body = _call("GetSecretValue", kms.get_secret_value, models.GetSecretValueRequest(secret_name=name))
    if body.secret_data_type and body.secret_data_type != "text":
        raise EnvelopeError(f"secret {name!r} holds {body.secret_data_type} data; a passphrase must be text")
    return body.secret_data or ""
