package httpinfer

import (
	"fmt"
	"strings"
	"testing"
)

func benchBody(rows, cols int, value func(i int) string) []byte {
	vals := make([]string, rows*cols)
	for i := range vals {
		vals[i] = value(i)
	}
	return []byte(fmt.Sprintf(`{"inputs":[{"name":"inputs","datatype":"FP32","shape":[%d,%d],"data":[%s]}]}`,
		rows, cols, strings.Join(vals, ",")))
}

func BenchmarkParseInferJSON1000x10Floats(b *testing.B) {
	body := benchBody(1000, 10, func(i int) string { return fmt.Sprintf("%d.25", i%97) })
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseInfer("m", body, 0, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInferJSON1000x10Ints(b *testing.B) {
	body := benchBody(1000, 10, func(i int) string { return fmt.Sprint(i % 97) })
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseInfer("m", body, 0, false); err != nil {
			b.Fatal(err)
		}
	}
}
