"""Command Execution 1.2 and secret values as a real cluster and workspace answer them, driven by the SDK.

What each test relies on is cited beside it: the databricks-sdk-py sources and integration tests, the
Terraform provider's acceptance tests, and databrickslabs/migrate (the seed's export tool).
"""

from __future__ import annotations

import base64
import json
import textwrap
import uuid

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, DatabricksError
from databricks.sdk.oauth import get_host_metadata
from databricks.sdk.service.compute import Language

from dbsync_emulator import EmulatorHandle
from dbsync_emulator.apis import clusters

SPARK = "15.4.x-scala2.12"
VALUE = "s3cr3t-Value-4b1e"


def _cluster(emulator: EmulatorHandle, state: str = "RUNNING") -> str:
    ws = emulator.workspace
    with ws.lock:
        spec = {"cluster_name": "cmds", "spark_version": SPARK, "node_type_id": "i3.xlarge", "num_workers": 1}
        return clusters.create_cluster(ws, spec, state=state)


def _context(w: WorkspaceClient, cluster_id: str) -> str:
    return w.command_execution.create(cluster_id=cluster_id, language=Language.PYTHON).result().id or ""


def _run(w: WorkspaceClient, cluster_id: str, context_id: str, command: str) -> dict:
    status = w.command_execution.execute(
        cluster_id=cluster_id, context_id=context_id, language=Language.PYTHON, command=command
    ).result()
    assert status.status and status.status.value == "Finished" and status.results
    return status.results.as_dict()


@pytest.fixture
def python(w: WorkspaceClient, emulator: EmulatorHandle) -> tuple[str, str]:
    """(cluster id, context id) of a Python context on a running cluster."""
    cluster_id = _cluster(emulator)
    return cluster_id, _context(w, cluster_id)


