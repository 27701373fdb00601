"""Libraries API 2.0: `/api/2.0/libraries/{cluster-status,all-cluster-statuses,install,uninstall}`.

Libraries set on a cluster live in table "cluster_libraries" keyed by cluster id: a list of records
`{"library", "seq", "requested_ms", "uninstall_ms", "restored_ms"}` in the order they were added. The
status is derived lazily from the cluster's state and `last_restarted_time` (time.time, so freezegun
works), as the library manager would report it:

- while the cluster is not running (TERMINATED, PENDING, RESTARTING, ...) every library waits: PENDING;
  the service installs the queue at the next start, so installing on a terminated cluster is fine;
- on a running cluster a library goes PENDING → RESOLVING (repository libraries only) → INSTALLING →
  INSTALLED within `ws.cluster_start_seconds` of the later of its request and the cluster's start; it
  ends FAILED (with `messages`) when it cannot resolve: a `/Workspace/...` file that does not exist, a
  PyPI requirement or Maven coordinate that does not parse; a Maven artifact built for Scala 2.11 on a
  2.12+ runtime is SKIPPED, as the service skips it;
- uninstall marks a library UNINSTALL_ON_RESTART on a running cluster and it goes at the next restart
  (or start); on a cluster that is not running it goes at once, since nothing of it is loaded;
- installing again a library marked for removal while the cluster still runs restores it: RESTORED.

Not modelled: libraries "for all clusters" (retired in the UI; `is_library_for_all_clusters` is always
false), real package resolution (any well-formed requirement installs), per-library install time.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dbsync_emulator.apis import clusters, workspace
from dbsync_emulator.errors import invalid
from dbsync_emulator.router import Request, Routes
from dbsync_emulator.state import Workspace

routes = Routes()

TABLE = "cluster_libraries"
LIBRARY_TYPES = ("jar", "egg", "whl", "pypi", "maven", "cran", "requirements")
_FILE_TYPES = ("jar", "egg", "whl", "requirements")
_REPOSITORY_TYPES = ("pypi", "maven", "cran")
_RUNNING = ("RUNNING", "RESIZING")
# A PEP 508 name with optional extras and version specifiers (enough to tell a typo from a requirement).
_PYPI_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._,\s-]+\])?"
    r"(\s*(==|>=|<=|~=|!=|>|<|===)\s*[A-Za-z0-9.*+!_-]+(\s*,\s*(==|>=|<=|~=|!=|>|<)\s*[A-Za-z0-9.*+!_-]+)*)?$"
)
_MAVEN_COORDINATES = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[A-Za-z0-9_.+-]+$")
_CRAN_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9.]*$")


# -- validation -----------------------------------------------------------------------------------------
def _check_library(library: Any) -> dict:
    """One library of an install/uninstall request: exactly one type, with its required field."""
    if not isinstance(library, dict):
        raise invalid('Each library must be an object such as {"pypi": {"package": "simplejson"}}')
    kinds = [k for k in LIBRARY_TYPES if library.get(k) not in (None, "", {})]
    if len(kinds) != 1:
        raise invalid(f"Exactly one of {', '.join(LIBRARY_TYPES)} must be specified for a library")
    kind = kinds[0]
    value = library[kind]
    if kind in _FILE_TYPES:
        if not isinstance(value, str):
            raise invalid(f"Library {kind} must be a path string")
        return {kind: value}
    required = "coordinates" if kind == "maven" else "package"
    if not isinstance(value, dict) or not isinstance(value.get(required), str) or not value[required].strip():
        raise invalid(f"Missing required field: {kind}.{required}")
    allowed = ("coordinates", "repo", "exclusions") if kind == "maven" else ("package", "repo")
    return {kind: {k: v for k, v in value.items() if k in allowed and v not in (None, "", [])}}


def _check_request(ws: Workspace, req: Request) -> tuple[dict, list[dict]]:
    cluster_id = req.param("cluster_id")
    if not cluster_id:
        raise invalid("Missing required field: cluster_id")
    record = clusters.get_cluster(ws, str(cluster_id))
    if record is None:
        raise clusters.cluster_not_found(str(cluster_id))
    libraries = req.param("libraries")
    if libraries is None:
        libraries = []
    if not isinstance(libraries, list):
        raise invalid("libraries must be a list")
    return record, [_check_library(lib) for lib in libraries]


def _same(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- status ---------------------------------------------------------------------------------------------
def _outcome(ws: Workspace, cluster: dict, library: dict) -> tuple[str, list[str]]:
    """What installing `library` on `cluster` ends in: INSTALLED, FAILED or SKIPPED (with messages)."""
    kind, value = next(iter(library.items()))
    if kind in _FILE_TYPES:
        path = str(value)
        if path.startswith("/Workspace/") and workspace.get_object(ws, path[len("/Workspace") :]) is None:
            return "FAILED", [f"java.io.FileNotFoundException: {path} (No such file or directory)"]
        return "INSTALLED", []
    if kind == "pypi" and not _PYPI_REQUIREMENT.match(value["package"].strip()):
        return "FAILED", [f"ERROR: Invalid requirement: '{value['package']}'"]
    if kind == "maven":
        coordinates = value["coordinates"]
        if not _MAVEN_COORDINATES.match(coordinates):
            return "FAILED", [f"Invalid Maven coordinates {coordinates}: expected groupId:artifactId:version"]
        runtime = str(cluster["attrs"].get("spark_version", ""))
        if "_2.11:" in coordinates and "scala2.11" not in runtime:
            return "SKIPPED", [f"Library {coordinates} was built for Scala 2.11 and is skipped on {runtime}"]
    if kind == "cran" and not _CRAN_PACKAGE.match(value["package"]):
        return "FAILED", [f"Error: package '{value['package']}' is not available"]
    return "INSTALLED", []


def _status(ws: Workspace, cluster: dict, entry: dict) -> tuple[str, list[str]]:
    """The status the library manager reports now for one library record."""
    if cluster["state"] not in _RUNNING:
        return "PENDING", []
    started = int(cluster.get("last_restarted_time") or 0)
    if entry.get("restored_ms") and started <= entry["restored_ms"]:
        return "RESTORED", []
    since = max(entry["requested_ms"], started)
    elapsed = ws.now_ms() - since
    duration = int(ws.cluster_start_seconds * 1000)
    if elapsed < duration:
        repository = next(iter(entry["library"])) in _REPOSITORY_TYPES
        if elapsed < duration // 4:
            return "PENDING", []
        return ("RESOLVING" if repository and elapsed < duration // 2 else "INSTALLING"), []
    return _outcome(ws, cluster, entry["library"])


def _live_entries(ws: Workspace, cluster: dict) -> list[dict]:
    """The cluster's library records, dropping those whose removal has taken effect."""
    entries = ws.table(TABLE).get(cluster["cluster_id"], [])
    started = int(cluster.get("last_restarted_time") or 0)
    running = cluster["state"] in _RUNNING
    kept = [e for e in entries if e.get("uninstall_ms") is None or (running and started <= e["uninstall_ms"])]
    if len(kept) != len(entries):
        ws.table(TABLE)[cluster["cluster_id"]] = kept
    return kept


