package wire

import "testing"

func TestConvertToFloat32IsAstypeFloat32(t *testing.T) {
	cases := []Array{FromFloat64([]int{2}, []float64{1.5, -2}), FromInt32([]int{2}, []int32{1, -2}), FromInt64([]int{2}, []int64{3, 1 << 40})}
	want := [][]float32{{1.5, -2}, {1, -2}, {3, 1 << 40}}
	for i, a := range cases {
		got, ok, err := a.ConvertToFloat32()
		if !ok || err != nil || len(got) != 2 || got[0] != want[i][0] || got[1] != want[i][1] {
			t.Errorf("%s: %v %v %v, want %v", a.Dtype, got, ok, err, want[i])
		}
	}
	if _, ok, _ := FromFloat32([]int{1}, []float32{1}).ConvertToFloat32(); ok {
		t.Error("float32 is left to the caller")
	}
}
