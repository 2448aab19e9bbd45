package ml

import "testing"

// BenchmarkTrainChunkEpoch is one local epoch of the default network
// (20 -> 64 -> 1) on a 6,700-row chunk: a third of bench's 20,000-row set.
func BenchmarkTrainChunkEpoch(b *testing.B) {
	g := NewGenerator(1)
	x, y := NewMatrix(6700, 20), NewMatrix(6700, 1)
	for i := range x.Data {
		x.Data[i] = float32(g.Uniform(-2, 2))
	}
	for i := range y.Data {
		if x.Data[i*20]+x.Data[i*20+3] > 0 {
			y.Data[i] = 1
		}
	}
	o := DefaultOptions()
	o.Task = TaskBinary
	a, _ := ChunkArchitecture(x, y, o)
	p := InitParams(a, g)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := TrainChunk(p, x, y, o, 0, 0, 1); err != nil {
			b.Fatal(err)
		}
	}
}
