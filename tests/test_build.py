"""A reproducible build (issue 21, item 5): the image and CI install hash-pinned lock files made from pyproject.toml.

The locks are checked against pyproject.toml's ranges without a network: a dependency added to pyproject.toml
without `bash requirements/lock.sh` fails here with that line, instead of an ImportError in CI or an image that
silently lacks it. The image is not built (no Docker engine here); its install steps are read from the Dockerfile.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
RELOCK = "run `bash requirements/lock.sh` (README: Upgrading dependencies) and commit requirements/"
# The environment the locks are made for (requirements/lock.sh: --python-version 3.11; the image is Linux).
LOCK_ENV = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
            "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip


def lock(name: str) -> dict[str, tuple[Version, list[str]]]:
    """A lock file's pins: canonical name → (version, hashes). Fails when a pin has no hash."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    text = (LOCKS / name).read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", re.sub(r"^#.*\n", "", text, flags=re.M)):
        first = block.split("\\")[0].strip()
        if not first:
            continue
        requirement = Requirement(first)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{name}: {first} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        assert hashes, f"{name}: {requirement.name} has no --hash; {RELOCK}"
        pins[canonicalize_name(requirement.name)] = (Version(spec.version), hashes)
    assert pins, f"{name} pins nothing"
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _assert_locked(requirements: list[str], pins: dict[str, tuple[Version, list[str]]], where: str) -> None:
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(LOCK_ENV):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} (pyproject.toml) is not in {where}: {RELOCK}"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{where} pins {requirement.name}=={version}, outside pyproject.toml's {requirement.specifier}: {RELOCK}"
        )


def test_the_image_lock_pins_every_runtime_dependency_with_hashes() -> None:
    _assert_locked(pyproject()["project"]["dependencies"], lock("image.txt"), "requirements/image.txt")


def test_the_ci_lock_pins_the_test_extra_and_exactly_what_the_image_ships() -> None:
    """CI runs the suite against the image's versions: same version, same hashes, for every runtime package."""
    project = pyproject()["project"]
    ci = lock("ci.txt")
    _assert_locked(project["dependencies"] + project["optional-dependencies"]["test"], ci, "requirements/ci.txt")
    for name, pin in lock("image.txt").items():
        assert ci.get(name) == pin, f"requirements/ci.txt has {name} {ci.get(name)}, the image {pin}: {RELOCK}"


def test_the_build_lock_pins_the_build_backend() -> None:
    _assert_locked(pyproject()["build-system"]["requires"], lock("build.txt"), "requirements/build.txt")


def _run_lines(dockerfile: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [line.strip()[4:] for line in joined.splitlines() if line.strip().startswith("RUN ")]


def test_the_image_installs_from_the_locks_only() -> None:
    """Every pip install in the Dockerfile is hash-checked from a lock, or dbsync's own wheel with --no-deps."""
    installs = [
        part.strip()
        for run in _run_lines((ROOT / "Dockerfile").read_text())
        for part in run.split("&&")
        if re.search(r"\bpip (install|wheel)\b", part)
    ]
    locked = [p for p in installs if "--require-hashes -r requirements/" in p]
    assert {re.search(r"requirements/(\S+)", p).group(1) for p in locked} == {"image.txt", "build.txt"}
    for part in installs:
        if part in locked:
            continue
        assert "--no-deps" in part, f"an install that resolves dependencies outside the lock: {part}"
        if "pip wheel" in part:  # the locked backend builds dbsync; isolation would fetch an unpinned one
            assert "--no-build-isolation" in part, f"the build backend must be the locked one: {part}"
        else:
            assert "/tmp/dist/dbsync-" in part, f"only dbsync's own wheel may skip the lock: {part}"


def test_both_stages_pin_the_base_image_by_digest_when_given() -> None:
    """FROM takes PYTHON_DIGEST (buildkit expands `${VAR:+word}` to "" when VAR is empty: shell/lex.go)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert froms == ["${PYTHON_IMAGE}${PYTHON_DIGEST:+@}${PYTHON_DIGEST}"] * 2, froms
    (default,) = re.findall(r"^ARG PYTHON_DIGEST=(.*)$", dockerfile, flags=re.M)
    # Empty until someone with registry access looks it up: a made-up digest would fail every build.
    assert re.fullmatch(r'""|sha256:[0-9a-f]{64}', default), default
    assert "org.opencontainers.image.base.digest=" in dockerfile


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"Run the tests:\s*```bash\n(.*?)\n```", readme, flags=re.S)
    assert block, "README.md: no ```bash block after 'Run the tests:'"
    (command,) = block.group(1).strip().splitlines()
    return command


def test_ci_runs_exactly_the_readme_test_command_from_the_lock() -> None:
    command = _readme_test_command()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci[-1] == command, f".ci/run ends with {ci[-1]!r}, the README says {command!r}"
    assert "--require-hashes -r requirements/ci.txt" in command


@pytest.mark.parametrize("name", ["image.txt", "build.txt", "ci.txt"])
def test_a_lock_says_how_it_was_made(name: str) -> None:
    assert "bash requirements/lock.sh" in (LOCKS / name).read_text().split("\n", 3)[1]
