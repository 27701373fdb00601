# dbsync daemon image: `dbsync serve` on :9108 (/metrics, /healthz, /readyz, /report), state in /var/lib/dbsync.
#   docker build -t dbsync:0.1.0 .
# Linted by tests/test_deploy.py (hadolint); there is no Docker engine in CI, so it is not built there.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# A self-contained virtualenv that the runtime stage copies whole (same base image, same interpreter path).
RUN python -m venv /opt/dbsync
COPY pyproject.toml README.md ./
COPY dbsync ./dbsync
RUN /opt/dbsync/bin/pip install --no-cache-dir . \
    && /opt/dbsync/bin/dbsync --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dbsync" \
      org.opencontainers.image.description="Continuous replication of a Databricks workspace into a disaster-recovery standby" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# uid/gid 10001: above the host range, so a container escape does not land on a real host user.
RUN groupadd --system --gid 10001 dbsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dbsync --no-create-home \
       --shell /usr/sbin/nologin dbsync \
    && mkdir -p /var/lib/dbsync \
    && chown 10001:10001 /var/lib/dbsync
COPY --from=build /opt/dbsync /opt/dbsync
# Bytecode was compiled at install time: nothing is written outside the state volume and /tmp,
# so the container runs with a read-only root filesystem. The server binds all interfaces in a container
# (an environment variable wins over the config file); without DBSYNC_SERVER__AUTH_TOKEN it then keeps
# /report and /report.html off (they list both workspaces): pass a token to serve them. The default state_path, dbsync.db, is relative to
# the working directory: /var/lib/dbsync/dbsync.db, on the volume.
ENV PATH=/opt/dbsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/dbsync \
    DBSYNC_SERVER__HOST=0.0.0.0
VOLUME ["/var/lib/dbsync"]
WORKDIR /var/lib/dbsync
USER 10001:10001
EXPOSE 9108
# The slim image has no curl: probe /healthz (never behind the auth token) with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DBSYNC_SERVER__PORT', '9108'), timeout=4)"]
ENTRYPOINT ["dbsync"]
CMD ["serve"]
