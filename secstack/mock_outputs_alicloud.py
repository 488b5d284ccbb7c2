"""Outputs Alibaba Cloud computes that the program reads back (ARNs, the managed cluster's RRSA issuer), for the
offline preview. KMS ARNs carry the placeholder region `preview` and account 0000000000000000: the real values come
from the provider at `pulumi up`; role ARNs use the account of the OIDC provider their trust policy names."""
from __future__ import annotations

import json

from secstack.capture import computed

PREVIEW_REGION = "preview"
PREVIEW_ACCOUNT = "0000000000000000"


@computed("alicloud:kms/key:Key")
def _key(name: str, inputs: dict) -> dict:
    return {"arn": f"acs:kms:{PREVIEW_REGION}:{PREVIEW_ACCOUNT}:key/{name}-id"}


@computed("alicloud:kms/secret:Secret")
def _secret(name: str, inputs: dict) -> dict:
    return {"arn": f"acs:kms:{PREVIEW_REGION}:{PREVIEW_ACCOUNT}:secret/{inputs.get('secretName', name)}"}


@computed("alicloud:ram/role:Role")
def _role(name: str, inputs: dict) -> dict:
    account = PREVIEW_ACCOUNT
    try:
        federated = json.loads(inputs["assumeRolePolicyDocument"])["Statement"][0]["Principal"]["Federated"][0]
        account = federated.split(":")[3] or PREVIEW_ACCOUNT
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return {"arn": f"acs:ram::{account}:role/{str(inputs.get('roleName', name)).lower()}"}


@computed("alicloud:cs/managedKubernetes:ManagedKubernetes")
def _cluster(name: str, inputs: dict) -> dict:
    cluster_id = f"c{name}preview"
    return {
        "rrsaMetadata": {
            "enabled": bool(inputs.get("enableRrsa")),
            "ramOidcProviderName": f"ack-rrsa-{cluster_id}",
            "ramOidcProviderArn": f"acs:ram::{PREVIEW_ACCOUNT}:oidc-provider/ack-rrsa-{cluster_id}",
            "rrsaOidcIssuerUrl": f"https://oidc-ack-{PREVIEW_REGION}.oss-{PREVIEW_REGION}.aliyuncs.com/{cluster_id}",
        }
    }
