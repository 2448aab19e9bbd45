// Interop with the Python node's storage (go/storage/golden_test.go, damage_test.go): the golden
// directories ../go/storage/testdata/dirs were written by the Python classes (testdata/gen.py),
// and cases.json records what Python made of them. The Kotlin code must get the same values, the
// same errors (the same words), repair or refuse as Python did, and write the same bytes.
package zmqnode.storage

import java.io.File
import java.nio.file.Files
import java.security.MessageDigest
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

internal const val STORAGE_TESTDATA = "../go/storage/testdata"

internal object G {
    val cases: PyJson.PyObject by lazy {
        PyJson.loads(File("$STORAGE_TESTDATA/cases.json").readBytes()) as PyJson.PyObject
    }

    fun obj(v: Any?): PyJson.PyObject = v as PyJson.PyObject
    fun list(v: Any?): List<*> = v as List<*>
    fun str(v: Any?): String = v as String
    fun num(v: Any?): Long = java.lang.Long.parseUnsignedLong((v as PyJson.PyNumber).literal)
    fun int(v: Any?): Int = (v as PyJson.PyNumber).literal.toInt()

    fun unhex(s: String): ByteArray = ByteArray(s.length / 2) { Integer.parseInt(s.substring(2 * it, 2 * it + 2), 16).toByte() }
    fun hex(b: ByteArray): String = b.joinToString("") { "%02x".format(it.toInt() and 0xff) }

    fun entry(v: Any?): Entry {
        val o = obj(v)
        val kind = EntryKind.fromPythonName(str(o["kind"])) ?: fail("unknown kind ${o["kind"]}")
        return Entry(num(o["index"]), num(o["term"]), kind, unhex(str(o["data"])))
    }

    fun snapshot(v: Any?): Snapshot? {
        if (v == null) return null
        val o = obj(v)
        return Snapshot(num(o["index"]), num(o["term"]), unhex(str(o["data"])), unhex(str(o["membership"])))
    }

    fun tempDir(): File = Files.createTempDirectory("kt-storage-test").toFile()

    /** Copies a committed case (hidden files included) to [dst]. */
    fun copyDir(src: File, dst: File) {
        src.walkTopDown().forEach { f ->
            val target = File(dst, f.relativeTo(src).path)
            if (f.isDirectory) target.mkdirs() else f.copyTo(target, overwrite = true)
        }
    }

    /** gen.py's files_of: relative path -> SHA-256 hex. */
    fun fileDigests(dir: File): Map<String, String> {
        val out = java.util.TreeMap<String, String>()
        if (!dir.exists()) return out
        dir.walkTopDown().filter { it.isFile }.forEach { f ->
            out[f.relativeTo(dir).path.replace(File.separatorChar, '/')] =
                hex(MessageDigest.getInstance("SHA-256").digest(f.readBytes()))
        }
        return out
    }

    fun digestMap(v: Any?): Map<String, String> {
        val out = java.util.TreeMap<String, String>()
        for ((k, x) in obj(v).map) out[k] = str(x)
        return out
    }
}

class StorageGoldenTest {
    fun testGoldenOpenMatchesPython() {
        val open = G.obj(G.cases["open"])
        assertEquals(89, open.map.size)
        val failures = ArrayList<String>()
        val base = G.tempDir()
        try {
            for (name in open.keys.sorted()) {
                val want = G.obj(open[name])
                val dir = File(base, name)
                if (want["absent"] != true) G.copyDir(File("$STORAGE_TESTDATA/dirs/open/$name"), dir)
                val problems = checkOpenCase(dir, want)
                if (problems.isNotEmpty()) failures.add("$name: " + problems.joinToString("; "))
            }
        } finally {
            base.deleteRecursively()
        }
        if (failures.isNotEmpty()) fail("${failures.size} of ${open.map.size} cases differ:\n" + failures.joinToString("\n"))
    }

    private fun checkOpenCase(dir: File, want: PyJson.PyObject): List<String> {
        val problems = ArrayList<String>()
        fun fill(s: String) = s.replace("{dir}", dir.path)
        fun check(what: String, got: Any?, expected: Any?) {
            if (got != expected) problems.add("$what = $got\n      want $expected")
        }
        val warned = ArrayList<String>()
        val s = NodeStorage(dir.path)
        s.warn = { warned.add(it) }
        if (want["error"] != null) {
            try {
                s.open()
                problems.add("open() succeeded, want a CorruptionError")
            } catch (c: CorruptionError) {
                check("path", c.path, fill(G.str(want["path"])))
                check("advice", c.advice, G.str(want["advice"]))
                check("problem", c.problem, fill(G.str(want["problem"])))
            }
        } else {
            val got = s.open()
            try {
                val hs = G.obj(want["hard_state"])
                check("hard state", got.hardState, HardState(G.num(hs["term"]), G.str(hs["vote"])))
                check("snapshot", got.snapshot, G.snapshot(want["snapshot"]))
                check("entries", got.entries, G.list(want["entries"]).map { G.entry(it) })
                val warnings = G.list(want["warnings"]).map { fill(G.str(it)) }
                check("warnings", got.warnings, warnings)
                check("logged warnings", warned, warnings)
                check("log first index", s.log.firstIndex, G.num(want["first_index"]))
                check("log last index", s.log.lastIndex, G.num(want["last_index"]))
            } finally {
                s.close()
            }
        }
        // What open left on disk (repairs included) is byte-identical.
        check("files after open", G.fileDigests(dir), G.digestMap(want["after"]))
        return problems
    }

