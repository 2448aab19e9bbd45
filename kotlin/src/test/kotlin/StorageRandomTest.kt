// Random Readys, compactions and restarts against a model of what the disk must hold
// (go/storage/random_test.go); then, when the repository's Python is there (../.venv), the same
// operations replayed with the Python classes (go/storage/testdata/gen.py --replay) must leave
// byte-identical directories.
package zmqnode.storage

import java.io.File
import java.util.Random
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail
import zmqnode.pyfmt.Pyfmt

/** The Ready contract on plain values (tests/test_storage_node.py ModelDisk). */
private class ModelDisk {
    var hs = HardState()
    var snapshot: Snapshot? = null
    var entries: List<Entry> = emptyList()

    val base: Long get() = snapshot?.index ?: 0L

    fun persist(rd: Ready) {
        rd.snapshot?.let {
            snapshot = it
            entries = emptyList()
        }
        rd.hardState?.let { hs = it }
        if (rd.entries.isNotEmpty()) entries = entries.subList(0, (rd.entries[0].index - base - 1).toInt()) + rd.entries
    }

    fun compact(s: Snapshot) {
        entries = entries.subList((s.index - base).toInt(), entries.size).toList()
        snapshot = s
    }
}

private fun hexOf(b: ByteArray) = b.joinToString("") { "%02x".format(it.toInt() and 0xff) }

private fun snapJson(s: Snapshot) =
    "{\"index\": ${s.index}, \"term\": ${s.term}, \"data\": \"${hexOf(s.data)}\", \"membership\": \"${hexOf(s.membership)}\"}"

private fun opJson(rd: Ready): String {
    val hs = rd.hardState?.let { "{\"term\": ${it.term}, \"vote\": ${Pyfmt.quoteAscii(it.vote)}}" } ?: "null"
    val entries = rd.entries.joinToString(", ", "[", "]") {
        "{\"index\": ${it.index}, \"term\": ${it.term}, \"kind\": \"${it.kind.pythonName}\", \"data\": \"${hexOf(it.data)}\"}"
    }
    return "{\"op\": \"persist\", \"hard_state\": $hs, \"entries\": $entries, \"snapshot\": ${rd.snapshot?.let { snapJson(it) } ?: "null"}}"
}

class StorageRandomTest {
    fun testRandomReadysAndRestartsMatchAModelAndPython() {
        val base = java.nio.file.Files.createTempDirectory("kt-storage-random").toFile()
        try {
            run(base)
        } finally {
            base.deleteRecursively()
        }
    }

    private fun run(base: File) {
        val kinds = EntryKind.values()
        val votes = listOf("", "n1", "127.0.0.1:9002", "nœud", "lone \ud800 surrogate")
        val jobs = ArrayList<Pair<String, File>>() // (job JSON, Kotlin dir)
        for (seed in 0L until 2L) { // 2 seeds: each atomic replace costs a journal flush here; go runs 4
            val rng = Random(seed)
            val dir = File(base, "kt$seed")
            var (s, _) = openNode(dir.path)
            s.stats.syncer = {} // content is checked here; fast
            val m = ModelDisk()
            val ops = ArrayList<String>()
            var term = 1L
            val first = Ready(HardState(term))
            m.persist(first)
            s.persist(first)
            ops.add(opJson(first))
            fun check(r: Recovered) {
                assertEquals(m.hs, r.hardState, "seed $seed")
                assertEquals(m.snapshot, r.snapshot, "seed $seed")
                assertEquals(m.entries, r.entries, "seed $seed")
            }
            for (step in 0 until 150) {
                val b = m.base
                val last = b + m.entries.size
                val roll = rng.nextDouble()
                val rd: Ready
                if (roll < 0.05) {
                    val index = if (last > 0) last + rng.nextInt(5) - 1 else 2L
                    if (index <= b) continue
                    val membership = ByteArray(rng.nextInt(3)).also { rng.nextBytes(it) }
                    rd = Ready(snapshot = Snapshot(index, term, "s".toByteArray(Charsets.UTF_8), membership))
                } else if (roll < 0.12 && m.entries.isNotEmpty()) {
                    val index = b + 1 + rng.nextInt((last - b).toInt())
                    val snap = Snapshot(index, m.entries[(index - b - 1).toInt()].term, ByteArray(8).also { rng.nextBytes(it) })
                    m.compact(snap)
                    s.compact(snap)
                    ops.add("{\"op\": \"compact\", \"snapshot\": ${snapJson(snap)}}")
                    continue
                } else if (roll < 0.2) {
                    s.close()
                    val (s2, r) = openNode(dir.path)
                    s = s2
                    s.stats.syncer = {}
                    check(r)
                    ops.add("{\"op\": \"reopen\"}")
                    continue
                } else {
                    if (rng.nextDouble() < 0.2) term++
                    val start = b + 1 + rng.nextInt((last - b).toInt() + 1)
                    val n = 1 + rng.nextInt(6)
                    val entries = (0 until n).map {
                        Entry(start + it, term, kinds[rng.nextInt(3)], ByteArray(rng.nextInt(41)).also { d -> rng.nextBytes(d) })
                    }
                    rd = Ready(HardState(term, votes[rng.nextInt(votes.size)]), entries)
                }
                m.persist(rd)
                s.persist(rd)
                ops.add(opJson(rd))
            }
            s.close()
            val (s3, r) = openNode(dir.path)
            check(r)
            s3.close()
            val pyDir = File(base, "py$seed")
            jobs.add(Pair("{\"ops\": ${ops.joinToString(", ", "[", "]")}, \"dir\": ${Pyfmt.quoteAscii(pyDir.path)}}", dir))
        }
        // The repository's Python: next to the real go/ (check-commit.sh links ../go from a scratch copy).
        val python = File(File("../go").canonicalFile.parentFile, ".venv/bin/python")
        if (!python.exists()) {
            println("StorageRandomTest: no $python: the Python replay is skipped")
            return
        }
        val jobsFile = File(base, "jobs.json")
        jobsFile.writeText(jobs.joinToString(", ", "[", "]") { it.first }, Charsets.UTF_8)
        // Python's fsyncs skipped too (only the bytes are compared): gen.py run with os.fsync a no-op.
        val script = "import os, runpy, sys; os.fsync = lambda fd: None; " +
            "sys.argv = [sys.argv[1], '--replay', sys.argv[2]]; runpy.run_path(sys.argv[0], run_name='__main__')"
        val proc = ProcessBuilder(python.path, "-c", script, "$STORAGE_TESTDATA/gen.py", jobsFile.path)
            .redirectErrorStream(true).start()
        val out = proc.inputStream.readBytes().toString(Charsets.UTF_8)
        if (proc.waitFor() != 0) fail("python replay failed:\n$out")
        for ((seed, job) in jobs.withIndex()) {
            val want = G.fileDigests(File(base, "py$seed"))
            assertTrue(want.isNotEmpty(), "seed $seed: python wrote nothing")
            assertEquals(want, G.fileDigests(job.second), "seed $seed: Kotlin and Python directories differ")
        }
    }
}
