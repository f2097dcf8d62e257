"""Run the operator: ``ssmd operator`` (or ``python -m ssmd_operator.main``)."""

from __future__ import annotations

import kopf


def run(
    namespaces: list[str] | None = None,
    *,
    standalone: bool = True,
    peering: str | None = None,
    liveness: str | None = "http://0.0.0.0:8080/healthz",
) -> None:
    import ssmd_operator.handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces or [],
        standalone=standalone and peering is None,
        peering_name=peering,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":  # pragma: no cover
    run()
