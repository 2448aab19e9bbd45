package zmqnode.test

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.test.fail
import zmqnode.ml.Labels
import zmqnode.ml.Matrix
import zmqnode.ml.TrainOptions
import zmqnode.ml.TrainingPlan

class MlBundledTest {
    /**
     * On scikit-learn's bundled sets, split as bench/train.py splits them, a
     * Kotlin leader with default options and 3 chunks scores within 1 point
     * of the Python leader's test accuracy (issue 18's bar).
     */
    fun testBundledSetsAccuracyWithinOnePointOfPython() {
        for (c in MlGolden.cases("bundled.json")) {
            val name = c["name"] as String
            val inputs = MlGolden.int(c["inputs"])
            val trainRows = MlGolden.int(c["train_rows"])
            val testRows = MlGolden.int(c["test_rows"])
            val blob = File(MlGolden.DIR + "/bundled", "$name.f32").readBytes()
            val buf = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN)
            val values = FloatArray(blob.size / 4) { buf.float }
            val split = trainRows * inputs
            val xTrain = Matrix.of(trainRows, inputs, values.copyOfRange(0, split))
            val xTest = Matrix.of(testRows, inputs, values.copyOfRange(split, values.size))
            val yTrain = MlGolden.list(c["y_train"]).map { MlGolden.long(it) }.toLongArray()
            val yTest = MlGolden.list(c["y_test"]).map { MlGolden.long(it) }
            val m = TrainingPlan.train(xTrain, Labels.ofInts(yTrain), TrainOptions(), 3)
            val labels = m.labels(xTest)
            var hits = 0
            for ((i, l) in labels.withIndex()) if (l == yTest[i]) hits++
            val got = hits.toDouble() / labels.size
            val py = MlGolden.num(c["python_score"])
            if (Math.abs(got - py) > 0.01) fail("$name: Kotlin leader scores $got, Python leader $py")
        }
    }
}
