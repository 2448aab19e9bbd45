package ml

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
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
		writePyString(b, x)
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
		b.WriteString(pyFloat(x))
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
			writePyString(b, k)
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
			writePyString(b, kv.key)
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

// writePyString is json.dumps of a str with ensure_ascii=True.
func writePyString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r > 0x7e:
			units := []rune{r}
			if r > 0xffff {
				hi, lo := utf16.EncodeRune(r)
				units = []rune{hi, lo}
			}
			for _, u := range units {
				b.WriteString(`\u`)
				b.WriteByte(hex[u>>12&15])
				b.WriteByte(hex[u>>8&15])
				b.WriteByte(hex[u>>4&15])
				b.WriteByte(hex[u&15])
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// pyFloat is Python's repr(float): the shortest digits that round-trip,
// positional for exponents -4..15 (always with a ".0" if integral),
// scientific otherwise with at least two exponent digits (1e-05, 1e+16).
func pyFloat(x float64) string {
	if x == 0 {
		if math.Signbit(x) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(x, 'e', -1, 64) // "-d.ddde±XX"
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expText, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if -4 <= exp && exp < 16 {
		var out string
		switch {
		case exp < 0:
			out = "0." + strings.Repeat("0", -exp-1) + digits
		case exp+1 >= len(digits):
			out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
		default:
			out = digits[:exp+1] + "." + digits[exp+1:]
		}
		return sign + out
	}
	e := "e+"
	if exp < 0 {
		e, exp = "e-", -exp
	}
	es := strconv.Itoa(exp)
	if len(es) < 2 {
		es = "0" + es
	}
	return sign + mant + e + es
}

// round6 is training._round6: float(f"{v:.6g}").
func round6(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return f
}
