// The checkout team from TypeScript: the same Team and Secrets components as examples/app-team-python, through the
// SDK that `pulumi package add ../../components` generates from components/schema.json.
import * as pulumi from "@pulumi/pulumi";
import * as secstack from "@pulumi/secstack";

const config = new pulumi.Config();
const environment = config.get("environment") ?? "dev";

const team = new secstack.Team("checkout", {
    name: "checkout",
    owner: "checkout-lead@shop.example.com",
    namespaces: ["checkout"],
    podSecurity: "restricted",
    serviceAccounts: [{ name: "checkout-api", namespace: "checkout" }],
    viewerGroups: ["checkout-devs"],
    deployerGroups: ["checkout-ci"],
    quota: { requestsCpu: "2", requestsMemory: "4Gi", limitsCpu: "4", limitsMemory: "8Gi", pods: 20 },
    ingressFromNamespaces: ["istio-ingress"],
});

const secrets = new secstack.Secrets("checkout-secrets", {
    environment: environment,
    region: config.get("region") ?? "cn-hangzhou",
    protect: environment === "prod",
    recoveryWindowInDays: environment === "prod" ? 30 : 7,
    pollingIntervalSeconds: 120,
    secretsKeyId: config.require("secretsKeyId"),
    secretsKeyArn: config.require("secretsKeyArn"),
    oidcIssuerUrl: config.require("oidcIssuerUrl"),
    oidcProviderArn: config.require("oidcProviderArn"),
    controllerRoleName: `checkout-${environment}-secret-manager`,
    entries: [{
        name: "payment-provider-token",
        secretName: `checkout/${environment}/payment-provider-token`,
        data: config.requireSecret("providerToken"),
        type: "Generic",
        description: "token of the payment provider",
        versionId: "v1",
        consumers: [["checkout", "checkout-api"]],
        secretKey: "token",
    }],
    tags: { team: "checkout", environment: environment },
}, { dependsOn: [team] });

export const namespaces = team.namespaces;
export const secretArns = secrets.secretArns;
