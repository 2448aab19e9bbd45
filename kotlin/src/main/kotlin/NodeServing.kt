// PREDICT micro-batching (serving.py PredictionBatcher, go/node/serving.go):
// the requests waiting for their model's next forward pass, one pass per
// model per loop turn. Loop thread only.
package zmqnode.node

import zmqnode.wire.ErrorCode
import zmqnode.wire.JsonObject
import zmqnode.wire.ProtocolError

const val MAX_PASS_ROWS = 65536
const val MAX_TURN_ROWS = 262144
const val MAX_QUEUED_BYTES = 256L shl 20

class Batcher(private val n: Node) {
    private class PredictReq(val rows: Int, val cols: Int, val x: FloatArray, val proba: Boolean,
                             val req: JsonObject, val reply: Replier)
    private class Batch(val model: ServedModel) {
        val waiting = ArrayList<PredictReq>()
    }

    private var batches = LinkedHashMap<String, Batch>()
    var queuedBytes = 0L
        private set

    /** Queues a request's rows (BUSY past MAX_QUEUED_BYTES). */
    fun add(modelId: String, m: ServedModel, rows: Int, cols: Int, x: FloatArray, proba: Boolean, req: JsonObject, reply: Replier) {
        val size = x.size * 4L
        if (queuedBytes > 0 && queuedBytes + size > MAX_QUEUED_BYTES) {
            throw ProtocolError(ErrorCode.BUSY, "node ${n.id} has $queuedBytes bytes of predictions queued; retry later", req)
        }
        queuedBytes += size
        batches.getOrPut(modelId) { Batch(m) }.waiting.add(PredictReq(rows, cols, x, proba, req, reply))
    }

    /** Runs the waiting batches: at most MAX_PASS_ROWS rows a pass and MAX_TURN_ROWS a call. */
    fun flush() {
        if (batches.isEmpty()) return
        var budget = MAX_TURN_ROWS
        val old = batches
        batches = LinkedHashMap()
        for ((id, bt) in old) {
            while (bt.waiting.isNotEmpty() && budget > 0) {
                var take = 0
                var rowsIn = 0
                while (take < bt.waiting.size && (take == 0 || rowsIn + bt.waiting[take].rows <= MAX_PASS_ROWS)) {
                    rowsIn += bt.waiting[take].rows
                    take++
                }
                val group = ArrayList(bt.waiting.subList(0, take))
                bt.waiting.subList(0, take).clear()
                run(id, bt.model, group)
                budget -= rowsIn
            }
            if (bt.waiting.isNotEmpty()) batches[id] = bt
        }
        queuedBytes = batches.values.map { b -> b.waiting.map { it.x.size * 4L }.sum() }.sum()
    }

    private class Computed(val index: LongArray?, val proba: FloatArray?, val k: Int, val value: FloatArray?, val cols: Int)

    private fun compute(m: ServedModel, x: FloatArray, rows: Int, proba: Boolean): Computed {
        if (m.classes.isEmpty()) {
            val (v, cols) = m.values(x, rows)
            return Computed(null, null, 0, v, cols)
        }
        val (idx, p) = m.classify(x, rows, proba)
        return Computed(idx, p, m.classes.size, null, 0)
    }

    private fun run(id: String, m: ServedModel, waiting: List<PredictReq>) {
        val wantProba = waiting.any { it.proba }
        val total = waiting.map { it.rows }.sum()
        val x = if (waiting.size == 1) waiting[0].x else {
            val out = FloatArray(total * waiting[0].cols)
            var off = 0
            for (w in waiting) {
                System.arraycopy(w.x, 0, out, off, w.x.size)
                off += w.x.size
            }
            out
        }
        val out = try {
            compute(m, x, total, wantProba)
        } catch (e: Exception) {
            // One bad request must not fail the others: answer them one by one.
            for (w in waiting) answerOne(id, m, w)
            return
        }
        n.stats.onBatch?.invoke(waiting.size)
        var start = 0
        for (w in waiting) {
            send(id, m, out, w, start, start + w.rows)
            start += w.rows
        }
    }

    private fun answerOne(id: String, m: ServedModel, w: PredictReq) {
        val out = try {
            compute(m, w.x, w.rows, w.proba)
        } catch (e: Exception) {
            if (NodeModels.isBadInput(e)) w.reply.error(w.req, ErrorCode.BAD_INPUT, "model $id: ${NodeModels.message(e)}")
            else w.reply.error(w.req, ErrorCode.INTERNAL, "node ${n.id}: prediction failed: $e")
            return
        }
        send(id, m, out, w, 0, w.rows)
    }

    private fun send(id: String, m: ServedModel, out: Computed, w: PredictReq, start: Int, end: Int) {
        val rows = end - start
        val fields = arrayListOf<Pair<String, Any?>>("model_id" to id, "node" to n.id)
        val blobs = ArrayList<ByteArray>()
        if (out.index != null) {
            fields.add("classes" to m.classes)
            fields.add("outputs" to Arrays.descriptor("int64", listOf(rows), 0))
            blobs.add(Arrays.i64bytes(out.index, start, end))
            if (w.proba && out.proba != null) {
                val k = out.k
                fields.add("probabilities" to Arrays.descriptor("float32", listOf(rows, k), 1))
                blobs.add(Arrays.f32bytes(out.proba, start * k, end * k))
            }
        } else {
            val k = out.cols
            val shape = if (k == 1) listOf(rows) else listOf(rows, k)
            fields.add("outputs" to Arrays.descriptor("float32", shape, 0))
            blobs.add(Arrays.f32bytes(out.value!!, start * k, end * k))
        }
        w.reply.ok(w.req, blobs, fields)
    }
}