    fun testGoldenWritesAreByteIdentical() {
        val writes = G.obj(G.cases["write"])
        assertEquals(5, writes.map.size)
        for ((name, c) in writes.map) {
            val base = G.tempDir()
            try {
                val dir = File(base, name)
                val s = NodeStorage(dir.path)
                s.open()
                for (opv in G.list(G.obj(c)["ops"])) {
                    val op = G.obj(opv)
                    when (op["op"]) {
                        "persist" -> {
                            val hs = op["hard_state"]?.let { HardState(G.num(G.obj(it)["term"]), G.str(G.obj(it)["vote"])) }
                            val entries = (op["entries"] as List<*>?)?.map { G.entry(it) } ?: emptyList()
                            s.persist(Ready(hs, entries, G.snapshot(op["snapshot"])))
                        }
                        "compact" -> s.compact(G.snapshot(op["snapshot"])!!)
                        else -> fail("unknown op ${op["op"]}")
                    }
                }
                s.close()
                val want = G.fileDigests(File("$STORAGE_TESTDATA/dirs/write/$name"))
                val got = G.fileDigests(dir)
                assertEquals(want, got, "write case $name")
                assertEquals(G.list(G.obj(c)["files"]).map { G.str(it) }, got.keys.toList(), "write case $name: file names")
            } finally {
                base.deleteRecursively()
            }
        }
    }

    fun testGoldenEncodings() {
        val c = G.obj(G.cases["encodings"])
        var n = 0
        for (hv in G.list(c["hard_states"])) {
            val h = G.obj(hv)
            val hs = HardState(G.num(h["term"]), G.str(h["vote"]))
            val got = encodeHardState(hs)
            assertEquals(h["bytes"], G.hex(got), "encodeHardState($hs)")
            assertEquals(hs, decodeHardState("x", got))
            n++
        }
        for (hv in G.list(c["headers"])) {
            val h = G.obj(hv)
            assertEquals(h["bytes"], G.hex(encodeLogHeader(G.num(h["first_index"]))))
            n++
        }
        for (rv in G.list(c["records"])) {
            val r = G.obj(rv)
            assertEquals(r["bytes"], G.hex(encodeRecord(G.entry(r["entry"]))))
            n++
        }
        for (sv in G.list(c["snapshots"])) {
            val s = G.obj(sv)
            val snap = G.snapshot(s["snapshot"])!!
            assertEquals(s["bytes"], G.hex(encodeSnapshot(snap)))
            assertEquals(snap, decodeSnapshot("x", G.unhex(G.str(s["bytes"]))))
            n++
        }
        assertTrue(n > 10, "only $n encodings")
    }

    fun testGoldenSmallFiles() {
        val c = G.obj(G.cases["small"])
        val golden = File("$STORAGE_TESTDATA/dirs/small")
        val modelIds = G.list(c["model_ids"]).map { G.str(it) }
        val models = G.obj(c["models"])
        val memberKeys = G.list(c["member_keys"]).map { G.str(it) }
        val joinedAt = G.num(c["joined_at"])
        // Read in place (the directory exists and holds no temp file: nothing is written).
        val store = ModelStore(File(golden, "models").path)
        assertEquals(modelIds, store.ids())
        for ((id, data) in models.map) assertEquals(data, G.hex(store.read(id)), "model $id")
        assertEquals(memberKeys, MemberKeys(golden.path).reload())
        assertEquals(joinedAt, loadJoinedAt(golden.path))

        // Written by Kotlin, the same bytes.
        val dir = G.tempDir()
        try {
            val mine = ModelStore(File(dir, "models").path)
            for ((id, data) in models.map) mine.write(id, G.unhex(G.str(data)), true)
            MemberKeys(dir.path).write(memberKeys)
            saveJoinedAt(dir.path, joinedAt)
            val want = java.util.TreeMap(G.fileDigests(golden))
            want.remove("models/stray.txt")
            want.remove("models/bad id!.bin")
            assertEquals(want, G.fileDigests(dir))
        } finally {
            dir.deleteRecursively()
        }
    }

