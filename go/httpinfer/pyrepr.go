package httpinfer

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"zmqnode/metrics"
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
		return strRepr(x)
	case wire.Number:
		p := readNumber(x)
		if p.isInt {
			return p.i.String()
		}
		return metrics.PyFloatRepr(p.f)
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
			parts[i] = strRepr(f.Key) + ": " + repr(f.Value)
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

// strRepr is repr() of a str: Python's quoting and escapes, with
// unicode.IsPrint standing in for str.isprintable.
func strRepr(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}

// latin1 reads bytes as Latin-1, as h11 and http.server decode a request
// line and header values: each byte one character.
func latin1(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			r := make([]rune, len(s))
			for j := 0; j < len(s); j++ {
				r[j] = rune(s[j])
			}
			return string(r)
		}
	}
	return s
}

// formatF32 is how orjson (3.13, the project's) writes a numpy float32:
// the shortest digits that read back as the float32, positional when the
// value is below 10^13 and not below 10^-6, else d.ddde±x ("1e-7",
// "1e+13").
func formatF32(f float32) string {
	return ryuFormat(float64(f), 32, 13, -6)
}

// formatF64 is how orjson writes a float64: the same with 10^16 and
// 10^-5 (wire.FormatFloat).
func formatF64(f float64) string {
	return ryuFormat(f, 64, 16, -5)
}

func ryuFormat(f float64, bits, maxExp, minExp int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, bits) // d.ddde±XX
	mant, expText, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(expText)
	kk := x + 1 // digits are 0.d1d2... × 10^kk
	length := len(digits)
	k := kk - length
	switch {
	case k >= 0 && kk <= maxExp:
		return sign + digits + strings.Repeat("0", k) + ".0"
	case kk > 0 && kk <= maxExp:
		return sign + digits[:kk] + "." + digits[kk:]
	case kk > minExp && kk <= 0:
		return sign + "0." + strings.Repeat("0", -kk) + digits
	}
	m := digits[:1]
	if length > 1 {
		m += "." + digits[1:]
	}
	if kk-1 >= 0 {
		return sign + m + "e+" + strconv.Itoa(kk-1)
	}
	return sign + m + "e" + strconv.Itoa(kk-1)
}
