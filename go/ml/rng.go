package ml

import "math/bits"

// The Python side draws every random number from
// numpy.random.default_rng([seed, stream, *keys]): a SeedSequence hashes the
// entropy words into a PCG64 state, uniform() scales 53-bit doubles, and
// permutation() is Fisher-Yates with numpy's masked rejection sampler. This
// file reproduces those three pieces bit for bit (numpy 1.17 to 2.x), so a
// Go trainer shuffles a chunk exactly as a Python trainer would and a Go
// leader draws the same initial weights and the same chunks: the two
// implementations' results for one SUB_TRAIN job differ only by float32
// rounding, never by the order of the rows.

// SeedSequence constants (numpy/random/bit_generator.pyx, after Melissa
// O'Neill's seed_seq design).
const (
	ssPoolSize = 4
	ssInitA    = 0x43b0d7e5
	ssMultA    = 0x931e8875
	ssInitB    = 0x8b51f9dd
	ssMultB    = 0x58f38ded
	ssMixMultL = 0xca01f9dd
	ssMixMultR = 0x4973f715
	ssXShift   = 16
)

// pcgMultHi/Lo is PCG's default 128-bit multiplier (PCG_DEFAULT_MULTIPLIER_128).
const (
	pcgMultHi = 2549297995355413924
	pcgMultLo = 4865540595714422341
)

// entropyWords is numpy's _coerce_to_uint32_array for a list of
// non-negative ints: each int becomes its little-endian 32-bit words, and 0
// becomes one zero word.
func entropyWords(entropy []uint64) []uint32 {
	var out []uint32
	for _, n := range entropy {
		if n == 0 {
			out = append(out, 0)
		}
		for n > 0 {
			out = append(out, uint32(n))
			n >>= 32
		}
	}
	return out
}

// seedPool is SeedSequence(entropy).pool (no spawn key).
func seedPool(entropy []uint64) [ssPoolSize]uint32 {
	words := entropyWords(entropy)
	hashConst := uint32(ssInitA)
	hashmix := func(v uint32) uint32 {
		v ^= hashConst
		hashConst *= ssMultA
		v *= hashConst
		v ^= v >> ssXShift
		return v
	}
	mix := func(x, y uint32) uint32 {
		r := ssMixMultL*x - ssMixMultR*y
		r ^= r >> ssXShift
		return r
	}
	var pool [ssPoolSize]uint32
	for i := range pool {
		var w uint32
		if i < len(words) {
			w = words[i]
		}
		pool[i] = hashmix(w)
	}
	for src := range pool {
		for dst := range pool {
			if src != dst {
				pool[dst] = mix(pool[dst], hashmix(pool[src]))
			}
		}
	}
	for src := ssPoolSize; src < len(words); src++ {
		for dst := range pool {
			pool[dst] = mix(pool[dst], hashmix(words[src]))
		}
	}
	return pool
}

// generateState is SeedSequence.generate_state(n, np.uint64): 2n 32-bit
// words, paired little-endian.
func generateState(pool [ssPoolSize]uint32, n int) []uint64 {
	hashConst := uint32(ssInitB)
	words := make([]uint32, 2*n)
	for i := range words {
		v := pool[i%ssPoolSize]
		v ^= hashConst
		hashConst *= ssMultB
		v *= hashConst
		v ^= v >> ssXShift
		words[i] = v
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(words[2*i]) | uint64(words[2*i+1])<<32
	}
	return out
}

// Generator is numpy's Generator(PCG64(SeedSequence(entropy))), restricted to
// the draws zmqnode uses. Not safe for concurrent use.
type Generator struct {
	stateHi, stateLo uint64
	incHi, incLo     uint64
	// PCG64's next_uint32 hands out the two halves of one 64-bit output
	// (low half first); numpy keeps the spare half in the bit generator.
	hasUint32 bool
	uint32    uint32
}

