# dbsync daemon image: `dbsync serve` on :9108 (/metrics, /healthz, /readyz, /report), state in /var/lib/dbsync.
#   docker build -t dbsync:0.1.0 .
# Linted by tests/test_deploy.py (hadolint); there is no Docker engine in CI, so it is not built there.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The base image's digest (sha256:<64 hex>) for a reproducible build: look it up where a registry is reachable
# (`docker buildx imagetools inspect python:3.11-slim-bookworm`) and pass --build-arg PYTHON_DIGEST=sha256:...;
# empty, the build follows the moving tag (`${PYTHON_DIGEST:+@}` adds the "@" only when a digest is given).
ARG PYTHON_DIGEST=""

FROM ${PYTHON_IMAGE}${PYTHON_DIGEST:+@}${PYTHON_DIGEST} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only pinned, hash-checked packages from the lock files (requirements/lock.sh makes them) enter the image: the
# build backend in a throwaway venv, dbsync's dependencies in a self-contained venv that the runtime stage copies
# whole (same base image, same interpreter path).
COPY requirements/build.txt requirements/image.txt ./requirements/
RUN python -m venv /opt/build /opt/dbsync \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements/build.txt \
    && /opt/dbsync/bin/pip install --no-cache-dir --require-hashes -r requirements/image.txt
COPY pyproject.toml README.md ./
# The product only: the emulator (dbsync_emulator/, for tests, demos and benchmarks) is not copied, so the wheel built
# here leaves it out; `dbsync demo` and `dbsync emulator` then say in one line that this install has no emulator.
COPY dbsync ./dbsync
# dbsync itself without dependencies (all came from the lock), built offline by the pinned backend; the last check
# fails the build if the emulator got in.
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && /opt/dbsync/bin/pip install --no-cache-dir --no-deps /tmp/dist/dbsync-*.whl \
    && /opt/dbsync/bin/dbsync --version \
    && /opt/dbsync/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('dbsync_emulator') is not None)"

FROM ${PYTHON_IMAGE}${PYTHON_DIGEST:+@}${PYTHON_DIGEST}
# Global ARGs are visible in FROM only: declared again so the labels below get their values.
ARG PYTHON_IMAGE
ARG PYTHON_DIGEST
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dbsync" \
      org.opencontainers.image.description="Continuous replication of a Databricks workspace into a disaster-recovery standby" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}" \
      org.opencontainers.image.base.digest="${PYTHON_DIGEST}"
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
