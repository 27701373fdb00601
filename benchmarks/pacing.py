"""Pacing throughput: how much of a paced budget one process actually sends while its interpreter is busy.

The daemon's requests leave from many threads of one Python process that also parses listings, fingerprints and
writes the store: each thread's wake-up from its pacing wait waits for the GIL too. This sends requests through a
real `RequestBudget` from `--threads` threads (each request "takes" `--latency-ms` after it leaves, as a call to
the service would), with `--busy` CPU-bound threads in the same process, and prints the requests sent per second
against the paced rate (`budget x HEADROOM`), and the most sent in any one second of the clock (as the emulator
counts them: never above the budget, which is what keeps the service's 429s away).

    python benchmarks/pacing.py [--budget 50] [--threads 12] [--give-way 8] [--busy 1] [--seconds 20]

No HTTP: the transport's own pacing (workspace.FencedAdapter calls RequestBudget.take the same way) is what is
measured; `tests/test_pacing.py` and the steady-state benchmark check the same against an emulator.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter

from dbsync.pacing import HEADROOM, RequestBudget


def run(budget: float, threads: int, give_way: int, busy: int, seconds: float, latency: float) -> tuple[float, int]:
    """Requests sent per second, and the most sent in any one second of the clock."""
    pacer = RequestBudget("source", budget)
    left: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def sender(gives_way: bool) -> None:
        while time.monotonic() < stop:
            pacer.take("/api/2.0/permissions/notebooks/1", gives_way=gives_way)
            with lock:
                left.append(time.time())
            time.sleep(latency)

    def spin() -> None:
        while time.monotonic() < stop:
            sum(range(2000))

    workers = [threading.Thread(target=sender, args=(i < give_way,)) for i in range(threads)]
    workers += [threading.Thread(target=spin) for _ in range(busy)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    per_second = Counter(int(at) for at in left)
    return len(left) / (time.monotonic() - started), max(per_second.values(), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=50.0, help="max_requests_per_second")
    parser.add_argument("--threads", type=int, default=12, help="threads sending")
    parser.add_argument("--give-way", type=int, default=8, help="of which give way (the ACL sweep's)")
    parser.add_argument("--busy", type=int, default=1, help="CPU-bound threads in the same process")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    paced = args.budget * HEADROOM
    for busy in sorted({0, args.busy}):
        rate, most = run(args.budget, args.threads, args.give_way, busy, args.seconds, args.latency_ms / 1000)
        print(
            f"budget {args.budget:g}/s (paced {paced:g}/s), {args.threads} threads ({args.give_way} giving way), "
            f"{busy} busy: sent {rate:.1f}/s ({rate / paced:.0%} of paced), most in a second of the clock {most}",
            flush=True,
        )


if __name__ == "__main__":
    main()
