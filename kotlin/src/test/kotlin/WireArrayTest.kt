package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import zmqnode.wire.DecodeOptions
import zmqnode.wire.Dtype
import zmqnode.wire.Json
import zmqnode.wire.NdArray
import zmqnode.wire.ProtocolError
import zmqnode.wire.Wire

// go/wire/golden_test.go's array vectors, array_view_test.go and convert_test.go.
class WireArrayTest {
    private fun pyHex(s: String): Double = when (s) {
        "inf" -> Double.POSITIVE_INFINITY
        "-inf" -> Double.NEGATIVE_INFINITY
        "nan" -> Double.NaN
        else -> java.lang.Double.parseDouble(s) // Java reads float.hex()'s 0x1.8p+0 form
    }

    fun testGoldenArraysEveryDtype() {
        val seen = HashSet<Dtype>()
        for (vec in WireGolden.load("arrays")) {
            val name = vec.str("name")!!
            val fr = WireGolden.frames(vec, "frames")
            val d = Wire.decode(fr, DecodeOptions())
            val a = NdArray.read(d.header, d.blobs, vec.str("key")!!, NdArray.DEFAULT_MAX_ARRAY_BYTES)
            seen.add(a.dtype)
            assertEquals(vec.str("dtype"), a.dtype.wireName, name)
            assertEquals(vec.list("shape")!!.map { Json.intValue(it) }, a.shape.toList(), name)
            val values = vec.list("values")!!
            val rebuilt = when (a.dtype) {
                Dtype.FLOAT32 -> {
                    val got = a.float32s()
                    val want = FloatArray(values.size) { pyHex(values[it] as String).toFloat() }
                    for (i in want.indices) assertEquals(java.lang.Float.floatToRawIntBits(want[i]), java.lang.Float.floatToRawIntBits(got[i]), "$name[$i]")
                    val view = a.float32View()
                    for (i in want.indices) assertEquals(want[i], view.get(i))
                    NdArray.fromFloat32(a.shape, want)
                }
                Dtype.FLOAT64 -> {
                    val got = a.float64s()
                    val want = DoubleArray(values.size) { pyHex(values[it] as String) }
                    for (i in want.indices) assertEquals(java.lang.Double.doubleToRawLongBits(want[i]), java.lang.Double.doubleToRawLongBits(got[i]), "$name[$i]")
                    NdArray.fromFloat64(a.shape, want)
                }
                Dtype.INT32 -> {
                    val want = IntArray(values.size) { Json.intValue(values[it])!!.toInt() }
                    assertEquals(want.toList(), a.int32s().toList(), name)
                    NdArray.fromInt32(a.shape, want)
                }
                Dtype.INT64 -> {
                    val want = LongArray(values.size) { Json.intValue(values[it])!! }
                    assertEquals(want.toList(), a.int64s().toList(), name)
                    NdArray.fromInt64(a.shape, want)
                }
            }
            val (desc, blob) = rebuilt.toFrame(vec.int("frame")!!.toInt())
            assertTrue(blob.contentEquals(a.data), "$name: rebuilt bytes")
            assertEquals(vec.str("descriptor_json"), Json.encodeToString(desc), name)
            WireGolden.sameFrames(Wire.encode(d.header, d.blobs), fr, name)
        }
        assertEquals(Dtype.values().toSet(), seen)
    }

    fun testGoldenArrayRejectsHaveThePythonCode() {
        for (vec in WireGolden.load("array_rejects")) {
            val name = vec.str("name")!!
            val d = Wire.decode(WireGolden.frames(vec, "frames"), DecodeOptions())
            var code = ""
            try {
                NdArray.read(d.header, d.blobs, vec.str("key")!!, vec.int("max_bytes")!!)
            } catch (e: ProtocolError) {
                code = e.code.code
            }
            assertEquals(vec.str("code") ?: "", code, name)
        }
    }

    fun testConvertToFloat32IsAstypeFloat32() {
        val cases = listOf(
            NdArray.fromFloat64(longArrayOf(2), doubleArrayOf(1.5, -2.0)) to floatArrayOf(1.5f, -2f),
            NdArray.fromInt32(longArrayOf(2), intArrayOf(1, -2)) to floatArrayOf(1f, -2f),
            NdArray.fromInt64(longArrayOf(3), longArrayOf(3, 1L shl 40, 16777217)) to floatArrayOf(3f, (1L shl 40).toFloat(), 16777216f),
            NdArray.fromFloat64(longArrayOf(1), doubleArrayOf(0.1)) to floatArrayOf(0.1f)
        )
        for ((a, want) in cases) assertEquals(want.toList(), a.convertToFloat32()!!.toList(), a.toString())
        assertNull(NdArray.fromFloat32(longArrayOf(1), floatArrayOf(1f)).convertToFloat32())
    }

    fun testBytesAreLittleEndianAndTypedReadsRefuseAnotherDtype() {
        val a = NdArray.fromInt32(longArrayOf(2), intArrayOf(1, 256))
        assertEquals(listOf<Byte>(1, 0, 0, 0, 0, 1, 0, 0), a.data.toList())
        assertEquals(listOf<Byte>(0, 0, 0xc0.toByte(), 0x3f), NdArray.fromFloat32(longArrayOf(1), floatArrayOf(1.5f)).data.toList())
        assertFailsWith<IllegalArgumentException> { a.float32s() }
        assertFailsWith<IllegalArgumentException> { NdArray.fromInt64(longArrayOf(1), longArrayOf(1)).float32View() }
        assertEquals(listOf(1.0, 256.0), a.toDoubles().toList())
        val empty = NdArray.fromFloat32(longArrayOf(0), floatArrayOf())
        assertEquals(0, empty.float32View().remaining())
        assertEquals(0, empty.size)
    }

    fun testHugeShapesAreTooLargeNotAnOverflow() {
        val desc = Json.parse("""{"dtype":"float32","shape":[4611686018427387904,4611686018427387904]}""")
        val e = assertFailsWith<ProtocolError> { NdArray.fromFrame(desc, ByteArray(0), 1024, "x") }
        assertEquals("TOO_LARGE", e.code.code)
        assertTrue(e.reason.contains("more than 2^64"), e.reason)
        // beside a 0 dimension any size is fine in Python; above 2^63-1 a Long cannot hold it (Go: BAD_SHAPE too)
        val zero = NdArray.fromFrame(Json.parse("""{"dtype":"int64","shape":[0,9223372036854775807]}"""), ByteArray(0), 1024, "x")
        assertEquals(listOf(0L, Long.MAX_VALUE), zero.shape.toList())
        val big = assertFailsWith<ProtocolError> {
            NdArray.fromFrame(Json.parse("""{"dtype":"int64","shape":[0,9223372036854775808]}"""), ByteArray(0), 1024, "x")
        }
        assertEquals("BAD_SHAPE", big.code.code)
    }
}
