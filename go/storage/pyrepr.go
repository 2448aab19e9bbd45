package storage

// Python's spellings of values, for error texts and JSON that must match the
// Python node's byte for byte.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"zmqnode/pyfmt"
)

// pyBytesRepr is repr(b) of Python bytes: b'...' (b"..." when the bytes hold
// a ' and no "), \t \n \r \\ by name, other bytes outside 0x20..0x7e as \xNN.
func pyBytesRepr(data []byte) string {
	quote := byte('\'')
	if strings.IndexByte(string(data), '\'') >= 0 && strings.IndexByte(string(data), '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte('b')
	b.WriteByte(quote)
	for _, c := range data {
		switch {
		case c == quote || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// isIntLiteral reports whether a JSON number literal is an int for Python's
// json module (no fraction, no exponent).
func isIntLiteral(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}

// pyIntLiteral normalizes a JSON int literal as Python prints the int ("-0"
// is 0).
func pyIntLiteral(n json.Number) string {
	s := string(n)
	if strings.Trim(s, "-0") == "" {
		return "0"
	}
	return s
}

// pyFloat is float(literal) as Python's json module computes it (overflow
// gives ±inf).
func pyFloat(n json.Number) float64 {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

// pyTypeName is type(v).__name__ of a value json.loads returned.
func pyTypeName(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case json.Number:
		if isIntLiteral(x) {
			return "int"
		}
		return "float"
	case pyConst:
		return "float"
	case []interface{}:
		return "list"
	case *pyObject:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

// pyRepr is repr(v) of a value pyJSONLoads returned.
func pyRepr(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return pyfmt.StrRepr(x)
	case json.Number:
		if isIntLiteral(x) {
			return pyIntLiteral(x)
		}
		return pyfmt.FloatRepr(pyFloat(x))
	case []interface{}:
		parts := make([]string, len(x))
		for i, item := range x {
			parts[i] = pyRepr(item)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case pyConst:
		return pyfmt.FloatRepr(float64(x))
	case *pyObject:
		parts := make([]string, len(x.keys))
		for i, k := range x.keys {
			parts[i] = pyfmt.StrRepr(k) + ": " + pyRepr(x.values[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}
