package wire

import (
	"bytes"
	"math"
	"testing"
)

func TestFloat32ViewReadsTheSameValuesAsFloat32s(t *testing.T) {
	values := []float32{0, -1.5, float32(math.Inf(1)), 3.25e-20, math.MaxFloat32}
	a := FromFloat32([]int{len(values)}, values)
	for _, tc := range []struct {
		name string
		a    Array
	}{
		{"aligned", a},
		{"unaligned", Array{Float32, a.Shape, append(make([]byte, 1, len(a.Data)+1), a.Data...)[1:]}},
		{"empty", Array{Float32, []int{0}, []byte{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, _ := tc.a.Float32s()
			got, err := tc.a.Float32View()
			if err != nil || len(got) != len(want) {
				t.Fatalf("got %v, %v; want %v", got, err, want)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestFloat32ViewRefusesAnotherDtype(t *testing.T) {
	if _, err := FromInt64([]int{1}, []int64{1}).Float32View(); err == nil {
		t.Fatal("an int64 array read as float32")
	}
}

func TestViewFloat32HasFromFloat32sBytes(t *testing.T) {
	for _, values := range [][]float32{{1, -2.5, float32(math.NaN())}, {}} {
		want := FromFloat32([]int{len(values)}, values)
		got := ViewFloat32([]int{len(values)}, values)
		if got.Dtype != want.Dtype || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("%v: % x, want % x", values, got.Data, want.Data)
		}
	}
}

// The leader's cost of reading a TRAIN's inputs: 1 MiB of float32.
func BenchmarkFloat32s(b *testing.B) {
	a := Array{Float32, []int{1 << 18}, make([]byte, 1<<20)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = a.Float32s()
	}
}

func BenchmarkFloat32View(b *testing.B) {
	a := Array{Float32, []int{1 << 18}, make([]byte, 1<<20)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = a.Float32View()
	}
}
