// Log compaction every --snapshot-entries applied entries (compaction.py,
// go/node/compaction.go): fsync the model files the entries wrote on a
// worker thread, then store the registry's snapshot and drop the log through it.
package zmqnode.node

import java.util.concurrent.CompletableFuture

class Compactor(private val n: Node) {
    private class FileSync(val ids: List<String>, val done: CompletableFuture<Exception?>)
    private class Compaction(val index: Long, val data: ByteArray, val sync: FileSync)

    private var running: Compaction? = null
    private val syncs = ArrayList<FileSync>()
    var compactions = 0L
        private set

    private fun startSync(ids: List<String>): FileSync {
        val paths = ids.mapNotNull { try { n.registry.store.path(it) } catch (e: Exception) { null } }
        val dir = n.storage.modelsDir
        val stats = n.storage.stats
        val done = CompletableFuture<Exception?>()
        val t = Thread({
            val err = try {
                zmqnode.storage.syncFiles(paths, dir, stats)
                null
            } catch (e: Exception) {
                e
            }
            done.complete(err)
            n.wake()
        }, "fsync")
        t.isDaemon = true
        t.start()
        return FileSync(ids, done)
    }

    /** Fsyncs, off the loop, the files no log entry covers any more (an installed snapshot replaced their log). */
    fun syncUnsynced() {
        val ids = n.registry.takeUnsynced()
        if (ids.isNotEmpty()) syncs.add(startSync(ids))
    }

    private fun due(): Boolean = n.cfg.snapshotEntries > 0 &&
        n.core.appliedIndex - n.core.snapshot.index >= n.cfg.snapshotEntries

    /** Starts a compaction when due and finishes one whose fsyncs are done. */
    fun tick() {
        val it = syncs.iterator()
        while (it.hasNext()) {
            val s = it.next()
            if (s.done.isDone) {
                if (s.done.get() != null) n.registry.markUnsynced(s.ids)
                it.remove()
            }
        }
        if (running != null) {
            finish()
            return
        }
        if (due()) {
            val index = n.core.appliedIndex
            if (index <= n.core.snapshot.index) return
            val data = n.registry.snapshotData(index)
            running = Compaction(index, data, startSync(n.registry.takeUnsynced()))
        }
    }

    private fun finish() {
        val run = running ?: return
        if (!run.sync.done.isDone) return
        running = null
        val err = run.sync.done.get()
        if (err != null) {
            n.registry.markUnsynced(run.sync.ids)
            n.log.error("zmqnode.compaction", "node ${n.id}: could not fsync model files before compacting the log " +
                "(${err.message}); keeping the log as it is and trying again later")
            return
        }
        if (run.index <= n.core.snapshot.index) return // a snapshot from the leader overtook ours
        try {
            n.core.compact(run.index, run.data)
        } catch (e: zmqnode.raft.InvariantError) {
            throw FatalError(e.message ?: "raft invariant", e)
        }
        val s = n.core.snapshot
        try {
            n.storage.compact(zmqnode.storage.Snapshot(s.index, s.term, s.data, s.membership))
        } catch (e: zmqnode.storage.CorruptionError) {
            throw FatalError(e.message ?: "storage corruption", e)
        } catch (e: zmqnode.storage.BrokenError) {
            throw FatalError(e.message ?: "storage broken", e)
        } catch (e: Exception) {
            n.log.error("zmqnode.compaction", "log compaction failed; keeping the log as it is: ${e.message}")
            return
        }
        compactions++
        n.log.info("zmqnode.compaction", "node ${n.id}: compacted the log through entry ${run.index} " +
            "(${n.registry.models.size} models in the snapshot)")
    }

    /** Waits for the fsyncs in flight (at shutdown). */
    fun waitIdle() {
        for (s in syncs) s.done.get()
        running?.sync?.done?.get()
    }
}
