"""`secstack config encrypt|decrypt FILE --key alias/...` (KMS envelope encryption) and `secstack passphrase
<stack>` (the stack's Pulumi passphrase from Secrets Manager, for PULUMI_CONFIG_PASSPHRASE[_FILE])."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from secstack.cli import OK, command, fail

REGION_ENV = "ALIBABA_CLOUD_REGION_ID"
SUFFIX = ".kms.json"


def _kms_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--region", default=None, help=f"KMS region (default ${REGION_ENV})")
    p.add_argument("--endpoint", default=None, help="KMS endpoint override (default $SECSTACK_KMS_ENDPOINT or the regional one)")


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    enc = sub.add_parser("encrypt", help=f"encrypt FILE into FILE{SUFFIX} (KMS GenerateDataKey + AES-256-GCM)")
    enc.add_argument("file", type=Path)
    enc.add_argument("--key", required=True, help="KMS key: alias/secstack/<env>/config or a key id")
    enc.add_argument("--out", type=Path, default=None, help=f"envelope path (default FILE{SUFFIX})")
    dec = sub.add_parser("decrypt", help="decrypt an envelope to --out (mode 0600) or stdout")
    dec.add_argument("file", type=Path)
    dec.add_argument("--key", required=True, help="the KMS key the file must have been encrypted with")
    dec.add_argument("--out", type=Path, default=None, help="plaintext path (default stdout)")
    for q in (enc, dec):
        _kms_flags(q)


def _kms(args: argparse.Namespace, region: str | None):
    from secstack import kms_envelope

    region = args.region or region or os.environ.get(REGION_ENV)
    if not region:
        raise kms_envelope.EnvelopeError(f"--region: required (or set {REGION_ENV}), e.g. cn-hangzhou")
    return kms_envelope.client(kms_envelope.endpoint_from_env(region, args.endpoint))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@command("config", "encrypt or decrypt a file with a KMS key (envelope encryption)", _configure)
def cmd_config(args: argparse.Namespace) -> int:
    from secstack import kms_envelope

    try:
        if args.action == "encrypt":
            try:
                plaintext = args.file.read_bytes()
            except OSError as exc:
                return fail(f"{args.file}: cannot read: {exc.strerror}")
            envelope = kms_envelope.encrypt(plaintext, args.key, _kms(args, None))
            out = args.out or args.file.with_name(args.file.name + SUFFIX)
            _write_private(out, (json.dumps(envelope, indent=1, sort_keys=True) + "\n").encode())
            print(f"wrote {out} (key {args.key}); keep or delete the plaintext {args.file} yourself", file=sys.stderr)
            return OK
        try:
            envelope = json.loads(args.file.read_text())
        except OSError as exc:
            return fail(f"{args.file}: cannot read: {exc.strerror}")
        except ValueError:
            return fail(f"{args.file}: not a JSON envelope (made by `secstack config encrypt`)")
        plaintext = kms_envelope.decrypt(envelope, _kms(args, None), expected_key=args.key)
    except kms_envelope.EnvelopeError as exc:
        return fail(f"{args.file}: {exc}")
    if args.out:
        _write_private(args.out, plaintext)
    else:
        sys.stdout.buffer.write(plaintext)
        sys.stdout.flush()
    return OK


def _passphrase_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--stacks-dir", type=Path, default=None, help="directory of the stack files (default stacks/)")
    _kms_flags(p)


def passphrase_secret_name(settings) -> str:
    return settings.secrets.passphrase_secret_name or f"secstack/{settings.environment}/pulumi-passphrase"


@command("passphrase", "print the stack's Pulumi passphrase from Secrets Manager (no trailing newline)", _passphrase_args)
def cmd_passphrase(args: argparse.Namespace) -> int:
    from secstack import kms_envelope
    from secstack.preview import load_stack
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    try:
        settings, _ = load_stack(args.stack, args.stacks_dir)
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return fail(f"stack {args.stack!r} has invalid config: " + "; ".join(exc.problems))
    name = passphrase_secret_name(settings)
    try:
        value = kms_envelope.get_secret_value(name, _kms(args, settings.cluster.region))
    except kms_envelope.EnvelopeError as exc:
        return fail(f"secret {name!r} (secstack:secrets.passphraseSecretName): {exc}")
    if not value:
        return fail(f"secret {name!r} (secstack:secrets.passphraseSecretName) is empty")
    sys.stdout.write(value)
    sys.stdout.flush()
    return OK
