package ml

import (
	"reflect"
	"testing"
)

// Generator reproduces numpy's default_rng draws bit for bit: uniform
// doubles and permutations, interleaved as the Python code interleaves them.
func TestGeneratorMatchesNumpy(t *testing.T) {
	var cases []struct {
		Entropy []uint64
		Uniform []float64
		Perms   [][]int
		After   []float64
	}
	loadGolden(t, "rng.json", &cases)
	for _, c := range cases {
		g := NewGenerator(c.Entropy...)
		for i, want := range c.Uniform {
			if got := g.Uniform(-0.25, 0.75); got != want {
				t.Fatalf("%v: uniform %d = %v, numpy %v", c.Entropy, i, got, want)
			}
		}
		for _, want := range c.Perms {
			got := g.Permutation(len(want))
			if !reflect.DeepEqual(got, want) && len(want) > 0 {
				t.Fatalf("%v: permutation(%d) = %v, numpy %v", c.Entropy, len(want), got, want)
			}
		}
		for i, want := range c.After {
			if got := g.Uniform(0, 1); got != want {
				t.Fatalf("%v: uniform after permutations %d = %v, numpy %v", c.Entropy, i, got, want)
			}
		}
	}
}

func TestRNGForIsDefaultRngOfSeedStreamKeys(t *testing.T) {
	a, b := RNGFor(42, 2, 1), NewGenerator(42, 2, 1)
	if a.Uint64() != b.Uint64() {
		t.Fatal("RNGFor(seed, stream, keys...) must be default_rng([seed, stream, *keys])")
	}
}
