"""Log compaction: replace the applied prefix of the log with a snapshot.

Every STORE_MODEL entry carries a whole model file, so without compaction
``raft.log`` grows by every model ever trained and a restart replays them
all. Once ``--snapshot-entries`` entries are applied past the last snapshot,
the node snapshots the registry (its index of models: ids, sizes, SHA-256,
summaries — not the files) and drops the log up to it.

The log entry was the durable copy of each model file (files are written
without fsync, see ``registry.py``), so before the log forgets an entry the
file it wrote must be on disk for good: those files are fsynced first, in a
worker thread, because a few hundred fsyncs would stall the event loop (and
with it the heartbeats). Only then does the loop store the snapshot and trim
the log (``finish``). A node that crashes in between simply keeps its longer
log.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .config import DEFAULT_SNAPSHOT_ENTRIES
from .raft import RaftCore
from .registry import ModelRegistry
from .storage.atomic import FsyncStats, fsync_dir
from .storage.node_storage import NodeStorage

log = logging.getLogger("zmqnode.compaction")


def sync_files(paths: list[Path], directory: Path, stats: FsyncStats) -> None:
    """fsync each file that still exists, then the directory holding them
    (through ``stats``, so the fsync metric counts them)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # a damaged file that was removed: the fetcher restores it durably
        try:
            stats.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(directory, stats)


class Compactor:
    """Starts a compaction when due, finishes it when the files are durable."""

    def __init__(
        self,
        node_id: str,
        core: RaftCore,
        registry: ModelRegistry,
        storage: NodeStorage,
        snapshot_entries: int = DEFAULT_SNAPSHOT_ENTRIES,
    ) -> None:
        self.node_id = node_id
        self.core = core
        self.registry = registry
        self.storage = storage
        self.snapshot_entries = snapshot_entries
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="compaction")
        self._running: tuple[int, bytes, list[str], Future] | None = None
        self._syncs: list[tuple[list[str], Future]] = []  # see sync_unsynced
        self.compactions = 0

    def due(self) -> bool:
        applied_since = self.core.applied_index - self.core.snapshot.index
        return self.snapshot_entries > 0 and applied_since >= self.snapshot_entries

    def sync_unsynced(self) -> None:
        """fsync, off the loop, the files no log entry covers any more because
        an installed snapshot replaced the log they came from."""
        model_ids = self.registry.take_unsynced()
        if model_ids:
            paths = [self.registry.store.path(m) for m in model_ids]
            future = self._pool.submit(
                sync_files, paths, self.registry.store.directory, self.storage.stats
            )
            self._syncs.append((model_ids, future))

    def tick(self) -> None:
        for model_ids, future in [s for s in self._syncs if s[1].done()]:
            self._syncs.remove((model_ids, future))
            if future.exception() is not None:
                self.registry.mark_unsynced(model_ids)  # the next compaction tries again
        if self._running is not None:
            self._finish_if_done(*self._running)
        elif self.due():
            self._start()

    def _start(self) -> None:
        # Every entry through ``index`` is applied and on disk in our log.
        index = min(self.core.applied_index, self.core.log.stable, self.storage.log.last_index)
        if index <= self.core.snapshot.index:
            return
        data = self.registry.snapshot_data(through=index)
        model_ids = self.registry.take_unsynced()
        paths = [self.registry.store.path(m) for m in model_ids]
        future = self._pool.submit(
            sync_files, paths, self.registry.store.directory, self.storage.stats
        )
        self._running = (index, data, model_ids, future)

    def _finish_if_done(
        self, index: int, data: bytes, model_ids: list[str], future: Future
    ) -> None:
        if not future.done():
            return
        self._running = None
        error = future.exception()
        if error is not None:
            self.registry.mark_unsynced(model_ids)
            log.error(
                "node %s: could not fsync model files before compacting the log (%s); "
                "keeping the log as it is and trying again later",
                self.node_id,
                error,
            )
            return
        if index <= self.core.snapshot.index:
            return  # a snapshot from the leader overtook ours
        self.core.compact(index, data)
        self.storage.compact(self.core.snapshot)
        self.compactions += 1
        log.info(
            "node %s: compacted the log through entry %d (%d models in the snapshot)",
            self.node_id,
            index,
            len(self.registry.models),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
