package ml

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"zmqnode/pyfmt"
)

// PyJSON encodes v exactly as Python's
// json.dumps(v, sort_keys=True, separators=(",", ":"), allow_nan=False)
// does, which is what model_file.py writes into every model file. Go's
// encoding/json differs in three ways that change bytes: floats (Python
// writes repr(): 1.0, 1e-05, 1e+16), escaping (Python escapes every
// non-ASCII character as \uXXXX, and not <, > or &), and map order only
// matches for ASCII keys. Values: nil, bool, string, int, int64, float32
// (widened), float64, json.Number, []any, []string, []int, map[string]any.
func PyJSON(v any) ([]byte, error) {
	var b strings.Builder
	if err := writePyJSON(&b, v, true); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func writePyJSON(b *strings.Builder, v any, sortKeys bool) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		b.WriteString(pyfmt.QuoteASCII(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float32:
		return writePyJSON(b, float64(x), sortKeys)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%w: out of range float values are not JSON compliant: %v", ErrModelFormat, x)
		}
		b.WriteString(pyfmt.FloatRepr(x))
	case json.Number:
		if _, ok := jsonInt(x); ok || !strings.ContainsAny(string(x), ".eE") {
			b.WriteString(string(x))
			return nil
		}
		f, err := x.Float64()
		if err != nil {
			return fmt.Errorf("%w: bad number %q", ErrModelFormat, string(x))
		}
		return writePyJSON(b, f, sortKeys)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return writePyJSON(b, items, sortKeys)
	case []int:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return writePyJSON(b, items, sortKeys)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writePyJSON(b, e, sortKeys); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		if sortKeys {
			sortPyStrings(keys)
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pyfmt.QuoteASCII(k))
			b.WriteByte(':')
			if err := writePyJSON(b, x[k], sortKeys); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case orderedObject:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pyfmt.QuoteASCII(kv.key))
			b.WriteByte(':')
			if err := writePyJSON(b, kv.value, sortKeys); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("%w: %T is not JSON-serializable", ErrModelFormat, v)
	}
	return nil
}

// orderedObject is a JSON object written in its own key order (the
// safetensors header, whose order model_file.py fixes by hand).
type orderedObject []keyValue

type keyValue struct {
	key   string
	value any
}

// sortPyStrings sorts as Python sorts str: by code point. Byte order of
// UTF-8 is code-point order, so a plain string sort is right.
func sortPyStrings(keys []string) { sort.Strings(keys) }

// round6 is training._round6: float(f"{v:.6g}").
func round6(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return f
}