def cluster_statuses(ws: Workspace, cluster_id: str) -> dict:
    """ClusterLibraryStatuses of one cluster: libraries to install in the order added, then those being removed."""
    cluster = clusters.get_cluster(ws, cluster_id)
    if cluster is None:
        raise clusters.cluster_not_found(cluster_id)
    entries = _live_entries(ws, cluster)
    ordered = [e for e in entries if e.get("uninstall_ms") is None] + [
        e for e in entries if e.get("uninstall_ms") is not None
    ]
    statuses = []
    for entry in ordered:
        status, messages = (
            ("UNINSTALL_ON_RESTART", []) if entry.get("uninstall_ms") is not None else _status(ws, cluster, entry)
        )
        item: dict[str, Any] = {
            "library": json.loads(json.dumps(entry["library"])),
            "status": status,
            "is_library_for_all_clusters": False,
        }
        if messages:
            item["messages"] = messages
        statuses.append(item)
    body: dict[str, Any] = {"cluster_id": cluster_id}
    if statuses:  # the array key is omitted when empty
        body["library_statuses"] = statuses
    return body


# -- internal API (seeder, tests) -----------------------------------------------------------------------
def install_libraries(ws: Workspace, cluster_id: str, libraries: list[dict]) -> None:
    """Queue libraries on a cluster like libraries/install (already-set ones are left as they are)."""
    cluster = clusters.get_cluster(ws, cluster_id)
    if cluster is None:
        raise clusters.cluster_not_found(cluster_id)
    entries = _live_entries(ws, cluster)
    ws.table(TABLE)[cluster_id] = entries
    now = ws.now_ms()
    for library in (_check_library(lib) for lib in libraries):
        existing = next((e for e in entries if _same(e["library"], library)), None)
        if existing is None:
            entries.append({"library": library, "seq": ws.next_id("library"), "requested_ms": now})
        elif existing.get("uninstall_ms") is not None:
            # Only a running cluster keeps a library marked for removal: it is still loaded, so restored.
            existing["uninstall_ms"] = None
            existing["restored_ms"] = now


def uninstall_libraries(ws: Workspace, cluster_id: str, libraries: list[dict]) -> None:
    """Mark libraries for removal like libraries/uninstall; libraries not set on the cluster are ignored."""
    cluster = clusters.get_cluster(ws, cluster_id)
    if cluster is None:
        raise clusters.cluster_not_found(cluster_id)
    entries = ws.table(TABLE).get(cluster_id, [])
    now = ws.now_ms()
    for library in (_check_library(lib) for lib in libraries):
        for entry in entries:
            if _same(entry["library"], library) and entry.get("uninstall_ms") is None:
                entry["uninstall_ms"] = now
                entry["restored_ms"] = None
    _live_entries(ws, cluster)


# -- routes ---------------------------------------------------------------------------------------------
@routes.get("/api/2.0/libraries/cluster-status")
def cluster_status(ws: Workspace, req: Request) -> dict:
    cluster_id = req.arg("cluster_id")
    if not cluster_id:
        raise invalid("Missing required field: cluster_id")
    return cluster_statuses(ws, cluster_id)


@routes.get("/api/2.0/libraries/all-cluster-statuses")
def all_cluster_statuses(ws: Workspace, req: Request) -> dict:
    """Every existing cluster (running or not) that has libraries set; `{}` when none has."""
    statuses = []
    for cluster_id in list(ws.table(TABLE)):
        if clusters.get_cluster(ws, cluster_id) is None:
            continue  # permanently deleted (or purged): its libraries went with it
        status = cluster_statuses(ws, cluster_id)
        if status.get("library_statuses"):
            statuses.append(status)
    return {"statuses": statuses} if statuses else {}


@routes.post("/api/2.0/libraries/install")
def install(ws: Workspace, req: Request) -> dict:
    record, libraries = _check_request(ws, req)
    install_libraries(ws, record["cluster_id"], libraries)
    return {}


@routes.post("/api/2.0/libraries/uninstall")
def uninstall(ws: Workspace, req: Request) -> dict:
    record, libraries = _check_request(ws, req)
    uninstall_libraries(ws, record["cluster_id"], libraries)
    return {}
