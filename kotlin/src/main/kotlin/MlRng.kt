package zmqnode.ml

// numpy.random.default_rng([seed, stream, *keys]) bit for bit (docs/TRAINING.md
// §2, go/ml/rng.go): SeedSequence hashing the entropy words into a PCG64
// state, random()/uniform() from the top 53 bits, and permutation() as
// Fisher-Yates with numpy's masked rejection sampler. All arithmetic is on
// Longs read as unsigned (JVM pitfall: no unsigned types in Kotlin 1.3's
// stable stdlib; `ushr`, never `shr`; 32-bit words kept as Int and widened
// with `and 0xffffffffL`).

private const val SS_POOL_SIZE = 4
private const val SS_INIT_A = 0x43b0d7e5
private const val SS_MULT_A = 0x931e8875.toInt()
private const val SS_INIT_B = 0x8b51f9dd.toInt()
private const val SS_MULT_B = 0x58f38ded
private const val SS_MIX_MULT_L = 0xca01f9dd.toInt()
private const val SS_MIX_MULT_R = 0x4973f715
private const val SS_XSHIFT = 16

// PCG_DEFAULT_MULTIPLIER_128 = 0x2360ed051fc65da4_4385df649fccf645
private const val PCG_MULT_HI = 0x2360ed051fc65da4L
private const val PCG_MULT_LO = 0x4385df649fccf645L

/** numpy's _coerce_to_uint32_array of non-negative ints: little-endian 32-bit words, 0 as one zero word. */
internal fun entropyWords(entropy: LongArray): IntArray {
    val out = ArrayList<Int>()
    for (e in entropy) {
        var n = e
        if (n == 0L) out.add(0)
        while (n != 0L) {
            out.add(n.toInt())
            n = n ushr 32
        }
    }
    return out.toIntArray()
}

/** SeedSequence(entropy).pool (no spawn key). */
internal fun seedPool(entropy: LongArray): IntArray {
    val words = entropyWords(entropy)
    var hashConst = SS_INIT_A
    fun hashmix(value: Int): Int {
        var v = value xor hashConst
        hashConst *= SS_MULT_A
        v *= hashConst
        v = v xor (v ushr SS_XSHIFT)
        return v
    }
    fun mix(x: Int, y: Int): Int {
        var r = SS_MIX_MULT_L * x - SS_MIX_MULT_R * y
        r = r xor (r ushr SS_XSHIFT)
        return r
    }
    val pool = IntArray(SS_POOL_SIZE)
    for (i in 0 until SS_POOL_SIZE) pool[i] = hashmix(if (i < words.size) words[i] else 0)
    for (src in 0 until SS_POOL_SIZE) {
        for (dst in 0 until SS_POOL_SIZE) {
            if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]))
        }
    }
    for (src in SS_POOL_SIZE until words.size) {
        for (dst in 0 until SS_POOL_SIZE) pool[dst] = mix(pool[dst], hashmix(words[src]))
    }
    return pool
}

/** SeedSequence.generate_state(n, np.uint64): 2n 32-bit words, paired little-endian. */
internal fun generateState(pool: IntArray, n: Int): LongArray {
    var hashConst = SS_INIT_B
    val words = IntArray(2 * n)
    for (i in words.indices) {
        var v = pool[i % SS_POOL_SIZE]
        v = v xor hashConst
        hashConst *= SS_MULT_B
        v *= hashConst
        v = v xor (v ushr SS_XSHIFT)
        words[i] = v
    }
    return LongArray(n) { (words[2 * it].toLong() and 0xffffffffL) or (words[2 * it + 1].toLong() shl 32) }
}

/** The high 64 bits of the unsigned 128-bit product a * b. */
private fun unsignedMultiplyHigh(a: Long, b: Long): Long =
    Math.multiplyHigh(a, b) + ((a shr 63) and b) + ((b shr 63) and a)

/**
 * numpy's Generator(PCG64(SeedSequence(entropy))), restricted to the draws
 * zmqnode uses. Not thread-safe.
 */
