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

// GatherInto is Gather into buf's storage when it is large enough (the
// result aliases buf), else into a new matrix.
func (m Matrix) GatherInto(buf []float32, rows []int) Matrix {
	n := len(rows) * m.Cols
	if cap(buf) < n {
		return m.Gather(rows)
	}
	out := Matrix{len(rows), m.Cols, buf[:n]}
	for i, r := range rows {
		copy(out.Row(i), m.Row(r))
	}
	return out
}

// Slice is m[start:stop] (a view).
func (m Matrix) Slice(start, stop int) Matrix {
	return Matrix{stop - start, m.Cols, m.Data[start*m.Cols : stop*m.Cols]}
}

// scratch holds float64 buffers a matrix product reuses across calls
// (one job multiplies the same shapes thousands of times; fresh buffers each
// time kept the garbage collector busy for a third of a job). nil allocates.
type scratch struct {
	bw, acc, b0, b1, b2, b3 []float64
}

func grow(buf []float64, n int) []float64 {
	if cap(buf) < n {
		return make([]float64, n)
	}
	return buf[:n]
}

// widen is a as float64 (reused buffer): each float32 is converted once
// per product instead of once per multiply-add.
func widen64(a []float32, buf []float64) []float64 {
	buf = grow(buf, len(a))
	for i, v := range a {
		buf[i] = float64(v)
	}
	return buf
}

// matmulInto writes a @ b into out (out: a.Rows x b.Cols). Sums run in
// float64 and round once to float32: numpy's float32 BLAS sums in float32 in
// its own blocked order, so the two agree to a few float32 ulps, never bit
// for bit whatever Go does; the exactly rounded sum is the reproducible choice.
func matmulInto(out, a, b Matrix, s *scratch) {
	if s == nil {
		s = &scratch{}
	}
	n := b.Cols
	s.bw = widen64(b.Data, s.bw)
	s.acc = grow(s.acc, n)
	bw, acc := s.bw, s.acc
	for i := 0; i < a.Rows; i++ {
		for j := range acc {
			acc[j] = 0
		}
		ar := a.Row(i)
		k := 0
		// Four rows of b per pass: a quarter of the loads and stores of acc.
		for ; k+4 <= len(ar); k += 4 {
			x0, x1, x2, x3 := float64(ar[k]), float64(ar[k+1]), float64(ar[k+2]), float64(ar[k+3])
			b0 := bw[k*n : k*n+n]
			b1 := bw[(k+1)*n : (k+1)*n+n]
			b2 := bw[(k+2)*n : (k+2)*n+n]
			b3 := bw[(k+3)*n : (k+3)*n+n]
			acc := acc[:len(b0)]
			b1, b2, b3 = b1[:len(b0)], b2[:len(b0)], b3[:len(b0)]
			for j, v := range b0 {
				acc[j] += x0*v + x1*b1[j] + x2*b2[j] + x3*b3[j]
			}
		}
		for ; k < len(ar); k++ {
			x := float64(ar[k])
			br := bw[k*n : k*n+n]
			acc := acc[:len(br)]
			for j, v := range br {
				acc[j] += x * v
			}
		}
		or := out.Data[i*n : i*n+n]
		for j, v := range acc {
			or[j] = float32(v)
		}
	}
}

// matmulTransAInto writes a.T @ b into out (out: a.Cols x b.Cols).
func matmulTransAInto(out, a, b Matrix, s *scratch) {
	if s == nil {
		s = &scratch{}
	}
	n, m := b.Cols, a.Cols
	s.acc = grow(s.acc, out.Rows*n)
	acc := s.acc
	for i := range acc {
		acc[i] = 0
	}
	b0, b1, b2, b3 := s.b0, s.b1, s.b2, s.b3
	defer func() { s.b0, s.b1, s.b2, s.b3 = b0, b1, b2, b3 }()
	r := 0
	// Four rows of a and b per pass: a quarter of the loads and stores of acc.
	for ; r+4 <= a.Rows; r += 4 {
		b0, b1, b2, b3 = widen64(b.Row(r), b0), widen64(b.Row(r+1), b1), widen64(b.Row(r+2), b2), widen64(b.Row(r+3), b3)
		a0, a1, a2, a3 := a.Row(r), a.Row(r+1), a.Row(r+2), a.Row(r+3)
		for i := 0; i < m; i++ {
			x0, x1, x2, x3 := float64(a0[i]), float64(a1[i]), float64(a2[i]), float64(a3[i])
			row := acc[i*n : i*n+n]
			row = row[:len(b0)]
			c1, c2, c3 := b1[:len(b0)], b2[:len(b0)], b3[:len(b0)]
			for j, v := range b0 {
				row[j] += x0*v + x1*c1[j] + x2*c2[j] + x3*c3[j]
			}
		}
	}
	for ; r < a.Rows; r++ {
		b0 = widen64(b.Row(r), b0)
		for i, av := range a.Row(r) {
			x := float64(av)
			row := acc[i*n : i*n+n]
			row = row[:len(b0)]
			for j, v := range b0 {
				row[j] += x * v
			}
		}
	}
	for i, v := range acc {
		out.Data[i] = float32(v)
	}
}

// matmulTransBInto writes a @ b.T into out (out: a.Rows x b.Rows).
func matmulTransBInto(out, a, b Matrix, s *scratch) {
	if s == nil {
		s = &scratch{}
	}
	s.bw = widen64(b.Data, s.bw)
	bw := s.bw
	k := b.Cols
	ar := s.b0
	defer func() { s.b0 = ar }()
	for i := 0; i < a.Rows; i++ {
		ar = widen64(a.Row(i), ar)
		or := out.Data[i*b.Rows : (i+1)*b.Rows]
		for j := range or {
			br := bw[j*k : j*k+k]
			var s float64
			for c, av := range ar {
				s += av * br[c]
			}
			or[j] = float32(s)
		}
	}
}
