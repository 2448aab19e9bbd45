// Unit tests of zmqnode.storage (go/storage/atomic_test.go, logfile_test.go,
// nodestorage_test.go): atomic writes, fsync counts and order, the log's rules, crash and
// failure behaviour, small files.
package zmqnode.storage

import java.io.File
import java.io.IOException
import java.io.RandomAccessFile
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermission
import java.time.LocalDateTime
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

internal fun ents(start: Long, vararg terms: Long): List<Entry> =
    terms.mapIndexed { k, term ->
        val i = start + k
        Entry(i, term, EntryKind.COMMAND, byteArrayOf(i.toByte(), 0, 0xff.toByte()))
    }

internal inline fun <T> withTempDir(body: (File) -> T): T {
    val dir = Files.createTempDirectory("kt-storage-unit").toFile()
    try {
        return body(dir)
    } finally {
        dir.deleteRecursively()
    }
}

internal fun openLog(path: String): Pair<LogFile, LogContents> {
    val l = LogFile(path)
    l.warn = {}
    return Pair(l, l.open())
}

internal fun appendSync(l: LogFile, entries: List<Entry>) {
    l.append(entries)
    l.sync()
}

internal fun openNode(dir: String): Pair<NodeStorage, Recovered> {
    val s = NodeStorage(dir)
    s.warn = {}
    return Pair(s, s.open())
}

private fun failingSyncer(): (java.nio.channels.FileChannel) -> Unit = { throw IOException("EIO (simulated)") }

class StorageAtomicTest {
    fun testAtomicWriteCreatesThenReplacesWithoutTempFiles() = withTempDir { dir ->
        val path = File(dir, "f")
        val stats = FsyncStats()
        for (content in listOf("one", "two, longer")) {
            atomicWrite(path.path, content.toByteArray(Charsets.UTF_8), stats, true)
            assertEquals(content, path.readText(Charsets.UTF_8))
        }
        assertEquals(listOf("f"), dir.list()!!.toList())
        assertEquals(4, stats.count(), "the file and the directory, twice")
        assertEquals(setOf(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
            Files.getPosixFilePermissions(path.toPath()), "mode 0600 as Python's mkstemp")
    }

    fun testAtomicWriteReplacesByRenameNotInPlace() = withTempDir { dir ->
        val path = File(dir, "f").path
        atomicWrite(path, "old".toByteArray(Charsets.UTF_8), null, true)
        java.io.FileInputStream(path).use { reader ->
            atomicWrite(path, "new".toByteArray(Charsets.UTF_8), null, true)
            val buf = ByteArray(8)
            val n = reader.read(buf)
            assertEquals("old", String(buf, 0, n, Charsets.UTF_8), "an open reader sees the file changed in place")
        }
    }

    fun testNonDurableAtomicWriteSkipsFsync() = withTempDir { dir ->
        val stats = FsyncStats()
        atomicWrite(File(dir, "f").path, byteArrayOf(1), stats, false)
        assertEquals(0, stats.count())
    }

    fun testFailedFsyncKeepsTheOldFileAndRemovesTheTemp() = withTempDir { dir ->
        val path = File(dir, "f")
        atomicWrite(path.path, "old".toByteArray(Charsets.UTF_8), null, true)
        val stats = FsyncStats()
        stats.syncer = failingSyncer()
        assertFailsWith<IOException> { atomicWrite(path.path, "new".toByteArray(Charsets.UTF_8), stats, true) }
        assertEquals("old", path.readText(Charsets.UTF_8))
        assertEquals(listOf("f"), dir.list()!!.toList())
    }

    fun testCrashBeforeRenameLeavesTheOldFile() = withTempDir { dir ->
        val path = File(dir, HARD_STATE_FILE_NAME).path
        atomicWrite(path, encodeHardState(HardState(3, "a")), null, true)
        StorageHooks.crashHook = { point, _ -> point == "before-rename" }
        try {
            assertFailsWith<SimulatedCrash> { atomicWrite(path, encodeHardState(HardState(4, "b")), null, true) }
        } finally {
            StorageHooks.crashHook = null
        }
        assertEquals(HardState(3, "a"), HardStateFile(path).load())
        val names = dir.list()!!.sorted()
        assertEquals(2, names.size, "$names")
        assertTrue(isTempName(names[0]), "$names")
        assertEquals(1, removeStaleTemps(dir.path).size)
    }

    /** The same crash in a real process: the child JVM halts (no cleanup, no finally blocks, no
     *  shutdown hooks) after the temporary file is written and fsynced, before the rename. */
    fun testKilledBetweenTempWriteAndRenameLeavesTheOldFile() = withTempDir { base ->
        val dir = File(base, "node").path
        val (s, _) = openNode(dir)
        val old = HardState(2, "old")
        s.persist(Ready(old, listOf(Entry(1, 2))))
        s.close()
        val before = File(dir, HARD_STATE_FILE_NAME).readBytes()
        val java = File(System.getProperty("java.home"), "bin/java").path
        val child = ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), "zmqnode.storage.StorageCrashChild", dir)
            .redirectErrorStream(true).start()
        val output = child.inputStream.readBytes().toString(Charsets.UTF_8)
        assertEquals(137, child.waitFor(), "child: $output")
        assertTrue(before.contentEquals(File(dir, HARD_STATE_FILE_NAME).readBytes()), "raft_state.json changed")
        assertEquals(1, File(dir).list()!!.count { isTempName(it) })
        val (s2, r) = openNode(dir)
        assertEquals(old, r.hardState)
        assertEquals(1, r.entries.size)
        s2.close()
        assertEquals(0, File(dir).list()!!.count { isTempName(it) }, "open left the temp file")
    }

    fun testEnsureDirCreatesParentsAndFsyncsEachNewEntry() = withTempDir { base ->
        val stats = FsyncStats()
        ensureDir(File(base, "a/b/c").path, stats)
        assertTrue(File(base, "a/b/c").isDirectory)
        assertEquals(3, stats.count(), "one parent per new directory")
        ensureDir(File(base, "a/b/c").path, stats)
        assertEquals(3, stats.count(), "an existing directory costs nothing")
    }

    fun testStaleTempNames() {
        for ((name, want) in mapOf(".raft.log.abc.tmp" to true, "raft.log.tmp" to false, ".hidden" to false, "member_keys.tmp" to false)) {
            assertEquals(want, isTempName(name), name)
        }
    }

    fun testSyncFilesSkipsMissingFilesAndFsyncsTheDirectory() = withTempDir { dir ->
        File(dir, "a.bin").writeBytes(byteArrayOf(1))
        val stats = FsyncStats()
        syncFiles(listOf(File(dir, "a.bin").path, File(dir, "gone.bin").path), dir.path, stats)
        assertEquals(2, stats.count())
    }
}

