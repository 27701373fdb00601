"""What the cutover moves besides jobs' triggers: objects that run by themselves, on or off per side.

A continuous pipeline and an unpaused dashboard schedule are both "on": the standby keeps every copy off,
and the store keeps the source's state in source_meta. pause_source turns each source object that is on
off, recorded as `<source row><key>` with its prior state before the write; unpause_target turns on the
copy of each one, recorded as `<target row><target key>`. With --skip-source the copies of those the last
sync saw on are turned on. A rollback turns off the copies it turned on first, then restores the source.
With the kind disabled no copy is turned on (the target's objects of it are the DR team's, and the store's rows of
it are from before it was turned off: the cutover started those stale copies beside the DR team's); the source's are
turned off all the same, as the source's jobs are paused: the old primary must not keep running them.
A `Switch` says how one kind reads, names and turns its objects; the steps are written once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from databricks.sdk.errors import DatabricksError

from dbsync.cutover.common import job_rows, one_line, step_state
from dbsync.model import Prior

if TYPE_CHECKING:
    from dbsync.cutover.runbook import Runbook


class Switch(ABC):
    kind: str  # the kind whose rows the store holds
    noun: str  # "pipeline", "dashboard schedule": the messages' word
    source_row: str  # the runbook rows' prefixes
    target_row: str
    off_state: str  # the source row's state once turned off ("stopped", "paused")
    on_state: str  # the target row's state once turned on ("started", "unpaused")
    prior_detail: dict[str, Any]  # what a source row records as the state before the write

    @abstractmethod
    def live(self, ws: Any, key: str) -> dict[str, Any] | None:
        """The object as it is on `ws`, None when it is gone."""

    @abstractmethod
    def is_on(self, live: dict[str, Any]) -> bool:
        """Whether the live object runs by itself."""

    @abstractmethod
    def turn(self, ws: Any, key: str, live: dict[str, Any], on: bool) -> None:
        """Write the live object with only its on/off state changed."""

    @abstractmethod
    def was_on(self, prior: Prior) -> bool:
        """Whether the last sync saw the source object on."""

    @abstractmethod
    def name(self, book: Runbook, prior: Prior, live: dict[str, Any] | None) -> str:
        """The object's name for the records and the dry run."""

    def _turn(self, book: Runbook, side: str, key: str, live: dict[str, Any], on: bool) -> None:
        book.writer.pacers[side].wait()
        self.turn(book.ctx.source if side == "source" else book.ctx.target, key, live, on)

    def on_priors(self, book: Runbook) -> list[Prior]:
        """Replicated objects the store last saw on on the source."""
        return [p for p in book.store.priors(self.kind, payloads=False) if self.was_on(p)]

    def wanted(self, book: Runbook) -> list[Prior]:
        """The objects whose copies must run on the new primary: those on on the source when it stopped."""
        if step_state(book.rows, "pause_source") == "done":
            turned_off = job_rows(book.rows, self.source_row)
            return [p for p in book.store.priors(self.kind, payloads=False) if p.key in turned_off]
        return self.on_priors(book)

    def stop_source(self, book: Runbook) -> tuple[int, list[str]]:
        """pause_source: each source object that is on turned off; (turned off, failures)."""
        done, failed = 0, []
        for prior in self.on_priors(book):
            row = self.source_row + prior.key
            live = self.live(book.ctx.source, prior.key)
            if live is None or (not self.is_on(live) and row not in book.rows):
                continue  # gone, or turned off since the last sync: nothing of it runs
            if row not in book.rows:  # the prior state is kept before the write
                book.record(row, "pending", {"name": self.name(book, prior, live), "prior": self.prior_detail})
            detail = book.rows[row]["detail"]
            try:
                if self.is_on(live):
                    self._turn(book, "source", prior.key, live, on=False)
            except DatabricksError as err:
                failed.append(f"source {self.noun} {prior.key} ({detail['name']}): {one_line(err)}")
                continue
            book.record(row, self.off_state, detail)
            done += 1
        return done, failed

    def enabled(self, book: Runbook) -> bool:
        """Whether the kind replicates: off, none of its copies is turned on (see the module's docstring)."""
        return book.kind_enabled(self.kind)

    def start_target(self, book: Runbook) -> tuple[int, list[str]]:
        """unpause_target: the copy of each object that was on on the source turned on; (turned on, failures).
        None with the kind disabled."""
        done, failed = 0, []
        if not self.enabled(book):
            return done, failed
        for prior in self.wanted(book):
            if prior.target_key is None:
                failed.append(f"{self.noun} {prior.key} was never replicated to the target")
                continue
            row = self.target_row + prior.target_key
            live = self.live(book.ctx.target, prior.target_key)
            if live is None:
                failed.append(f"target {self.noun} {prior.target_key} (copy of {prior.key}) is missing")
                continue
            detail = {"name": self.name(book, prior, live), "source_key": prior.key}
            if row not in book.rows:
                book.record(row, "pending", detail)
            try:
                if not self.is_on(live):
                    self._turn(book, "target", prior.target_key, live, on=True)
            except DatabricksError as err:
                failed.append(f"target {self.noun} {prior.target_key} ({detail['name']}): {one_line(err)}")
                continue
            book.record(row, self.on_state, detail)
            done += 1
        return done, failed

    def rollback(self, book: Runbook, missing: list[str]) -> tuple[int, list[str]]:
        """The copies the cutover turned on turned off again, then the source objects it turned off restored.

        Returns (objects switched, failures); an object gone from its workspace is added to `missing`.
        """
        done, failed = 0, []
        for side, prefix, on in (("target", self.target_row, False), ("source", self.source_row, True)):
            if failed:
                break  # a copy that may still run: its source object must not run again
            ws = book.ctx.target if side == "target" else book.ctx.source
            for key, row in job_rows(book.rows, prefix).items():
                live = self.live(ws, key)
                if live is None:
                    missing.append(f"{side} {self.noun} {key}")
                    continue
                if self.is_on(live) == on:
                    continue
                try:
                    self._turn(book, side, key, live, on=on)
                    done += 1
                except DatabricksError as err:
                    failed.append(f"{side} {self.noun} {key} ({row['detail'].get('name')}): {one_line(err)}")
        return done, failed
