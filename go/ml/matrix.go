package ml

import "fmt"

// Matrix is a row-major float32 matrix, the shape of every array the MLP
// touches (numpy float32, C order, as on the wire and in the model file).
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// NewMatrix is a zero rows x cols matrix.
func NewMatrix(rows, cols int) Matrix {
	return Matrix{rows, cols, make([]float32, rows*cols)}
}

// MatrixOf wraps data (not copied); it must hold rows*cols values.
func MatrixOf(rows, cols int, data []float32) (Matrix, error) {
	if rows < 0 || cols < 0 || len(data) != rows*cols {
		return Matrix{}, fmt.Errorf("%w: %d values cannot be a %d x %d matrix", ErrBadInput, len(data), rows, cols)
	}
	return Matrix{rows, cols, data}, nil
}

// Row is row i (a view).
func (m Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// At is m[i, j].
func (m Matrix) At(i, j int) float32 { return m.Data[i*m.Cols+j] }

// Gather is m[rows] (numpy fancy indexing): a new matrix.
func (m Matrix) Gather(rows []int) Matrix {
	out := NewMatrix(len(rows), m.Cols)
	for i, r := range rows {
		copy(out.Row(i), m.Row(r))
	}
	return out
}

// Slice is m[start:stop] (a view).
func (m Matrix) Slice(start, stop int) Matrix {
	return Matrix{stop - start, m.Cols, m.Data[start*m.Cols : stop*m.Cols]}
}

// matmulInto writes a @ b into out (out: a.Rows x b.Cols). Sums run in
// float64 and round once to float32: numpy's float32 BLAS sums in float32 in
// its own blocked order, so the two agree to a few float32 ulps, never bit
// for bit whatever Go does; the exactly rounded sum is the reproducible choice.
func matmulInto(out, a, b Matrix) {
	acc := make([]float64, b.Cols)
	for i := 0; i < a.Rows; i++ {
		for j := range acc {
			acc[j] = 0
		}
		ar := a.Row(i)
		for k, av := range ar {
			if av == 0 {
				continue // ReLU zeros: a large share of every hidden row
			}
			x := float64(av)
			br := b.Row(k)
			for j, bv := range br {
				acc[j] += x * float64(bv)
			}
		}
		or := out.Row(i)
		for j, v := range acc {
			or[j] = float32(v)
		}
	}
}

// matmulTransAInto writes a.T @ b into out (out: a.Cols x b.Cols).
func matmulTransAInto(out, a, b Matrix) {
	acc := make([]float64, out.Rows*out.Cols)
	for r := 0; r < a.Rows; r++ {
		ar, br := a.Row(r), b.Row(r)
		for i, av := range ar {
			if av == 0 {
				continue
			}
			x := float64(av)
			row := acc[i*b.Cols : (i+1)*b.Cols]
			for j, bv := range br {
				row[j] += x * float64(bv)
			}
		}
	}
	for i, v := range acc {
		out.Data[i] = float32(v)
	}
}

// matmulTransBInto writes a @ b.T into out (out: a.Rows x b.Rows).
func matmulTransBInto(out, a, b Matrix) {
	for i := 0; i < a.Rows; i++ {
		ar := a.Row(i)
		or := out.Row(i)
		for j := 0; j < b.Rows; j++ {
			br := b.Row(j)
			var s float64
			for k, av := range ar {
				s += float64(av) * float64(br[k])
			}
			or[j] = float32(s)
		}
	}
}