# -- secrets/get (gap 1) ----------------------------------------------------------------------------
def test_secrets_get_is_refused_outside_a_notebook_or_job(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """databricks-sdk-py `SecretsAPI.get_secret` (service/workspace.py): "Throws BAD_REQUEST if normal user
    calls get secret outside of a notebook"; its integration test tests/integration/test_dbutils.py::test_secrets
    skips when dbutils.secrets.get over REST fails with error_code BAD_REQUEST."""
    w.secrets.create_scope("vault")
    w.secrets.put_secret("vault", "k", string_value=VALUE)

    with pytest.raises(BadRequest) as refused:
        w.secrets.get_secret("vault", "k")

    assert refused.value.error_code == "BAD_REQUEST"
    assert VALUE not in str(refused.value)
    assert [s.key for s in w.secrets.list_secrets("vault")] == ["k"]  # metadata stays readable

    # Old tests (and `dbsync emulator --allow-secrets-get`) turn the answer back on.
    emulator.workspace.table("settings")["secrets_get_allowed"] = True
    assert base64.b64decode(w.secrets.get_secret("vault", "k").value or "") == VALUE.encode()


def test_dbutils_secrets_get_on_a_cluster_returns_the_value_and_redacts_it_in_output(
    w: WorkspaceClient, python: tuple[str, str]
) -> None:
    """Printed secret values show as [REDACTED] (databricks-sdk-py docs/workspace/workspace/secrets.rst: "Databricks
    makes an effort to redact secret values that might be displayed in notebooks"). databrickslabs/migrate
    (dbclient/SecretsClient.py, get_secret_value) reads them past the redaction with these three commands."""
    w.secrets.create_scope("app")
    w.secrets.put_secret("app", "db-password", string_value=VALUE)
    cluster_id, context_id = python

    printed = _run(w, cluster_id, context_id, "print(dbutils.secrets.get(scope='app', key='db-password'))")
    assert printed == {"resultType": "text", "data": "[REDACTED]"}
    echoed = _run(w, cluster_id, context_id, "'pw=' + dbutils.secrets.get('app', 'db-password')")
    assert VALUE not in echoed["data"] and "[REDACTED]" in echoed["data"]

    # migrate's exact command texts
    _run(w, cluster_id, context_id, "value = dbutils.secrets.get(scope = 'app', key = 'db-password')")
    _run(w, cluster_id, context_id, "import base64; b64_value = base64.b64encode(value.encode('ascii'))")
    exported = _run(w, cluster_id, context_id, "print(b64_value.decode('ascii'))")
    assert base64.b64decode(exported["data"]) == VALUE.encode()

    raw = bytes(range(200, 256))
    w.secrets.put_secret("app", "blob", bytes_value=base64.b64encode(raw).decode())
    hexed = _run(w, cluster_id, context_id, "print(dbutils.secrets.getBytes(scope='app', key='blob').hex())")
    assert bytes.fromhex(hexed["data"]) == raw

    missing = _run(w, cluster_id, context_id, "dbutils.secrets.get('app', 'nope')")
    assert missing["resultType"] == "error"
    assert "Secret does not exist with scope: app and key: nope" in missing["summary"]


# -- what a cluster answers (gap 5) ------------------------------------------------------------------
def test_output_has_no_trailing_newline(w: WorkspaceClient, python: tuple[str, str]) -> None:
    """terraform-provider-databricks commands/acceptance/commands_test.go: `print('hello world')` gives the text
    "hello world"; a bare expression gives its repr; dbutils.notebook.exit's value replaces the output."""
    cluster_id, context_id = python
    assert _run(w, cluster_id, context_id, "print('hello world')") == {"resultType": "text", "data": "hello world"}
    assert _run(w, cluster_id, context_id, "print('a')\nprint('b')")["data"] == "a\nb"
    assert _run(w, cluster_id, context_id, '"Hello World!"')["data"] == "'Hello World!'"
    exited = _run(w, cluster_id, context_id, 'print("Hello World!")\ndbutils.notebook.exit("success")')
    assert exited == {"resultType": "text", "data": "success"}


def test_python_errors_carry_the_type_and_message_of_the_language(w: WorkspaceClient, python: tuple[str, str]) -> None:
    """terraform-provider-databricks commands/acceptance/commands_test.go: `raise KeyError("foo")` fails with
    "KeyError: 'foo'", `return 'hello world'` with "SyntaxError: 'return' outside function"; the SDK's
    dbutils proxy (databricks/sdk/dbutils.py, _ProxyCall._error_from_results) reads the message from `summary`."""
    cluster_id, context_id = python
    division = _run(w, cluster_id, context_id, "x = 1\ny = x / 0")
    assert division["resultType"] == "error"
    assert division["summary"] == "ZeroDivisionError: division by zero"
    assert division["cause"].rstrip().endswith("ZeroDivisionError: division by zero")

    key_error = _run(w, cluster_id, context_id, 'raise KeyError("foo")')
    assert key_error["summary"] == "KeyError: 'foo'"
    assert _run(w, cluster_id, context_id, 'raise Exception("Not Found")')["summary"] == "Exception: Not Found"
    outside = _run(w, cluster_id, context_id, "return 'hello world'")
    assert outside["summary"] == "SyntaxError: 'return' outside function"
    undefined = _run(w, cluster_id, context_id, "print(nope)")
    assert undefined["summary"] == "NameError: name 'nope' is not defined"
    assert _run(w, cluster_id, context_id, "print(7 // 2, 2 ** 10, -3 + 1)")["data"] == "3 1024 -2"


def test_context_id_is_checked_before_the_cluster(w: WorkspaceClient) -> None:
    """databricks-sdk-py tests/integration/test_commands.py::test_error_unmarshall: executing on a cluster that does
    not exist without a context fails with "requirement failed: missing contextId" and no error_code."""
    with pytest.raises(DatabricksError) as missing:
        w.command_execution.execute(cluster_id="__non_existing__")

    assert "requirement failed: missing contextId" in str(missing.value)
    assert missing.value.error_code is None


def test_indented_code_runs_as_in_a_notebook(w: WorkspaceClient, python: tuple[str, str]) -> None:
    """The SDK's dbutils proxy (databricks/sdk/dbutils.py, _ProxyCall.__call__) sends its code indented by
    eight spaces, and it runs on real clusters."""
    cluster_id, context_id = python
    code = "\n        x = 40\n        if x:\n            print(x + 2)\n        "
    assert _run(w, cluster_id, context_id, code) == {"resultType": "text", "data": "42"}


def test_sdk_dbutils_fs_mounts_runs_through_the_proxy(w: WorkspaceClient, emulator: EmulatorHandle) -> None:
    """databricks-sdk-py tests/integration/test_dbutils.py::test_proxy_dbfs_mounts: with `cluster_id` set,
    `w.dbutils.fs.mounts()` runs `json.loads` of the arguments, `dbutils.fs.mounts(*args, **kwargs)` and
    `dbutils.notebook.exit(json.dumps(result))` on the cluster and lists more than one mount."""
    w.config.cluster_id = _cluster(emulator)

    assert w.dbutils.fs.mount("s3a://acme-raw/landing", "/mnt/raw") is True
    mounts = w.dbutils.fs.mounts()

    assert len(mounts) > 1
    assert ("/mnt/raw", "s3a://acme-raw/landing") in [(m.mountPoint, m.source) for m in mounts]
    assert w.dbutils.fs.refreshMounts() is True


def test_a_command_the_proxy_sends_is_exactly_what_runs(w: WorkspaceClient, python: tuple[str, str]) -> None:
    """The text databricks-sdk-py's own unit test (tests/test_dbutils.py, test_fs_mounts) expects the proxy to send."""
    cluster_id, context_id = python
    command = textwrap.dedent(
        """
        import json
        (args, kwargs) = json.loads('[[], {}]')
        result = dbutils.fs.mounts(*args, **kwargs)
        dbutils.notebook.exit(json.dumps(result))
        """
    )
    command = "\n".join("        " + line if line else line for line in command.splitlines()) + "\n        "
    result = _run(w, cluster_id, context_id, command)
    assert result["resultType"] == "text"
    assert ["/", "DatabricksRoot", ""] in json.loads(result["data"])


# -- /.well-known/databricks-config (gap 6) ------------------------------------------------------------
def test_host_metadata_carries_the_account_id(emulator: EmulatorHandle) -> None:
    """databricks-sdk-py oauth.py HostMetadata: oidc_endpoint, account_id, workspace_id, cloud; Config fills
    account_id from it (`_resolve_host_metadata`)."""
    metadata = get_host_metadata(emulator.url)

    assert metadata.account_id is not None and uuid.UUID(metadata.account_id)
    assert metadata.workspace_id == str(emulator.workspace.workspace_id)
