"""What a Databricks API error means for dbsync, read by watchers and replicators alike."""

from __future__ import annotations

import re

from databricks.sdk.errors import DatabricksError, NotFound

_DOES_NOT_EXIST = re.compile(r"does not exist|not found", re.IGNORECASE)


def is_gone(err: Exception) -> bool:
    """Not found, including the 400 INVALID_PARAMETER_VALUE "... does not exist" of legacy services."""
    if isinstance(err, NotFound):
        return True
    return isinstance(err, DatabricksError) and bool(_DOES_NOT_EXIST.search(str(err)))
