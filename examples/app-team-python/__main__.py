"""Pulumi program of the checkout team: reads its config and declares app_team.declare()."""
import pulumi

from app_team import declare

config = pulumi.Config()
outputs = declare({
    "environment": config.get("environment") or "dev",
    "region": config.get("region") or "cn-hangzhou",
    "issuer": config.get("issuer") or "https://auth.shop.example.com/",
    "audience": config.get("audience") or "shop-api",
    "secrets_key_id": config.require("secretsKeyId"),
    "secrets_key_arn": config.require("secretsKeyArn"),
    "oidc_issuer_url": config.require("oidcIssuerUrl"),
    "oidc_provider_arn": config.require("oidcProviderArn"),
    # `pulumi config set --secret providerToken ...`: stays a secret all the way to Secrets Manager.
    "provider_token": config.require_secret("providerToken"),
})
for name, value in outputs.items():
    pulumi.export(name, value)