/** The child process of testKilledBetweenTempWriteAndRenameLeavesTheOldFile. */
object StorageCrashChild {
    @JvmStatic
    fun main(args: Array<String>) {
        StorageHooks.crashHook = { point, _ ->
            if (point == "before-rename") Runtime.getRuntime().halt(137)
            false
        }
        val s = NodeStorage(args[0])
        s.warn = {}
        try {
            s.open()
        } catch (e: Throwable) {
            Runtime.getRuntime().halt(3)
        }
        s.persist(Ready(HardState(9, "new")))
        Runtime.getRuntime().halt(4) // not reached
    }
}

class StorageLogFileTest {
    fun testNewLogIsEmptyAndStartsAtIndex1() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, c) = openLog(path.path)
        assertEquals(0, c.entries.size)
        assertEquals(1L, l.firstIndex)
        assertEquals(0L, l.lastIndex)
        assertEquals(24L, l.size)
        assertTrue(path.readBytes().contentEquals(encodeLogHeader(1)))
        l.close()
    }

    fun testEntriesSurviveCloseAndReopen() = withTempDir { dir ->
        val path = File(dir, "raft.log").path
        val (l, _) = openLog(path)
        val want = ents(1, 1, 1) + Entry(3, 2, EntryKind.NOOP) + Entry(4, 2, EntryKind.CONFIG, "m".toByteArray(Charsets.UTF_8))
        appendSync(l, want)
        l.close()
        val (l2, c) = openLog(path)
        assertEquals(want, c.entries)
        l2.close()
    }

    fun testManyAppendsNeedOneFsync() = withTempDir { dir ->
        val (l, _) = openLog(File(dir, "raft.log").path)
        val before = l.stats.count()
        for (i in 1L..5L) l.append(ents(i, 1))
        assertTrue(l.sync(), "sync had nothing to do")
        assertFalse(l.sync(), "a second sync synced again")
        assertEquals(1, l.stats.count() - before)
        l.close()
    }

    fun testAppendAtAnExistingIndexReplacesTheSuffix() = withTempDir { dir ->
        val path = File(dir, "raft.log").path
        val (l, _) = openLog(path)
        appendSync(l, ents(1, 1, 1, 1, 1))
        appendSync(l, ents(3, 2))
        assertEquals(3L, l.lastIndex)
        l.close()
        val (l2, c) = openLog(path)
        val want = ents(1, 1, 1) + ents(3, 2)
        assertEquals(want, c.entries)
        l2.close()
        assertTrue(File(path).readBytes().contentEquals(encodeLog(1, want)), "file is not the header and the three records")
    }

    fun testInvalidAppendsAreRefusedAndLeaveTheFileAlone() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, _) = openLog(path.path)
        appendSync(l, ents(1, 2, 2))
        val before = path.readBytes()
        for ((name, batch) in mapOf(
            "gap" to ents(4, 2),
            "not consecutive" to listOf(ents(3, 2)[0], ents(5, 2)[0]),
            "lower term" to ents(3, 1),
            "compacted" to ents(0, 2)
        )) {
            assertFailsWith<InvalidArgumentError>(name) { l.append(batch) }
        }
        assertTrue(path.readBytes().contentEquals(before), "a refused append changed the file")
        l.close()
    }

    fun testAppendBeforeTheFirstIndexIsRefused() = withTempDir { dir ->
        val (l, _) = openLog(File(dir, "raft.log").path)
        appendSync(l, ents(1, 1, 1, 1))
        l.compact(2)
        val e = assertFailsWith<InvalidArgumentError> { l.append(ents(2, 1)) }
        assertTrue(e.message!!.contains("compacted"), e.message)
        l.close()
    }

    fun testAppendsAfterATornTailLandWhereTheTailWas() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, _) = openLog(path.path)
        appendSync(l, ents(1, 1, 1))
        l.close()
        path.appendBytes(byteArrayOf(0x30, 0, 0, 0) + "half a record".toByteArray(Charsets.US_ASCII))
        val (l2, c) = openLog(path.path)
        assertEquals(1, c.warnings.size)
        assertEquals(17, c.truncatedBytes)
        assertTrue(c.warnings[0].contains("dropped 17 bytes"), c.warnings[0])
        appendSync(l2, ents(3, 1))
        l2.close()
        assertTrue(path.readBytes().contentEquals(encodeLog(1, ents(1, 1, 1, 1))), "the new record does not follow the whole ones")
    }

    fun testCompactionKeepsLaterEntriesAndSurvivesReopen() = withTempDir { dir ->
        val path = File(dir, "raft.log").path
        val (l, _) = openLog(path)
        appendSync(l, ents(1, 1, 1, 2, 2, 3))
        l.append(ents(6, 3)) // unsynced: compact makes it durable
        l.compact(3)
        assertEquals(4L, l.firstIndex)
        assertEquals(6L, l.lastIndex)
        assertEquals(3L, l.termAt(5))
        assertNull(l.termAt(3))
        appendSync(l, ents(7, 4))
        l.close()
        val (l2, c) = openLog(path)
        assertEquals(ents(4, 2, 3, 3, 4), c.entries)
        l2.close()
    }

    fun testCompactionPastTheEndLeavesAnEmptyLogContinuingAfterIt() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, _) = openLog(path.path)
        appendSync(l, ents(1, 1, 1))
        l.compact(10)
        assertEquals(11L, l.firstIndex)
        assertEquals(10L, l.lastIndex)
        assertTrue(path.readBytes().contentEquals(encodeLogHeader(11)))
        l.close()
    }

    fun testCompactionChecksTheRecordsItReadsBack() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, _) = openLog(path.path)
        appendSync(l, ents(1, 1, 1, 1, 1))
        // The disk flips a bit in entry 4 while the node runs.
        val offset = encodeLog(1, ents(1, 1, 1, 1)).size + 12L
        RandomAccessFile(path, "rw").use { f ->
            f.seek(offset)
            val b = f.read()
            f.seek(offset)
            f.write(b xor 8)
        }
        val e = assertFailsWith<CorruptionError> { l.compact(2) }
        assertTrue(e.problem.contains("has a damaged record at byte") && e.problem.contains("(entry 4)"), e.problem)
        l.close()
    }

    fun testAFailedFsyncMakesTheLogRefuseFurtherUse() = withTempDir { dir ->
        val (l, _) = openLog(File(dir, "raft.log").path)
        l.append(ents(1, 1))
        val real = l.stats.syncer
        l.stats.syncer = failingSyncer()
        assertFailsWith<IOException> { l.sync() }
        l.stats.syncer = real
        val e = assertFailsWith<BrokenError> { l.sync() }
        assertTrue(e.message!!.contains("an earlier fsync failed"), e.message)
        assertFailsWith<BrokenError> { l.append(ents(2, 1)) }
        l.close()
    }

    fun testOpeningTwiceOrAppendingBeforeOpenIsAnError() = withTempDir { dir ->
        val path = File(dir, "raft.log").path
        assertFailsWith<NotOpenError> { LogFile(path).append(ents(1, 1)) }
        val (l, _) = openLog(path)
        assertFailsWith<AlreadyOpenError> { l.open() }
        l.close()
    }

    fun testDamageFarFromTheTailIsFoundInALargeLog() = withTempDir { dir ->
        val path = File(dir, "raft.log")
        val (l, _) = openLog(path.path)
        appendSync(l, ents(1, *LongArray(20000) { 1L }))
        l.close()
        RandomAccessFile(path, "rw").use { f ->
            f.seek(24 + 8L) // entry 1's index field
            f.write(byteArrayOf(0xff.toByte(), 0xff.toByte()))
        }
        val e = assertFailsWith<CorruptionError> { LogFile(path.path).open() }
        assertTrue(e.problem.contains("damaged in the middle: the record at byte 24 (entry 1)"), e.problem)
    }

    fun testIndexesAndTermsAboveTwoToThe63AreUnsigned() = withTempDir { dir ->
        // u64 fields held in Long: a term >= 2^63 is higher than 1, not negative.
        val path = File(dir, "raft.log").path
        val (l, _) = openLog(path)
        val big = Long.MIN_VALUE + 5 // 2^63 + 5
        appendSync(l, listOf(Entry(1, 1), Entry(2, big)))
        assertFailsWith<InvalidArgumentError> { l.append(listOf(Entry(3, 7))) }
        l.close()
        val (l2, c) = openLog(path)
        assertEquals(big, c.entries[1].term)
        l2.close()
        assertEquals("9223372036854775813", u64String(big))
    }

    private fun u64String(v: Long) = java.lang.Long.toUnsignedString(v)
}

