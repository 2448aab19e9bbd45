// Both edges of raft.log's scan window (docs/FORMAT.md §11.3 step 3) as Python decides them:
// testdata/storage/scan_window.json, written by testdata/storage/gen_scan_window.py with the
// Python LogFile. (go/storage's goldens cover far above, below and inside the window only.)
package zmqnode.storage

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.fail

class StorageScanWindowTest {
    fun testStrayRecordsAtTheEdgesOfTheScanWindowAreDecidedAsPythonDecides() {
        val doc = PyJson.loads(File("testdata/storage/scan_window.json").readBytes()) as PyJson.PyObject
        val cases = G.list(doc["cases"])
        assertEquals(39, cases.size)
        val dir = G.tempDir()
        val failures = ArrayList<String>()
        var refused = 0
        try {
            for (cv in cases) {
                val c = G.obj(cv)
                val want = G.obj(c["result"])
                val path = File(dir, "raft.log")
                path.writeBytes(G.unhex(G.str(c["log"])))
                val l = LogFile(path.path, FsyncStats().apply { syncer = {} }) // decisions only: no real fsync
                l.warn = {}
                val label = "stray index ${c["stray_index"]}, ${path.length()} bytes"
                try {
                    val contents = l.open()
                    l.close()
                    val got = listOf(contents.entries.size.toLong(), contents.warnings, path.length())
                    val expected = if (want["problem"] != null) listOf("refused: ${want["problem"]}") else
                        listOf(G.num(want["entries"]), G.list(want["warnings"]).map { G.str(it).replace("{path}", path.path) }, G.num(want["size"]))
                    if (got != expected) failures.add("$label: got $got\n   want $expected")
                } catch (e: CorruptionError) {
                    refused++
                    if (e.problem != want["problem"]) failures.add("$label: refused: ${e.problem}\n   want ${PyJson.repr(want["problem"])}")
                }
            }
        } finally {
            dir.deleteRecursively()
        }
        if (failures.isNotEmpty()) fail(failures.joinToString("\n"))
        assertEquals(15, refused)
    }
}
