package wire

import (
	"bytes"
	"fmt"
	"sort"
	"unicode/utf8"
	"zmqnode/pyfmt"
)

// MarshalSortedASCII writes v as Python's
// json.dumps(v, sort_keys=True, separators=(",", ":")) does (ensure_ascii
// on): keys sorted by code point, no spaces, every character outside
// printable ASCII escaped as \uXXXX (UTF-16 pairs beyond the BMP). This is
// the encoding of a membership (zmqnode/raft/membership.py: a CONFIG
// entry's data and a snapshot's membership), which must be the same bytes
// whichever node wrote it. Floats are refused: Python's repr format is not
// needed there and not implemented.
func MarshalSortedASCII(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeSorted(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeSorted(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		return writeASCIIString(b, x)
	case float32, float64:
		return fmt.Errorf("MarshalSortedASCII: floats are not supported")
	case Number:
		if !x.IsInt() {
			return fmt.Errorf("MarshalSortedASCII: floats are not supported")
		}
		b.WriteString(string(x))
	case *Object:
		fields := x.Fields()
		sort.Slice(fields, func(i, j int) bool { return fields[i].Key < fields[j].Key })
		b.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeASCIIString(b, f.Key); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeSorted(b, f.Value); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case map[string]string:
		o := &Object{}
		for k, s := range x {
			o.Set(k, s)
		}
		return writeSorted(b, o)
	case map[string]any:
		o := &Object{}
		for k, s := range x {
			o.Set(k, s)
		}
		return writeSorted(b, o)
	case []string:
		return writeSortedList(b, len(x), func(i int) any { return x[i] })
	case []any:
		return writeSortedList(b, len(x), func(i int) any { return x[i] })
	default:
		return writeValue(b, v) // null, bools, integers: the same text
	}
	return nil
}

func writeSortedList(b *bytes.Buffer, n int, at func(int) any) error {
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeSorted(b, at(i)); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

// writeASCIIString is Python's json encoder with ensure_ascii
// (pyfmt.QuoteASCII), refusing what is not UTF-8.
func writeASCIIString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string %q is not valid UTF-8", s)
	}
	b.WriteString(pyfmt.QuoteASCII(s))
	return nil
}