class StorageNodeTest {
    fun testEverythingPersistedIsRecoveredAfterRestart() = withTempDir { base ->
        val dir = File(base, "node").path
        val (s, r) = openNode(dir)
        assertEquals(HardState(), r.hardState)
        assertNull(r.snapshot)
        assertEquals(0, r.entries.size)
        val hs = HardState(2, "127.0.0.1:9002")
        s.persist(Ready(hs, ents(1, 1, 2, 2)))
        s.close()
        val (s2, r2) = openNode(dir)
        assertEquals(hs, r2.hardState)
        assertEquals(ents(1, 1, 2, 2), r2.entries)
        s2.close()
    }

    fun testOneReadyWithManyEntriesCostsOneFsync() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        val before = s.stats.count()
        s.persist(Ready(entries = ents(1, 0, 0, 0, 0, 0)))
        assertEquals(1, s.stats.count() - before)
        s.close()
    }

    fun testAnUnchangedHardStateIsNotRewritten() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        val hs = HardState(1, "a")
        s.persist(Ready(hs))
        val before = s.stats.count()
        s.persist(Ready(HardState(1, "a")))
        assertEquals(before, s.stats.count(), "the same hard state was written again")
        s.close()
    }

    fun testAReadyWithASnapshotReplacesTheWholeLog() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        s.persist(Ready(HardState(3), ents(1, 1, 1, 1)))
        val snap = Snapshot(10, 3, "state".toByteArray(Charsets.UTF_8), "m".toByteArray(Charsets.UTF_8))
        s.persist(Ready(snapshot = snap, entries = ents(11, 3)))
        s.close()
        val (s2, r) = openNode(dir.path)
        assertEquals(snap, r.snapshot)
        assertEquals(ents(11, 3), r.entries)
        assertEquals(11L, s2.log.firstIndex)
        s2.close()
    }

    fun testCompactionOlderOrBeyondTheLog() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        s.persist(Ready(HardState(1), ents(1, 1, 1, 1, 1)))
        assertFailsWith<InvalidArgumentError> { s.compact(Snapshot(9, 1)) }
        s.compact(Snapshot(3, 1, "3".toByteArray(Charsets.UTF_8)))
        s.compact(Snapshot(2, 1, "2".toByteArray(Charsets.UTF_8)))
        assertEquals(3L, s.snapshot!!.index, "an older snapshot undid a compaction")
        assertEquals(4L, s.log.firstIndex)
        s.close()
    }

    fun testPersistBeforeOpenIsAnError() = withTempDir { dir ->
        assertFailsWith<NotOpenError> { NodeStorage(dir.path).persist(Ready(entries = ents(1, 1))) }
        Unit
    }

    fun testCorruptionMessagesNameTheFileTheProblemAndTheRemedy() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        s.persist(Ready(HardState(1), ents(1, 1)))
        s.close()
        File(dir, HARD_STATE_FILE_NAME).writeBytes(ByteArray(0))
        val e = assertFailsWith<CorruptionError> { NodeStorage(dir.path).open() }
        val want = File(dir, HARD_STATE_FILE_NAME).path + " is empty (a crash should never leave it so: it is " +
            "replaced atomically). It holds this node's term and vote; restore it from a backup or " + REJOIN + "."
        assertEquals(want, e.message)
    }

    fun testModelIds() = withTempDir { dir ->
        val store = ModelStore(File(dir, "models").path)
        for (id in listOf("", "../raft_state", "a/b", "a.b", "é", "x".repeat(65))) {
            assertFailsWith<InvalidModelIdError>(id) { store.write(id, ByteArray(0), true) }
            assertFalse(store.exists(id), id)
        }
        val long = "A_-z9" + "x".repeat(59)
        store.write(long, "m".toByteArray(Charsets.UTF_8), false)
        assertTrue(store.exists(long))
        assertEquals(listOf(long), store.ids())
        assertFailsWith<java.nio.file.NoSuchFileException> { store.read("absent") }
        assertEquals("invalid model id '../x': use 1 to 64 letters, digits, '_' or '-'", InvalidModelIdError("../x").message)
    }

    fun testJoinedAtReadsWhatPythonsIntAccepts() = withTempDir { dir ->
        val file = File(dir, JOINED_AT_FILE_NAME)
        for ((content, want) in mapOf("42\n" to 42L, " 7 " to 7L, "+8" to 8L, "1_000" to 1000L, "-3" to 0L,
            "" to 0L, "x" to 0L, "1__0" to 0L, "4.0" to 0L)) {
            file.writeText(content, Charsets.UTF_8)
            assertEquals(want, loadJoinedAt(dir.path), content)
        }
        file.delete()
        assertEquals(0L, loadJoinedAt(dir.path))
        saveJoinedAt(dir.path, 17)
        assertEquals("17\n", file.readText(Charsets.UTF_8))
    }

    fun testPythonSpellings() {
        assertEquals("b\"it's\"", PyJson.bytesRepr("it's".toByteArray(Charsets.UTF_8)))
        assertEquals("b'a\"b\\'c\\x00'", PyJson.bytesRepr("a\"b'c\u0000".toByteArray(Charsets.UTF_8)))
        assertEquals("b'\\xff\\t'", PyJson.bytesRepr(byteArrayOf(0xff.toByte(), 9)))
    }

    fun testLogLineMatchesPythonsFormat() {
        val t = LocalDateTime.of(2026, 12, 6, 20, 43, 57, 123456789)
        assertEquals("2026-12-06 20:43:57,123 WARNING [127.0.0.1:9001] zmqnode.storage: dropped",
            logLine(t, "WARNING", "127.0.0.1:9001", "zmqnode.storage", "dropped"))
        assertEquals("2026-12-06 20:43:57,123 INFO    [n] zmqnode: x", logLine(t, "INFO", "n", "zmqnode", "x"))
        assertEquals("2026-12-06 20:43:57,004 INFO    [n] zmqnode: x", logLine(t.withNano(4_999_999), "INFO", "n", "zmqnode", "x"))
        assertEquals("worker_9001.log", workerLogName(9001))
    }

    fun testTailLogReturnsTheLastLinesAsPythonSplitsThem() = withTempDir { dir ->
        val path = File(dir, workerLogName(9001))
        assertNull(tailLog(path.path, 3))
        path.writeBytes("one\ntwo\r\nthree\rfour\u000cfive\u2028six\n".toByteArray(Charsets.UTF_8))
        assertEquals(listOf("three", "four", "five", "six"), tailLog(path.path, 4))
        assertEquals(listOf("one", "two", "three", "four", "five", "six"), tailLog(path.path, 10))
    }

    fun testPersistWritesHardStateThenSnapshotThenEntries() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        // Which file each fsync hits: the channel's position/size do not name it, so record the
        // directory listing's temp files and the log's size around each fsync instead.
        val synced = ArrayList<String>()
        s.stats.syncer = { ch ->
            val temps = dir.list()!!.filter { isTempName(it) } + (File(dir, SNAPSHOT_DIR_NAME).list()?.filter { isTempName(it) } ?: emptyList())
            synced.add(when {
                temps.any { it.startsWith(".raft_state.json.") } -> "raft_state.json"
                temps.any { it.startsWith(".snapshot.bin.") } -> "snapshot.bin"
                temps.any { it.startsWith(".raft.log.") } -> "raft.log rewritten"
                ch.size() > 24 && ch.size() == File(dir, LOG_FILE_NAME).length() -> "raft.log appended"
                else -> "directory"
            })
            ch.force(true)
        }
        s.persist(Ready(HardState(2), ents(6, 2), Snapshot(5, 2, "s".toByteArray(Charsets.UTF_8))))
        assertEquals(listOf("raft_state.json", "snapshot.bin", "raft.log rewritten", "raft.log appended"),
            synced.filter { it != "directory" }, "fsync order (all: $synced)")
        s.close()
    }

    fun testMemberKeysWriteSortsAndReloadSeesChanges() = withTempDir { dir ->
        val keys = MemberKeys(dir.path)
        assertNull(keys.reload())
        val a = "a".repeat(40)
        val b = "B".repeat(40)
        keys.write(listOf(a, b, a))
        assertEquals("$b\n$a\n", File(dir, MEMBER_KEYS_FILE_NAME).readText(Charsets.UTF_8))
        assertEquals(listOf(b, a), keys.reload())
        assertNull(keys.reload(), "unchanged mtime")
        File(dir, MEMBER_KEYS_FILE_NAME).writeText("short $a\n", Charsets.UTF_8)
        File(dir, MEMBER_KEYS_FILE_NAME).setLastModified(System.currentTimeMillis() + 5000)
        assertEquals(listOf(a), keys.reload())
    }

    fun testSnapshotLengthsAreSummedWithoutWrapping() {
        // u64 data_length + u64 membership_length beyond 2^64: Python's ints print the true sum
        // (checked with snapshot_store.py: the same problem text).
        val raw = encodeSnapshot(Snapshot(3, 2))
        val bb = java.nio.ByteBuffer.wrap(raw).order(java.nio.ByteOrder.LITTLE_ENDIAN)
        bb.putLong(28, -1L) // 2^64 - 1
        bb.putLong(40, 2L)
        val crc = java.util.zip.CRC32()
        crc.update(raw, 0, 52)
        bb.putInt(52, crc.value.toInt())
        val e = assertFailsWith<CorruptionError> { decodeSnapshot("x", raw) }
        assertEquals("holds 0 bytes after its header where it says 18446744073709551617", e.problem)
    }

    fun testAStaleTempFileIsRemovedAtOpen() = withTempDir { dir ->
        val (s, _) = openNode(dir.path)
        s.persist(Ready(HardState(1, "x"), ents(1, 1)))
        s.close()
        File(dir, ".raft_state.json.abc.tmp").writeText("garbage", Charsets.UTF_8)
        File(dir, "models").mkdir()
        File(dir, "models/.m.bin.x.tmp").writeText("garbage", Charsets.UTF_8)
        val (s2, r) = openNode(dir.path)
        assertEquals(HardState(1, "x"), r.hardState)
        assertFalse(File(dir, ".raft_state.json.abc.tmp").exists())
        ModelStore(s2.modelsDir)
        assertFalse(File(dir, "models/.m.bin.x.tmp").exists())
        s2.close()
    }
}
