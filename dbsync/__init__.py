"""dbsync: continuous replication of a Databricks workspace into a disaster-recovery standby."""

__version__ = "0.1.0"

from dbsync.sdkpackage import defer_package

defer_package()  # before any module imports the SDK: a process loads the SDK services it uses, not all ~60
