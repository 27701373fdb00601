#!/usr/bin/env bash
# Regenerates the hash-pinned lock files from pyproject.toml's ranges (README: "Upgrading dependencies").
#   bash requirements/lock.sh                      # add what pyproject.toml gained, keep every other pin
#   bash requirements/lock.sh --upgrade            # every pin to the newest release pyproject.toml allows
#   bash requirements/lock.sh --upgrade-package sqlglot
# Needs uv in the active venv (pip install uv); the lock files are what the image and CI install.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  echo "uv is not installed: pip install uv (in your venv), then run this again" >&2
  exit 1
fi
# Linux and macOS, Python 3.11 (requires-python's floor, the image's interpreter); every wheel's hash is kept.
common=(--generate-hashes --universal --python-version 3.11 --quiet --custom-compile-command "bash requirements/lock.sh" "$@")
# What `dbsync serve` runs with: the image installs exactly this.
uv pip compile pyproject.toml "${common[@]}" -o requirements/image.txt
# The build backend, used only in the image's build stage to make dbsync's wheel.
uv pip compile requirements/build.in "${common[@]}" -o requirements/build.txt
# CI: the image's pins plus the test extra, so the suite runs against exactly what the image ships.
uv pip compile pyproject.toml --extra test -c requirements/image.txt "${common[@]}" -o requirements/ci.txt
