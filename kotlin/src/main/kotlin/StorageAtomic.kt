// Atomic, durable file replacement and the fsync bookkeeping (go/storage/atomic.go,
// zmqnode/storage/atomic.py; docs/FORMAT.md §11.1).
package zmqnode.storage

import java.io.File
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.Paths
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.PosixFilePermissions

/** Ends every temporary file atomicWrite creates; they are also hidden (leading dot). */
const val TEMP_SUFFIX = ".tmp"

/**
 * Counts the fsyncs a storage object made and how long they took. NodeStorage shares one with
 * its files and the node's ModelStore; safe for concurrent use.
 */
class FsyncStats {
    /** When set, told each fsync's duration in nanoseconds (metrics). */
    @Volatile var onFsync: ((Long) -> Unit)? = null

    /** Does the fsync; tests replace it to make an fsync fail (throw an IOException). */
    @Volatile var syncer: (FileChannel) -> Unit = { it.force(true) }

    private var count = 0
    private var totalNanos = 0L
    private var lastNanos = 0L

    /** Fsyncs [channel] and records how long it took (also when it fails). */
    fun fsync(channel: FileChannel) {
        val start = System.nanoTime()
        var error: Throwable? = null
        try {
            syncer(channel)
        } catch (e: Throwable) {
            error = e
        }
        val elapsed = System.nanoTime() - start
        val hook: ((Long) -> Unit)?
        synchronized(this) {
            count++
            totalNanos += elapsed
            lastNanos = elapsed
            hook = onFsync
        }
        hook?.invoke(elapsed)
        if (error != null) throw error
    }

    /** The number of fsyncs of files and directories so far. */
    fun count(): Int = synchronized(this) { count }
    fun totalNanos(): Long = synchronized(this) { totalNanos }
    fun lastNanos(): Long = synchronized(this) { lastNanos }
}

/** Test hooks (go/storage's crashHook): when set, called at the named points of atomicWrite
 *  ("before-rename", temp path); returning true stops the write there as if the process died. */
object StorageHooks {
    @Volatile var crashHook: ((String, String) -> Boolean)? = null
}

/** Thrown by atomicWrite when StorageHooks.crashHook simulated a crash. */
class SimulatedCrash : IOException("simulated crash")

internal fun orNew(stats: FsyncStats?): FsyncStats = stats ?: FsyncStats()

/** Makes the directory's entries (creations, renames, removals) durable. */
fun fsyncDir(path: String, stats: FsyncStats?) {
    FileChannel.open(Paths.get(path), StandardOpenOption.READ).use { orNew(stats).fsync(it) }
}

private fun writeFully(ch: FileChannel, data: ByteArray, position: Long) {
    val buf = ByteBuffer.wrap(data)
    var pos = position
    while (buf.hasRemaining()) pos += ch.write(buf, pos)
}

internal fun writeAllAt(ch: FileChannel, data: ByteArray, position: Long) = writeFully(ch, data, position)

private val tempPermissions = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))

/**
 * Replaces [path] with [data] atomically, and durably unless [durable] is false. The bytes go to
 * a temporary file in the same directory named ".<name>.<random>.tmp" (mode 0600, as Python's
 * mkstemp), are fsynced, the file is renamed over [path] and the directory is fsynced. On an I/O
 * error the old file is untouched and the temporary file removed.
 */
fun atomicWrite(path: String, data: ByteArray, stats: FsyncStats?, durable: Boolean) {
    val target = File(path)
    val dir = target.parent ?: "."
    val tmp: Path = Files.createTempFile(Paths.get(dir), "." + target.name + ".", TEMP_SUFFIX, tempPermissions)
    var ch: FileChannel? = FileChannel.open(tmp, StandardOpenOption.WRITE)
    try {
        writeFully(ch!!, data, 0)
        if (durable) orNew(stats).fsync(ch)
        val hook = StorageHooks.crashHook
        if (hook != null && hook("before-rename", tmp.toString())) {
            ch.close()
            ch = null
            throw SimulatedCrash()
        }
        ch.close()
        ch = null
        Files.move(tmp, target.toPath(), StandardCopyOption.ATOMIC_MOVE)
    } catch (e: SimulatedCrash) {
        throw e
    } catch (e: Throwable) {
        try { ch?.close() } catch (_: IOException) {}
        try { Files.deleteIfExists(tmp) } catch (_: IOException) {}
        throw e
    }
    if (durable) fsyncDir(dir, stats)
}

/** Creates [path] (and missing parents) so that the creation survives a crash: each new
 *  directory's parent is fsynced. */
fun ensureDir(path: String, stats: FsyncStats?) {
    val missing = ArrayList<File>()
    var p: File? = File(path).absoluteFile.normalize()
    while (p != null) {
        if (p.isDirectory) break
        missing.add(p)
        p = p.parentFile
    }
    for (i in missing.indices.reversed()) {
        val d = missing[i]
        try {
            Files.createDirectory(d.toPath())
        } catch (e: FileAlreadyExistsException) {
            if (!d.isDirectory) throw e // a file in the way; made meanwhile by someone else is fine
        }
        fsyncDir(d.parentFile?.path ?: "/", stats)
    }
}

/** Whether [name] is a temporary file atomicWrite creates. */
fun isTempName(name: String): Boolean = name.startsWith(".") && name.endsWith(TEMP_SUFFIX)

/** Names in [dir], sorted by their UTF-8 bytes (Go's sort.Strings, Python's sorted on
 *  file names from the same file system); null if [dir] is missing. */
internal fun listNames(dir: String): List<String>? {
    val names = File(dir).list() ?: return null
    return names.sortedWith(Comparator { a, b -> compareUtf8(a, b) })
}

internal fun compareUtf8(a: String, b: String): Int {
    val x = a.toByteArray(Charsets.UTF_8)
    val y = b.toByteArray(Charsets.UTF_8)
    val n = minOf(x.size, y.size)
    for (i in 0 until n) {
        val c = (x[i].toInt() and 0xff) - (y[i].toInt() and 0xff)
        if (c != 0) return c
    }
    return x.size - y.size
}

/** Deletes the temporary files a crash left in [dir] and returns their names, sorted. A missing
 *  [dir] has none. */
fun removeStaleTemps(dir: String): List<String> {
    val names = listNames(dir) ?: return emptyList()
    val removed = ArrayList<String>()
    for (name in names) {
        if (!isTempName(name)) continue
        try {
            Files.delete(Paths.get(dir, name))
            removed.add(name)
        } catch (_: NoSuchFileException) {
        }
    }
    return removed
}

/** Fsyncs each file of [paths] that still exists, then [dir] (compaction.py sync_files: model
 *  files are written without fsync and must be durable before the log forgets their entries). */
fun syncFiles(paths: List<String>, dir: String, stats: FsyncStats?) {
    for (p in paths) {
        val ch = try {
            FileChannel.open(Paths.get(p), StandardOpenOption.READ)
        } catch (_: NoSuchFileException) {
            continue
        }
        ch.use { orNew(stats).fsync(it) }
    }
    fsyncDir(dir, stats)
}
