"""Unity Catalog kinds: the API calls a no-change cycle costs, per kind and endpoint, on each side.

Seeds a credential, an external location, catalogs with schemas (each holding a volume and a function) and
grants on the source of an emulated pair (in this process: only call counts are measured), syncs twice (the
schemas are made on the target by hand, as the SQL `schemas` kind would), then prints each UC kind's
no-change cycle by endpoint. The goal: listing calls only, plus one grants GET per securable for `uc_grants`.

    python benchmarks/sync_uc.py [--catalogs 5] [--schemas 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import catalog as uc

from dbsync.config import Settings
from dbsync.context import open_context
from dbsync.engine import Engine
from dbsync_emulator import start_emulator

UC_KINDS = ("storage_credentials", "external_locations", "connections", "catalogs", "volumes", "functions", "uc_grants")


def add_one(catalog: str, schema: str) -> uc.CreateFunction:
    parameter = uc.FunctionParameterInfo(name="x", type_name=uc.ColumnTypeName.INT, type_text="int", position=0)
    return uc.CreateFunction(
        name="add_one",
        catalog_name=catalog,
        schema_name=schema,
        input_params=uc.FunctionParameterInfos(parameters=[parameter]),
        data_type=uc.ColumnTypeName.INT,
        full_data_type="int",
        routine_body=uc.CreateFunctionRoutineBody.SQL,
        routine_definition="x + 1",
        parameter_style=uc.CreateFunctionParameterStyle.S,
        is_deterministic=True,
        sql_data_access=uc.CreateFunctionSqlDataAccess.CONTAINS_SQL,
        is_null_call=False,
        security_type=uc.CreateFunctionSecurityType.DEFINER,
        specific_name="add_one",
    )


def seed(src: WorkspaceClient, catalogs: int, schemas: int) -> None:
    src.storage_credentials.create(name="cred", aws_iam_role=uc.AwsIamRoleRequest(role_arn="arn:aws:iam::1:role/r"))
    src.external_locations.create(name="lake", url="s3://prod/uc", credential_name="cred")
    for c in range(catalogs):
        src.catalogs.create(name=f"c{c}", storage_root=f"s3://prod/uc/c{c}")
        src.grants.update(
            "CATALOG", f"c{c}", changes=[uc.PermissionsChange(principal="users", add=[uc.Privilege.USE_CATALOG])]
        )
        for s in range(schemas):
            src.schemas.create(name=f"s{s}", catalog_name=f"c{c}")
            src.volumes.create(f"c{c}", f"s{s}", "v", uc.VolumeType.MANAGED)
            src.functions.create(add_one(f"c{c}", f"s{s}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", type=int, default=5)
    parser.add_argument("--schemas", type=int, default=4)
    args = parser.parse_args()
    source, target = start_emulator(token="src-token"), start_emulator(token="tgt-token")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                source={"host": source.url, "token": "src-token"},
                target={"host": target.url, "token": "tgt-token"},
                state_path=Path(tmp) / "bench.db",
                mapping={"storage_urls": {"s3://prod": "s3://dr"}},
            )
            ctx = open_context(settings)
            seed(ctx.source.client, args.catalogs, args.schemas)
            Engine(ctx).cycle(list(UC_KINDS))
            for c in range(args.catalogs):
                for s in range(args.schemas):
                    ctx.target.client.schemas.create(name=f"s{s}", catalog_name=f"c{c}")
            Engine(ctx).cycle(list(UC_KINDS))
            print(
                f"dbsync UC benchmark: {args.catalogs} catalogs x {args.schemas} schemas (a volume and a function "
                f"each), {time.strftime('%Y-%m-%d')}\n\n== no-change cycle, per kind"
            )
            print(f"{'kind':<20}{'src':>6}{'tgt':>6}{'writes':>7}  endpoints")
            for kind in UC_KINDS:
                ctx.source.reset_calls()
                ctx.target.reset_calls()
                Engine(ctx).cycle([kind])
                endpoints = ", ".join(
                    f"{side[0]}:{endpoint} x{n}"
                    for side, ws in (("source", ctx.source), ("target", ctx.target))
                    for endpoint, n in sorted(ws.calls_by_endpoint().items())
                    if "well-known" not in endpoint
                )
                src, tgt = ctx.source.total_calls("/api"), ctx.target.total_calls("/api")
                print(f"{kind:<20}{src:>6}{tgt:>6}{ctx.target.write_calls():>7}  {endpoints}")
            ctx.store.close()
    finally:
        source.stop()
        target.stop()


if __name__ == "__main__":
    main()
