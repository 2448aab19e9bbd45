package zmqnode.test

import kotlin.test.assertEquals
import kotlin.test.assertTrue
import zmqnode.ml.Generator

class MlRngTest {
    /** numpy's default_rng draws bit for bit: uniforms and permutations interleaved as Python interleaves them. */
    fun testGeneratorMatchesNumpy() {
        val cases = MlGolden.cases("rng.json")
        assertTrue(cases.size >= 5)
        for (c in cases) {
            val entropy = MlGolden.list(c["entropy"]).map { MlGolden.long(it) }.toLongArray()
            val g = Generator(*entropy)
            val label = entropy.joinToString(",")
            for ((i, want) in MlGolden.doubles(c["uniform"]).withIndex()) {
                assertEquals(want, g.uniform(-0.25, 0.75), "[$label] uniform $i")
            }
            for (p in MlGolden.list(c["perms"])) {
                val want = MlGolden.ints(p)
                val got = g.permutation(want.size)
                assertEquals(want.toList(), got.toList(), "[$label] permutation(${want.size})")
            }
            for ((i, want) in MlGolden.doubles(c["after"]).withIndex()) {
                assertEquals(want, g.uniform(0.0, 1.0), "[$label] uniform after permutations $i")
            }
        }
    }

    /** docs/TRAINING.md §2's vectors. */
    fun testTrainingDocVectors() {
        val g = Generator.forStream(0, 1, 0, 0)
        assertEquals("e3c5ebe285ac1625", java.lang.Long.toHexString(g.nextLong()))
        assertEquals("8ea09968fe31dbcc", java.lang.Long.toHexString(g.nextLong()))
        assertEquals(listOf(9, 1, 3, 8, 7, 6, 0, 4, 2, 5), Generator.forStream(0, 1, 0, 0).permutation(10).toList())
        val h = Generator.forStream(0, 0)
        assertEquals(0.1369616873214543, h.uniform(-0.5, 0.5))
        assertEquals(-0.2302132862361297, h.uniform(-0.5, 0.5))
    }

    fun testForStreamIsDefaultRngOfSeedStreamKeys() {
        assertEquals(Generator(42, 2, 1).nextLong(), Generator.forStream(42, 2, 1).nextLong())
    }

    /** next32 hands out the low then the high half of one next64, and the kept half survives other draws. */
    fun testNextIntHalves() {
        val a = Generator(7)
        val b = Generator(7)
        val x = a.nextLong()
        assertEquals(x.toInt(), b.nextInt())
        b.random() // consumes a whole 64-bit output
        assertEquals((x ushr 32).toInt(), b.nextInt())
    }
}
