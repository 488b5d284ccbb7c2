"""secstack's own Falco rules for the application threats, generated from settings.

The file is self-contained (every macro and list it uses is defined here with a `secstack_` prefix), so it loads
the same whether or not the upstream ruleset is installed and never silently changes meaning when an upstream
macro is tuned. Syntax follows https://falco.org/docs/reference/rules/ (rule/desc/condition/output/priority/tags).
"""
from __future__ import annotations

from typing import Any, Sequence

import yaml

RULES_FILE = "secstack-rules.yaml"

SHELL = "secstack - Shell in container"
WRITE_SYSTEM_DIRS = "secstack - Write below etc or binary dir"
SECRET_READ = "secstack - Secret read by unexpected process"
OUTBOUND = "secstack - Outbound connection to non-allowed destination"
PACKAGE_MANAGER = "secstack - Package manager at runtime"
RULE_NAMES = (SHELL, WRITE_SYSTEM_DIRS, SECRET_READ, OUTBOUND, PACKAGE_MANAGER)

SHELLS = ["ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash", "fish", "busybox"]
BINARY_DIRS = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/lib", "/lib64", "/usr/lib", "/usr/lib64"]
# Process names as the kernel reports them (truncated to 15 characters).
PACKAGE_MANAGERS = [
    "apt", "apt-get", "aptitude", "dpkg", "yum", "dnf", "microdnf", "rpm", "apk", "zypper",
    "pip", "pip3", "conda", "gem", "npm", "yarn", "pnpm", "composer",
]

# Fields every alert carries so a responder can find the workload without another lookup.
CONTEXT = (
    "k8s_ns=%k8s.ns.name k8s_pod=%k8s.pod.name container=%container.name image=%container.image.repository "
    "process=%proc.name parent=%proc.pname cmdline=%proc.cmdline user=%user.name user_uid=%user.uid"
)


def _quoted(values: Sequence[str]) -> list[str]:
    """Falco list items that contain '/', '.' or ':' must be quoted strings in the condition language."""
    return [f'"{v}"' for v in values]


def rules(
    trusted_namespaces: Sequence[str],
    allowed_outbound_cidrs: Sequence[str],
    allowed_outbound_hosts: Sequence[str],
    secret_reader_processes: Sequence[str],
    secret_paths: Sequence[str],
) -> list[dict[str, Any]]:
    """The rule file as data: lists, macros, then rules."""
    return [
        {"list": "secstack_trusted_namespaces", "items": list(trusted_namespaces)},
        {"list": "secstack_shell_binaries", "items": SHELLS},
        {"list": "secstack_binary_dirs", "items": BINARY_DIRS},
        {"list": "secstack_package_managers", "items": PACKAGE_MANAGERS},
        {"list": "secstack_secret_paths", "items": list(secret_paths)},
        {"list": "secstack_secret_readers", "items": list(secret_reader_processes)},
        {"list": "secstack_allowed_outbound_networks", "items": _quoted(allowed_outbound_cidrs)},
        {"list": "secstack_allowed_outbound_hosts", "items": list(allowed_outbound_hosts)},
        {"macro": "secstack_spawned_process", "condition": "(evt.type in (execve, execveat) and evt.dir=<)"},
        {
            "macro": "secstack_open_write",
            "condition": "(evt.type in (open, openat, openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)",
        },
        {
            "macro": "secstack_open_read",
            "condition": "(evt.type in (open, openat, openat2) and evt.is_open_read=true and fd.typechar='f' and fd.num>=0)",
        },
        {
            # Application containers: not the host, and not a namespace whose agents legitimately do these things.
            "macro": "secstack_app_container",
            "condition": "(container.id != host and not k8s.ns.name in (secstack_trusted_namespaces))",
        },
        {
            "macro": "secstack_outbound",
            "condition": (
                "(((evt.type = connect and evt.dir=<) or "
                "(evt.type in (sendto, sendmsg) and evt.dir=< and fd.l4proto != tcp and fd.connected=false and fd.name_changed=true)) "
                "and (fd.typechar = 4 or fd.typechar = 6) "
                'and (fd.ip != "0.0.0.0" and fd.net != "127.0.0.0/8" and fd.ip != "::1") '
                "and (evt.rawres >= 0 or evt.res = EINPROGRESS))"
            ),
        },
        {
            # The Istio sidecar keeps its bootstrap config below /etc/istio.
            "macro": "secstack_known_system_dir_writers",
            "condition": "(proc.name = pilot-agent and fd.name startswith /etc/istio/)",
        },
        {
            "rule": SHELL,
            "desc": (
                "A shell started in an application container that is not the container's entrypoint: kubectl exec, "
                "a web shell or an exploit's payload."
            ),
            "condition": (
                "secstack_spawned_process and secstack_app_container and proc.name in (secstack_shell_binaries) "
                "and proc.vpid != 1"
            ),
            "output": f"Shell started in a container (tty=%proc.tty {CONTEXT})",
            "priority": "WARNING",
            "tags": ["secstack", "container", "shell", "mitre_execution", "T1059.004"],
        },
        {
            "rule": WRITE_SYSTEM_DIRS,
            "desc": "A file below /etc or a binary/library directory was opened for writing: drift from the image, persistence or a planted binary.",
            "condition": (
                "secstack_open_write and secstack_app_container "
                "and (fd.name startswith /etc/ or fd.name pmatch (secstack_binary_dirs)) "
                "and not secstack_known_system_dir_writers"
            ),
            "output": f"File below a system directory opened for writing (file=%fd.name {CONTEXT})",
            "priority": "ERROR",
            "tags": ["secstack", "container", "filesystem", "mitre_persistence", "T1543", "T1554"],
        },
        {
            "rule": SECRET_READ,
            "desc": (
                "A service-account token or a mounted secret was read by a process that is not expected to read it "
                "(credential theft after a compromise)."
            ),
            "condition": (
                "secstack_open_read and secstack_app_container and fd.name pmatch (secstack_secret_paths) "
                "and not proc.name in (secstack_secret_readers)"
            ),
            "output": f"Secret or service-account token read by an unexpected process (file=%fd.name {CONTEXT})",
            "priority": "CRITICAL",
            "tags": ["secstack", "container", "filesystem", "mitre_credential_access", "T1552.001", "T1528"],
        },
        {
            "rule": OUTBOUND,
            "desc": "An application container connected to a destination outside the allowed networks and hosts (command and control, exfiltration, or the ECS metadata service).",
            "condition": (
                "secstack_outbound and secstack_app_container "
                "and not fd.snet in (secstack_allowed_outbound_networks) "
                "and not fd.sip.name in (secstack_allowed_outbound_hosts)"
            ),
            "output": f"Outbound connection to a non-allowed destination (connection=%fd.name dest_ip=%fd.sip dest_port=%fd.sport {CONTEXT})",
            "priority": "WARNING",
            "tags": ["secstack", "container", "network", "mitre_command_and_control", "TA0011", "mitre_exfiltration", "T1041"],
        },
        {
            "rule": PACKAGE_MANAGER,
            "desc": "A package manager ran in a running container: images are immutable, so this is tool download after a compromise or drift.",
            "condition": "secstack_spawned_process and secstack_app_container and proc.name in (secstack_package_managers)",
            "output": f"Package manager run in a container {CONTEXT}",
            "priority": "ERROR",
            "tags": ["secstack", "container", "process", "software_mgmt", "mitre_command_and_control", "T1105"],
        },
    ]


def render(**kwargs: Any) -> str:
    return yaml.safe_dump(rules(**kwargs), sort_keys=False, width=1000)