class Generator(vararg entropy: Long) {
    private var stateHi = 0L
    private var stateLo = 0L
    private val incHi: Long
    private val incLo: Long
    // PCG64's next_uint32 hands out the two halves of one 64-bit output (low first).
    private var hasUint32 = false
    private var spare = 0

    init {
        for (e in entropy) require(e >= 0) { "entropy words must be non-negative, got $e" }
        val s = generateState(seedPool(entropy), 4)
        incHi = (s[2] shl 1) or (s[3] ushr 63)
        incLo = (s[3] shl 1) or 1L
        step()
        val lo = stateLo + s[1]
        val carry = if (java.lang.Long.compareUnsigned(lo, stateLo) < 0) 1L else 0L
        stateLo = lo
        stateHi = stateHi + s[0] + carry
        step()
    }

    private fun step() {
        // state = state * mult + inc (mod 2^128)
        var hi = unsignedMultiplyHigh(stateLo, PCG_MULT_LO) + stateHi * PCG_MULT_LO + stateLo * PCG_MULT_HI
        var lo = stateLo * PCG_MULT_LO
        val sum = lo + incLo
        val carry = if (java.lang.Long.compareUnsigned(sum, lo) < 0) 1L else 0L
        lo = sum
        hi = hi + incHi + carry
        stateHi = hi
        stateLo = lo
    }

    /** PCG64's next_uint64 (an unsigned value in a Long): advance, then XSL-RR of the new state. */
    fun nextLong(): Long {
        step()
        return java.lang.Long.rotateRight(stateHi xor stateLo, (stateHi ushr 58).toInt())
    }

    /** PCG64's buffered next_uint32 (an unsigned value in an Int). */
    fun nextInt(): Int {
        if (hasUint32) {
            hasUint32 = false
            return spare
        }
        val n = nextLong()
        hasUint32 = true
        spare = (n ushr 32).toInt()
        return n.toInt()
    }

    /** Generator.random(): a double in [0, 1) from the top 53 bits. */
    fun random(): Double = (nextLong() ushr 11).toDouble() * (1.0 / 9007199254740992.0)

    /** Generator.uniform(low, high): low + (high - low) * random(). */
    fun uniform(low: Double, high: Double): Double {
        val span = high - low
        return low + span * random()
    }

    /** numpy's random_interval(max): uniform in [0, max] by masked rejection. */
    internal fun interval(max: Long): Long {
        if (max == 0L) return 0L
        var mask = max
        for (s in intArrayOf(1, 2, 4, 8, 16, 32)) mask = mask or (mask ushr s)
        if (max <= 0xffffffffL) {
            while (true) {
                val v = (nextInt().toLong() and 0xffffffffL) and mask
                if (v <= max) return v
            }
        }
        while (true) {
            val v = nextLong() and mask
            if (java.lang.Long.compareUnsigned(v, max) <= 0) return v
        }
    }

    /** Generator.shuffle of a 1-D array: Fisher-Yates from the end. */
    fun shuffle(a: IntArray) {
        for (i in a.size - 1 downTo 1) {
            val j = interval(i.toLong()).toInt()
            val t = a[i]; a[i] = a[j]; a[j] = t
        }
    }

    /** Generator.permutation(n): a shuffled 0..n-1. */
    fun permutation(n: Int): IntArray {
        val a = IntArray(n) { it }
        shuffle(a)
        return a
    }

    /** Generator.permutation(array): a shuffled copy. */
    fun permute(values: IntArray): IntArray {
        val a = values.copyOf()
        shuffle(a)
        return a
    }

    companion object {
        /** Stream numbers of problem.py. */
        const val STREAM_INIT = 0
        const val STREAM_TRAIN = 1
        const val STREAM_SPLIT = 2

        /** problem.rng_for: default_rng([seed, stream, *keys]). */
        @JvmStatic
        fun forStream(seed: Long, stream: Int, vararg keys: Int): Generator {
            val e = LongArray(2 + keys.size)
            e[0] = seed
            e[1] = stream.toLong()
            for (i in keys.indices) e[2 + i] = keys[i].toLong()
            return Generator(*e)
        }
    }
}
