"""Benchmark: Environment create -> children + observed status, against the test emulator.

Prints one JSON object:

* ``create_to_ready_s``: median over ``--runs`` Environments of the time from the API create
  until every child exists (rendered-environment ConfigMap, the four Deployments, the gateway
  Service) and ``status.observedGeneration`` equals ``metadata.generation``. The operator runs
  unmodified (kopf in its own thread) against the project's kopf-compatible Kubernetes
  emulator (``tests/k8semu.py``) on 127.0.0.1, with a real nats-server for the streams.
  Target: under a second.
* ``api_roundtrip_ms``: the ceiling measured in the same run: median of one ConfigMap
  create + get through the same emulator and client (a pass makes ~20 such calls).
* ``ratio`` = create_to_ready_s / api_roundtrip_s: how many API round trips one pass costs.

    .venv/bin/python bench/operator_ready.py [--runs 7]

(Named ``operator_ready.py``, not ``operator.py``: a script's folder goes first on
``sys.path``, and a file called ``operator.py`` there would shadow the standard library.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Only event-driven reconciliation is measured: the timer must not help.
os.environ.setdefault("SSMD_OPERATOR_INTERVAL", "300")
# kalshi.yaml archives to AWS S3: nothing outside 127.0.0.1 is contacted.
os.environ["SSMD_OPERATOR_ARCHIVE_INVENTORY"] = "0"


async def main(runs: int) -> dict[str, Any]:
    import kmock
    import kopf
    import yaml
    from kopf.testing import KopfRunner
    from kubernetes_asyncio.config import kube_config
    from tests import k8semu

    import ssmd_operator.handlers  # noqa: F401  (registers the handlers)
    from ssmd.transport.server import EmbeddedNats
    from ssmd_operator.kube import Kube

    registry = kopf.get_default_registry()
    envs = kmock.resource("ssmd.io/v1alpha1/ssmdenvironments")
    deployments = kmock.resource("apps/v1/deployments")
    configmaps = kmock.resource("v1/configmaps")
    services = kmock.resource("v1/services")

    def alive(k8s: Any, res: Any, name: str) -> dict[str, Any] | None:
        key = (res, "default", name)
        return (
            dict(k8s.objects[key].raw)
            if key in k8s.objects and not k8s.objects[key].deleted
            else None
        )

    def ready(k8s: Any, name: str) -> bool:
        env = alive(k8s, envs, name)
        if (
            not env
            or (env.get("status") or {}).get("observedGeneration") != env["metadata"]["generation"]
        ):
            return False
        children = [alive(k8s, deployments, f"{name}-{c}")
                    for c in ("connector", "archiver", "gateway", "secmaster")]  # fmt: skip
        children += [
            alive(k8s, configmaps, f"{name}-environment"),
            alive(k8s, services, f"{name}-gateway"),
        ]
        return all(children)

    with tempfile.TemporaryDirectory() as tmp:
        async with (
            EmbeddedNats(Path(tmp) / "nats") as nats_server,
            k8semu.Emulator() as k8s,
            kmock.Server(k8s) as server,
        ):
            k8semu.prepare(k8s, crd_paths=[str(ROOT / "crds" / "ssmd.io_crds.yaml")])
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(k8semu.kubeconfig_text(server.url))
            os.environ["KUBECONFIG"] = str(kubeconfig)
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)

            runner = KopfRunner(["run", "--standalone", "--namespace=default"],
                                registry=registry, settings=kopf.OperatorSettings(), timeout=60)  # fmt: skip
            runner.__enter__()
            try:
                deadline = time.monotonic() + 30
                while not any(r.resource == envs for r in k8s[kmock.action.WATCH]):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the operator did not start watching")
                    await asyncio.sleep(0.01)

                doc = yaml.safe_load((ROOT / "environments" / "kalshi.yaml").read_text())
                doc["spec"]["transport"]["url"] = nats_server.url
                doc["spec"]["transport"]["stream"]["replicas"] = 1
                samples, roundtrips = [], []
                async with await Kube.connect() as kube:
                    for i in range(runs):
                        t0 = time.perf_counter()
                        cm = {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": f"probe-{i}", "namespace": "default"}}  # fmt: skip
                        await kube.create(cm)
                        await kube.get("ConfigMap", "default", f"probe-{i}")
                        roundtrips.append(time.perf_counter() - t0)

                        name = f"bench-{i}"
                        body = {**doc, "metadata": {"name": name, "namespace": "default"}}
                        t0 = time.perf_counter()
                        await kube.create(body)
                        deadline = time.monotonic() + 30
                        while not ready(k8s, name):
                            if time.monotonic() > deadline:
                                raise RuntimeError(f"{name} not ready within 30s")
                            await asyncio.sleep(0.002)
                        samples.append(time.perf_counter() - t0)
            finally:
                await asyncio.to_thread(runner.__exit__, None, None, None)

    median = statistics.median(samples)
    api = statistics.median(roundtrips)
    return {
        "create_to_ready_s": round(median, 3),
        "create_to_ready_samples_s": [round(s, 3) for s in samples],
        "api_roundtrip_ms": round(api * 1000, 2),
        "ratio": round(median / api, 1),
        "runs": runs,
        "target_s": 1.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs))))
