// A TRAIN request's arrays and names (go/training/request.go,
// zmqnode/training/request.py), checked cheaply on the loop; the per-row
// work is the plan's (PlanMaker.makePlan, off the loop).
package zmqnode.training

import zmqnode.pyfmt.Pyfmt
import zmqnode.wire.JsonObject

/** Bounds of zmqnode/ml as the request checks use them. */
object RequestLimits {
    const val MAX_CLASSES = 1024
    const val MAX_COLUMN_NAME_CHARS = 256
}

/** A TRAIN's arrays and names; classNames null: no "classes". */
class TrainRequest(
    val x: TrainArray,
    val y: TrainArray,
    val classNames: List<String>?,
    val features: List<String>?,
    val targets: List<String>?
) {
    /** x.shape[0] (1 for a 0-d array, as Python's len would fail later). */
    fun rows(): Int = if (x.shape.isEmpty()) 1 else x.shape[0]
}

/**
 * request.read_train_request: the arrays and names, or TrainingRefused
 * (BAD_REQUEST, BAD_SHAPE, BAD_INPUT, TOO_LARGE) with Python's messages.
 * limit bounds each array (--max-request-bytes).
 */
fun readTrainRequest(h: JsonObject, blobs: List<ByteArray>, limit: Long): TrainRequest {
    val x = TrainingWire.readArray(h, blobs, "inputs", limit)
    val y = TrainingWire.readArray(h, blobs, "outputs", limit)
    val classNames = names(h, "classes")
    if (classNames != null) {
        if (classNames.size < 2 || classNames.size > RequestLimits.MAX_CLASSES) {
            throw TrainingRefused("BAD_INPUT", "'classes' names ${classNames.size} classes; a classifier needs 2 to " +
                "${RequestLimits.MAX_CLASSES}")
        }
        val intKind = y.dtype == "int32" || y.dtype == "int64"
        if (!intKind || !(y.shape.size == 1 || (y.shape.size == 2 && y.shape[1] == 1))) {
            throw TrainingRefused("BAD_SHAPE", "with 'classes', 'outputs' must be integer indices into them, one per row " +
                "(int64 [rows]); got ${y.dtype} ${pyList(y.shape)}")
        }
    }
    val features = names(h, "features")
    val targets = names(h, "targets")
    val columns = if (x.shape.size == 2) x.shape[1] else 1
    val targetColumns = if (y.shape.size == 2) y.shape[1] else 1
    checkColumnNames("features", features, columns)?.let { throw TrainingRefused("BAD_SHAPE", it) }
    checkColumnNames("targets", targets, targetColumns)?.let { throw TrainingRefused("BAD_SHAPE", it) }
    return TrainRequest(x, y, classNames, features, targets)
}

private fun names(h: JsonObject, key: String): List<String>? {
    val v = h[key] ?: return null
    val out = (v as? List<*>)?.map { it as? String ?: throw TrainingRefused("BAD_REQUEST", "'$key' must be a list of strings") }
        ?: throw TrainingRefused("BAD_REQUEST", "'$key' must be a list of strings")
    if (key == "classes" && out.toSet().size != out.size) {
        throw TrainingRefused("BAD_INPUT", "'classes' must be distinct names")
    }
    return out
}

/**
 * The checks of request.make_plan that come before the maths, in Python's
 * order, after the class indices were resolved (their errors are the ml
 * package's): class names with task regression, x 2-D, y 1-D or 2-D.
 * Throws zmqnode.ml.BadInputException with Python's messages.
 */
fun checkPlanShapes(r: TrainRequest, taskIsRegression: Boolean) {
    if (r.classNames != null && taskIsRegression) {
        throw zmqnode.ml.BadInputException("class names cannot be regression targets; drop task 'regression'")
    }
    if (r.x.shape.size != 2) {
        throw zmqnode.ml.BadInputException("inputs must be a 2-D array (rows x columns), got shape ${pyShape(r.x.shape)}")
    }
    if (r.y.shape.size != 1 && r.y.shape.size != 2) {
        throw zmqnode.ml.BadInputException("outputs must be 1-D (one label per row) or 2-D, got shape ${pyShape(r.y.shape)}")
    }
}

/** A Python list of ints' repr: [150, 2]. */
fun pyList(v: List<Int>): String = v.joinToString(", ", "[", "]")

/** A numpy shape's repr: (4,), (2, 3). */
fun pyShape(shape: List<Int>): String =
    if (shape.size == 1) "(${shape[0]},)" else shape.joinToString(", ", "(", ")")

/**
 * model_file.check_column_names with Python's reprs in its messages (null
 * when the names are fine). Lengths are code points (Python's len), not
 * UTF-16 units.
 */
internal fun checkColumnNames(what: String, names: List<String>?, width: Int): String? {
    if (names == null || names.isEmpty()) return null
    if (names.size != width) return "$what names ${names.size} columns; the model has $width"
    for (name in names) {
        val n = name.codePointCount(0, name.length)
        if (n == 0 || n > RequestLimits.MAX_COLUMN_NAME_CHARS) {
            var r = Pyfmt.strRepr(name)
            if (r.codePointCount(0, r.length) > 80) r = r.substring(0, r.offsetByCodePoints(0, 80))
            return "$what: each column name must be a string of 1 to ${RequestLimits.MAX_COLUMN_NAME_CHARS} characters, got $r"
        }
    }
    if (names.toSet().size != names.size) {
        return "$what: column names must be distinct, got " + names.take(10).joinToString(", ", "[", "]") { Pyfmt.strRepr(it) }
    }
    return null
}

/** Whether e is one of zmqnode.ml's BAD_INPUT kinds (BadInput, BadOptions, ModelFormat). */
fun isBadInput(e: Throwable): Boolean =
    e is zmqnode.ml.BadInputException || e is zmqnode.ml.BadOptionsException || e is zmqnode.ml.ModelFormatException

/** A refusal carried by e (a TrainingRefused or a zmqnode.wire.ProtocolError), or null. */
fun refusalOf(e: Throwable): TrainingRefused? = when (e) {
    is TrainingRefused -> e
    is zmqnode.wire.ProtocolError -> TrainingRefused(e.code.code, e.reason)
    else -> null
}

/**
 * What a Python trainer puts in a result's error: repr(exc), e.g.
 * "BadOptions('unknown option ...')" (SPEC_NOTES T3 proposes str(exc)).
 */
fun pyExceptionRepr(e: Throwable): String {
    val cls = when (e) {
        is zmqnode.ml.BadInputException -> "BadInput"
        is zmqnode.ml.BadOptionsException -> "BadOptions"
        is zmqnode.ml.ModelFormatException -> "ModelFormatError"
        is zmqnode.ml.TrainingException -> "TrainingError"
        else -> "RuntimeError"
    }
    return cls + "(" + Pyfmt.strRepr(e.message ?: e.toString()) + ")"
}