// NewGenerator is numpy.random.default_rng([e0, e1, ...]) for non-negative
// integer entropy words, as problem.rng_for builds it.
func NewGenerator(entropy ...uint64) *Generator {
	s := generateState(seedPool(entropy), 4)
	g := &Generator{}
	// pcg_setseq_128_srandom_r(initstate = s0:s1, initseq = s2:s3)
	g.incHi = s[2]<<1 | s[3]>>63
	g.incLo = s[3]<<1 | 1
	g.step()
	var c uint64
	g.stateLo, c = bits.Add64(g.stateLo, s[1], 0)
	g.stateHi, _ = bits.Add64(g.stateHi, s[0], c)
	g.step()
	return g
}

// RNGFor is problem.rng_for: the generator of one stream (init, train,
// split) at one position (round, chunk...).
func RNGFor(seed int64, stream int, keys ...int) *Generator {
	entropy := []uint64{uint64(seed), uint64(stream)}
	for _, k := range keys {
		entropy = append(entropy, uint64(k))
	}
	return NewGenerator(entropy...)
}

func (g *Generator) step() {
	// state = state * mult + inc (mod 2^128)
	hi, lo := bits.Mul64(g.stateLo, pcgMultLo)
	hi += g.stateHi*pcgMultLo + g.stateLo*pcgMultHi
	var c uint64
	lo, c = bits.Add64(lo, g.incLo, 0)
	hi, _ = bits.Add64(hi, g.incHi, c)
	g.stateHi, g.stateLo = hi, lo
}

// Uint64 is PCG64's next_uint64: advance, then the XSL-RR output of the new state.
func (g *Generator) Uint64() uint64 {
	g.step()
	return bits.RotateLeft64(g.stateHi^g.stateLo, -int(g.stateHi>>58))
}

// Uint32 is PCG64's buffered next_uint32.
func (g *Generator) Uint32() uint32 {
	if g.hasUint32 {
		g.hasUint32 = false
		return g.uint32
	}
	n := g.Uint64()
	g.hasUint32 = true
	g.uint32 = uint32(n >> 32)
	return uint32(n)
}

// Random is Generator.random(): a double in [0, 1) from the top 53 bits.
func (g *Generator) Random() float64 {
	return float64(g.Uint64()>>11) * (1.0 / 9007199254740992.0)
}

// Uniform is Generator.uniform(low, high): low + (high - low) * random().
func (g *Generator) Uniform(low, high float64) float64 {
	span := high - low
	return low + span*g.Random()
}

// interval is numpy's random_interval(max): a uniform integer in [0, max]
// by masked rejection (what Generator.shuffle uses, not Lemire's method).
func (g *Generator) interval(max uint64) uint64 {
	if max == 0 {
		return 0
	}
	mask := max
	for _, s := range []uint{1, 2, 4, 8, 16, 32} {
		mask |= mask >> s
	}
	if max <= 0xffffffff {
		for {
			if v := uint64(g.Uint32()) & mask; v <= max {
				return v
			}
		}
	}
	for {
		if v := g.Uint64() & mask; v <= max {
			return v
		}
	}
}

// ShuffleInts is Generator.shuffle of a 1-D array: Fisher-Yates from the end.
// An array of 0 or 1 items draws nothing.
func (g *Generator) ShuffleInts(a []int) {
	for i := len(a) - 1; i > 0; i-- {
		j := int(g.interval(uint64(i)))
		a[i], a[j] = a[j], a[i]
	}
}

// Permutation is Generator.permutation(n): a shuffled 0..n-1.
func (g *Generator) Permutation(n int) []int {
	a := make([]int, n)
	for i := range a {
		a[i] = i
	}
	g.ShuffleInts(a)
	return a
}

// PermuteInts is Generator.permutation(array): a shuffled copy of values.
func (g *Generator) PermuteInts(values []int) []int {
	a := append([]int(nil), values...)
	g.ShuffleInts(a)
	return a
}
