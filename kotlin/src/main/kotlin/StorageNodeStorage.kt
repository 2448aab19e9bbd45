// Durable storage for one node: hard state, log and snapshot together (go/storage/nodestorage.go,
// zmqnode/storage/node_storage.py; docs/FORMAT.md §11).
package zmqnode.storage

import java.io.File

const val HARD_STATE_FILE_NAME = "raft_state.json"
const val LOG_FILE_NAME = "raft.log"
const val SNAPSHOT_DIR_NAME = "snapshot"
const val MODELS_DIR_NAME = "models"

private const val HARD_STATE_DIR_ADVICE = "Restore the whole storage dir from one backup (raft_state.json alone is not " +
    "enough: it must be at least as new as raft.log) or $REJOIN."
private const val LOG_DIR_ADVICE = "Restore the whole storage dir from one backup or $REJOIN."

/**
 * Durable storage for one node. One event loop uses it (not safe for concurrent use, except
 * [stats]). open once at start-up, persist for every Ready (before sending its messages), compact
 * after the state machine took a snapshot. Every method returns only once what it wrote is
 * durable.
 *
 * Invariant kept on disk: the log continues right after the stored snapshot (raft.log's first
 * index is snapshot.index + 1, or 1 without one). A crash between writing a snapshot and
 * trimming the log breaks it for a moment; open finishes the job.
 */
class NodeStorage(val dir: String) {
    val stats = FsyncStats()
    val hardStateFile = HardStateFile(File(dir, HARD_STATE_FILE_NAME).path, stats)
    val snapshots = SnapshotStore(File(dir, SNAPSHOT_DIR_NAME).path, stats)
    val log = LogFile(File(dir, LOG_FILE_NAME).path, stats)
    /** Told each warning open logs (Python logs them on "zmqnode.storage" at WARNING); standard
     *  error when null. */
    var warn: ((String) -> Unit)? = null

    /** The stored snapshot, if any. */
    var snapshot: Snapshot? = null
        private set
    private var isOpen = false

    /** The directory of the model files. */
    val modelsDir: String get() = File(dir, MODELS_DIR_NAME).path

    /**
     * Creates the directory if needed, loads everything and repairs what a crash left. Throws
     * CorruptionError when a file is damaged in a way that cannot be repaired without losing
     * acknowledged data, or when the files disagree in a way that could make this node vote twice
     * in one term. The checks run in Python's order, so both report the same problem first.
     */
    fun open(): Recovered {
        if (isOpen) throw AlreadyOpenError("$dir is already open")
        ensureDir(dir, stats)
        removeStaleTemps(dir)
        val hs = hardStateFile.load()
        val snap = snapshots.load()
        val logExisted = File(log.path).exists()
        log.warn = warn
        val contents = log.open()
        val result: Pair<List<Entry>, List<String>>
        try {
            result = recover(hs, snap, contents.entries, logExisted)
        } catch (e: Throwable) {
            try { log.close() } catch (_: Throwable) {}
            throw e
        }
        snapshot = snap
        isOpen = true
        return Recovered(hs, snap, result.first, contents.warnings + result.second)
    }

    private fun recover(hs: HardState, snap: Snapshot?, entries: List<Entry>, logExisted: Boolean): Pair<List<Entry>, List<String>> {
        checkHardState(hs, snap, entries, logExisted)
        val (kept, repairs) = reconcile(snap, entries)
        val all = ArrayList(repairs)
        if (snap == null) all.addAll(checkModelsAgainstLog(kept))
        return Pair(kept, all)
    }

    /**
     * Refuses a term and vote that cannot be this node's latest: persist makes the hard state
     * durable before the snapshot and the entries of every Ready, so on a healthy disk
     * raft_state.json exists whenever the log holds an entry or a snapshot is stored, and its term
     * is at least every term in them; and raft.log is created before any term is saved.
     */
    private fun checkHardState(hs: HardState, snap: Snapshot?, entries: List<Entry>, logExisted: Boolean) {
        val path = hardStateFile.path
        var highest = if (entries.isNotEmpty()) entries.last().term else 0L
        if (snap != null && ucmp(snap.term, highest) > 0) highest = snap.term
        val holds = when {
            entries.isNotEmpty() -> "${log.path} holds entries ${u64(entries.first().index)} to ${u64(entries.last().index)}"
            snap != null -> "${snapshots.path} holds a snapshot through entry ${u64(snap.index)}"
            else -> ""
        }
        if (!hardStateFile.found && holds != "") {
            throw CorruptionError(path, "is missing, yet $holds: the node's current term and vote are " +
                "lost, and starting without them could make it vote twice in one term", HARD_STATE_DIR_ADVICE)
        }
        if (ucmp(hs.term, highest) < 0) {
            throw CorruptionError(path, "says the current term is ${u64(hs.term)}, yet $holds of term ${u64(highest)}: the file is " +
                "older than the log (restored alone from an old backup?), so the vote it holds may not be " +
                "the node's last", HARD_STATE_DIR_ADVICE)
        }
        if (!logExisted && hs.term != 0L) {
            throw CorruptionError(log.path, "was missing (an empty one was created), yet $path says this " +
                "node has reached term ${u64(hs.term)}: the log and every entry it acknowledged are lost", LOG_DIR_ADVICE)
        }
    }

