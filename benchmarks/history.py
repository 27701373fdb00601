"""History cost: what keeping every replicated version costs after 1 % of the notebooks change per cycle.

Two `dbsync emulator` processes (the source seeded with `--seed-objects N`), `dbsync sync --once` as a
subprocess: the initial sync, then `--cycles` cycles each preceded by a realistic edit of 1 % of the
notebooks (a line appended to the body, so the edit-storm guard's shrink rule does not hold it). After each
cycle: bytes on disk of `<state_path>.versions/` next to the store's (of which blobs: their compressed bytes,
kept as rows of the index database; index: the rest), versions and blobs kept, peak RSS of the dbsync process,
and its wall time; then `dbsync history` and a dry-run restore of the whole workspace as of the first cycle, timed.

    python benchmarks/history.py [--objects 10000] [--cycles 20] [--fraction 0.01]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from databricks.sdk.service.workspace import ImportFormat, Language

sys.path.insert(0, str(Path(__file__).parent))
from harness import Emulator, dbsync_env, load, notebook_paths, run_dbsync

from dbsync.store.versions import Versions, versions_path


def disk_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def store_bytes(state: Path) -> int:
    return sum(disk_bytes(state.with_name(state.name + suffix)) for suffix in ("", "-wal"))


def edit_notebooks(src: Emulator, paths: list[str], fraction: float, cycle: int) -> int:
    """Append a line to `fraction` of the notebooks (read, then written back)."""
    w = src.client()
    chosen = random.Random(cycle).sample(paths, max(1, int(len(paths) * fraction)))
    for path in chosen:
        body = w.workspace.download(path).read().decode()
        w.workspace.import_(
            path,
            content=base64.b64encode(f"{body}\n# edit {cycle}\n".encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
    return len(chosen)


def measure(label: str, state: Path, run_seconds: float, rss_mb: float, exit_code: int) -> dict[str, float]:
    root = versions_path(state)
    versions = Versions(root)
    blobs = versions.stored_bytes()  # the blobs are rows of the index database: their compressed bytes
    figures = {
        "seconds": run_seconds,
        "rss": rss_mb,
        "history MB": disk_bytes(root) / 1e6,
        "index MB": (disk_bytes(root) - blobs) / 1e6,
        "blobs MB": blobs / 1e6,
        "store MB": store_bytes(state) / 1e6,
        "versions": versions.count(),
        "blobs": len(versions.blobs.names()),
        "exit": exit_code,
    }
    versions.close()
    print(
        f"{label:<14}{figures['seconds']:>8.1f}{figures['rss']:>8.0f}{figures['history MB']:>11.2f}"
        f"{figures['index MB']:>9.2f}{figures['blobs MB']:>9.2f}{figures['store MB']:>9.2f}"
        f"{figures['versions']:>10}{figures['blobs']:>9}{exit_code:>6}",
        flush=True,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--fraction", type=float, default=0.01)
    args = parser.parse_args()
    print(
        f"dbsync history cost: {args.objects} seeded objects, {args.cycles} cycles of {args.fraction:.0%} notebook "
        f"edits, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, {load()}"
    )
    src = Emulator("src-token", seed_objects=args.objects)
    dst = Emulator("dst-token")
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "history.db"
            env = dbsync_env(src, dst, state)
            header = f"{'run':<14}{'s':>8}{'RSS MB':>8}{'history MB':>11}{'index MB':>9}{'blobs MB':>9}"
            print(header + f"{'store MB':>9}{'versions':>10}{'blobs':>9}{'exit':>6}")
            run = run_dbsync("sync", "--once", env=env)
            results.append(measure("initial", state, run.seconds, run.peak_rss_mb, run.returncode))
            first_cycle_at = time.time()
            paths = notebook_paths(src.client())
            for cycle in range(1, args.cycles + 1):
                edit_notebooks(src, paths, args.fraction, cycle)
                run = run_dbsync("sync", "--once", env=env)
                results.append(measure(f"cycle {cycle}", state, run.seconds, run.peak_rss_mb, run.returncode))
            quiet = run_dbsync("sync", "--once", env=env)
            results.append(measure("no-change", state, quiet.seconds, quiet.peak_rss_mb, quiet.returncode))
            listed = run_dbsync("history", paths[0], env=env)
            print(
                f"\n`dbsync history {paths[0]}`: {listed.seconds:.2f} s, {len(listed.stdout.splitlines()) - 1} versions"
            )
            planned = run_dbsync("restore", "--at", str(first_cycle_at), env=env)
            tail = planned.stdout.strip().splitlines()[-1:] or [planned.stderr.strip()[-300:]]
            print(
                f"`dbsync restore --at <first cycle>` (dry run): {planned.seconds:.1f} s, peak RSS "
                f"{planned.peak_rss_mb:.0f} MB: {tail[0]}"
            )
    finally:
        src.stop()
        dst.stop()
    initial, last = results[0], results[-2]
    growth = (last["history MB"] - initial["history MB"]) / max(1, args.cycles)
    print(
        f"\n== summary: history {initial['history MB']:.1f} MB after the initial sync, "
        f"{last['history MB']:.1f} MB after {args.cycles} cycles ({growth:.3f} MB per cycle); "
        f"store {last['store MB']:.1f} MB; peak RSS {max(r['rss'] for r in results):.0f} MB; {load()}"
    )
    return 0 if all(r["exit"] in (0, 1) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