    /** What raft_state.json's reader makes of odd JSON texts: the value (as Python's repr) or
     *  Python's exact error. */
    fun testGoldenJsonLoadsMatchesPython() {
        val cases = G.list(G.cases["json"])
        assertEquals(81, cases.size)
        val failures = ArrayList<String>()
        for (cv in cases) {
            val c = G.obj(cv)
            val input = G.unhex(G.str(c["input"]))
            val shown = String(input, Charsets.ISO_8859_1)
            try {
                val v = PyJson.loads(input)
                if (c["error"] != null) failures.add("loads($shown) = ${PyJson.repr(v)}, want error ${c["error"]}")
                else if (PyJson.repr(v) != c["repr"] || PyJson.typeName(v) != c["type"]) {
                    failures.add("loads($shown) = ${PyJson.repr(v)} (${PyJson.typeName(v)}), want ${c["repr"]} (${c["type"]})")
                }
            } catch (e: PyJson.DecodeError) {
                if (e.message != c["error"]) failures.add("loads($shown) raised ${e.message}, want ${c["error"] ?: c["repr"]}")
            }
        }
        if (failures.isNotEmpty()) fail(failures.joinToString("\n"))
    }

    /** 300 random kinds of damage (bit flips, cuts, garbage, zeros, stray records) to one healthy
     *  log; for each, Python's LogFile.open repaired a torn tail or refused the file, and the
     *  Kotlin LogFile must do the same, with the same words. */
    fun testRandomLogDamageIsDecidedAsPythonDecides() {
        val cases = G.list(G.obj(G.cases["damage"])["cases"])
        assertEquals(300, cases.size)
        val healthy = File("$STORAGE_TESTDATA/dirs/damage/raft.log").readBytes()
        val dir = G.tempDir()
        val failures = ArrayList<String>()
        try {
            for ((n, cv) in cases.withIndex()) {
                val c = G.obj(cv)
                val path = File(dir, "raft.log")
                path.writeBytes(applyDamage(healthy, G.list(c["damage"])))
                val want = G.obj(c["result"])
                val l = LogFile(path.path, FsyncStats().apply { syncer = {} }) // decisions only: no real fsync
                l.warn = {}
                val contents = try {
                    l.open()
                } catch (e: CorruptionError) {
                    if (e.problem != want["problem"]) failures.add("case $n: problem ${e.problem}\n   want ${want["problem"]}")
                    continue
                }
                l.close()
                if (want["problem"] != null) {
                    failures.add("case $n: opened, want problem ${want["problem"]}")
                    continue
                }
                val digest = MessageDigest.getInstance("SHA-256")
                for (e in contents.entries) {
                    val rec = encodeRecord(e)
                    digest.update(rec, 8, rec.size - 8) // index, term, kind code, data
                }
                val got = listOf(contents.entries.size.toLong(), l.firstIndex, G.hex(digest.digest()),
                    contents.warnings, contents.truncatedBytes.toLong(), path.length())
                val expected = listOf(G.num(want["entries"]), G.num(want["first_index"]), want["digest"],
                    G.list(want["warnings"] ?: emptyList<String>()).map { G.str(it).replace("{path}", path.path) },
                    G.num(want["truncated"]), G.num(want["size"]))
                if (got != expected) failures.add("case $n ${c["damage"]?.let { PyJson.repr(it) }}:\n   got $got\n  want $expected")
            }
        } finally {
            dir.deleteRecursively()
        }
        if (failures.isNotEmpty()) fail("${failures.size} of 300 differ:\n" + failures.joinToString("\n"))
    }

    private fun applyDamage(data: ByteArray, damage: List<*>): ByteArray {
        var buf = data.copyOf()
        for (dv in damage) {
            val d = G.obj(dv)
            when (d["op"]) {
                "flip" -> {
                    val offset = G.int(d["offset"])
                    if (offset < buf.size) buf[offset] = (buf[offset].toInt() xor (1 shl G.int(d["bit"]))).toByte()
                }
                "cut" -> {
                    val size = G.int(d["size"])
                    if (size < buf.size) buf = buf.copyOf(size)
                }
                "append" -> buf += G.unhex(G.str(d["data"]))
                "write" -> {
                    val patch = G.unhex(G.str(d["data"]))
                    val offset = G.int(d["offset"])
                    if (buf.size < offset + patch.size) buf = buf.copyOf(offset + patch.size)
                    patch.copyInto(buf, offset)
                }
                else -> fail("unknown damage ${d["op"]}")
            }
        }
        return buf
    }
}