    /** Warns when models/ holds more files than the log has commands (without a snapshot every
     *  model file was written by one committed command of this log, so the log lost entries at
     *  its end, cut at a record boundary). Counts every *.bin name that is not a temp file, as
     *  Python does. */
    private fun checkModelsAgainstLog(entries: List<Entry>): List<String> {
        val names = listNames(modelsDir) ?: return emptyList()
        val files = names.count { it.endsWith(MODEL_SUFFIX) && !isTempName(it) }
        val commands = entries.count { it.kind == EntryKind.COMMAND }
        if (files <= commands) return emptyList()
        val last = if (entries.isNotEmpty()) entries.last().index else 0L
        val message = "${log.path}: lost entries at its end: it holds $commands model commands (ends at entry ${u64(last)}) " +
            "but $modelsDir holds $files model files those commands wrote, so the file was cut short at a record " +
            "boundary (a disk or filesystem that lost confirmed writes?); the leader will send the lost " +
            "entries again"
        warn(warn, message)
        return listOf(message)
    }

    /** Makes the log continue right after the snapshot; returns the entries left and what changed. */
    private fun reconcile(snap: Snapshot?, entries: List<Entry>): Pair<List<Entry>, List<String>> {
        val base = snap?.index ?: 0L
        val first = log.firstIndex
        if (first == base + 1) return Pair(entries, emptyList())
        if (ucmp(first, base + 1) > 0) {
            val where = if (snap != null) "the snapshot in ${snapshots.path} ends at ${u64(base)}"
            else "there is no snapshot in ${snapshots.dir}"
            throw CorruptionError(log.path, "starts at entry ${u64(first)}, but $where: entries ${u64(base + 1)} to ${u64(first - 1)} " +
                "are missing", "Was the snapshot directory removed or replaced? Put it back from a backup or $REJOIN.")
        }
        // first <= base: a crash came between saving the snapshot and trimming the log (base > 0
        // here, so there is a snapshot).
        val message: String
        var kept: List<Entry> = emptyList()
        val term = log.termAt(base)
        if (term != null && term == snap!!.term) {
            // Local compaction (or a snapshot matching our log): finish trimming.
            log.compact(base)
            message = "${log.path}: finished a compaction through entry ${u64(base)} that a crash interrupted"
            kept = entries.subList((base + 1 - first).toInt(), entries.size)
        } else {
            // An installed snapshot replaces the whole log (Raft §7).
            log.reset(base + 1)
            message = "${log.path}: dropped ${entries.size} entries that the installed snapshot at ${u64(base)} replaces " +
                "(a crash interrupted the install)"
        }
        warn(warn, message)
        return Pair(kept, listOf(message))
    }

    /** Closes the log (syncing it). Safe to call twice. */
    fun close() {
        isOpen = false
        log.close()
    }

    private fun checkOpen() {
        if (!isOpen) throw NotOpenError("$dir: call open first")
    }

    /**
     * Makes [rd]'s hard state, snapshot and entries durable, in that order (the hard state first,
     * so a crash leaves a term at least as high as every term in the snapshot and the log; the
     * snapshot before the entries because it replaces the whole log). Each file is fsynced once
     * per call, however many entries.
     */
    fun persist(rd: Ready) {
        checkOpen()
        rd.hardState?.let { hardStateFile.save(it) }
        rd.snapshot?.let {
            snapshots.save(it)
            log.reset(it.index + 1)
            snapshot = it
        }
        if (rd.entries.isNotEmpty()) {
            log.append(rd.entries)
            log.sync()
        }
    }

    /** Stores a snapshot the local state machine took, then drops the log up to it. Entries
     *  after snap.index stay. A snapshot no newer than the stored one is ignored; one beyond the
     *  log is refused (InvalidArgumentError). */
    fun compact(snap: Snapshot) {
        checkOpen()
        val current = snapshot
        if (current != null && ucmp(snap.index, current.index) <= 0) return
        if (ucmp(snap.index, log.lastIndex) > 0) {
            throw InvalidArgumentError("cannot compact through ${u64(snap.index)}: the log ends at ${u64(log.lastIndex)}")
        }
        snapshots.save(snap)
        log.compact(snap.index)
        snapshot = snap
    }
}
