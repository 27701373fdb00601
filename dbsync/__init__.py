"""dbsync: continuous replication of a Databricks workspace into a disaster-recovery standby."""

__version__ = "0.1.0"
