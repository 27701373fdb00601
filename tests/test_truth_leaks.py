"""What a user sees when a file holding secrets is malformed: where, never the content."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbsync.cli import main

TOKEN = "dapi0123456789abcdefSECRETSECRET"


@pytest.fixture(autouse=True)
def no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DBSYNC_"):
            monkeypatch.delenv(name)


def test_a_config_file_that_is_not_yaml_is_named_with_its_line_not_its_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "dbsync.yaml"
    config.write_text(  # the token's closing quote is missing
        f'source:\n  host: https://primary.cloud.databricks.com\n  token: "{TOKEN}\ntarget:\n  host: https://dr\n'
    )
    code = main(["status", "--config", str(config)])
    out = capsys.readouterr()
    assert code == 2
    assert f"config file {config} is not valid YAML (line " in out.err
    assert TOKEN not in out.err + out.out
    assert TOKEN[:12] not in out.err + out.out
