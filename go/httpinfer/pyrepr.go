package httpinfer

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"unicode/utf8"
	"zmqnode/pyfmt"

	"zmqnode/wire"
)

// Python's view of a decoded JSON value (what orjson.loads returns), for
// error messages that quote what the client sent as oip.py does: repr(),
// "a number", and the int/float split of JSON numbers.

// pyNumber is a JSON number as orjson reads it: an int when the literal has
// no fraction or exponent and fits in 64 bits (signed, or unsigned when not
// negative), else a float.
type pyNumber struct {
	isInt bool
	i     *big.Int // when isInt
	f     float64  // when !isInt
}

func readNumber(n wire.Number) pyNumber {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		i, ok := new(big.Int).SetString(s, 10)
		if ok && i.Cmp(minInt64) >= 0 && i.Cmp(maxUint64) <= 0 {
			return pyNumber{isInt: true, i: i}
		}
	}
	f, _ := n.Float64()
	return pyNumber{f: f}
}

var (
	minInt64  = big.NewInt(math.MinInt64)
	maxInt64  = big.NewInt(math.MaxInt64)
	maxUint64 = new(big.Int).SetUint64(math.MaxUint64)
)

// isPyInt reports whether v is a Python int (not a bool) and returns it.
func isPyInt(v any) (*big.Int, bool) {
	n, ok := v.(wire.Number)
	if !ok {
		return nil, false
	}
	p := readNumber(n)
	return p.i, p.isInt
}

// kind is oip.py's _kind: how a message names what was sent instead.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case *wire.Object:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case wire.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// repr is Python's repr() of a decoded JSON value.
func repr(v any) string {
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
	case wire.Number:
		p := readNumber(x)
		if p.isInt {
			return p.i.String()
		}
		return pyfmt.FloatRepr(p.f)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = repr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *wire.Object:
		fields := x.Fields()
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = pyfmt.StrRepr(f.Key) + ": " + repr(f.Value)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// reprCut is f"{v!r:.n}": the repr cut to n characters.
func reprCut(v any, n int) string { return cut(repr(v), n) }

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
