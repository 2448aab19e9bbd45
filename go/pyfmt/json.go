package pyfmt

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// QuoteASCII is json.dumps(s) with ensure_ascii=True (Python's default):
// the quoted string with '"' '\\' '\n' '\r' '\t' '\b' '\f' escaped by name
// and every other character outside ' '..'~' (controls, DEL, non-ASCII) as
// \uXXXX in lower-case hex, a UTF-16 surrogate pair beyond the BMP. '/' is
// not escaped. A surrogate's 3-byte encoding (a str Python could hold, see
// DecodeWTF8) is escaped as that surrogate; other invalid bytes as \ufffd.
func QuoteASCII(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := DecodeWTF8(s[i:])
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r >= ' ' && r <= '~':
				b.WriteByte(byte(r))
			case r >= 0x10000:
				v := r - 0x10000
				writeU(&b, 0xd800|(v>>10))
				writeU(&b, 0xdc00|(v&0x3ff))
			default:
				writeU(&b, r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeU(b *strings.Builder, u rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[u>>12&0xf])
	b.WriteByte(hexDigits[u>>8&0xf])
	b.WriteByte(hexDigits[u>>4&0xf])
	b.WriteByte(hexDigits[u&0xf])
}

// DecodeWTF8 is utf8.DecodeRuneInString that also decodes a surrogate's
// 3-byte encoding (a Python str may hold a lone surrogate); (RuneError, 1)
// for other invalid bytes.
func DecodeWTF8(s string) (rune, int) {
	if len(s) >= 3 && s[0] == 0xed && s[1] >= 0xa0 && s[1] <= 0xbf && s[2]&0xc0 == 0x80 {
		return 0xd000 | rune(s[1]&0x3f)<<6 | rune(s[2]&0x3f), 3
	}
	return utf8.DecodeRuneInString(s)
}

// OrjsonFloat formats f as orjson writes a float64: the shortest digits
// that read back as f; positional notation with at least one decimal
// ("1.0", "0.00001", "1000000000000000.0") when the decimal exponent is in
// -5..15, otherwise scientific with an explicit sign and no padding
// ("1e-6", "1e+16", "1.5e+300"); NaN and ±Inf are null (orjson's choice;
// never send them). json.dumps differs: see FloatRepr.
func OrjsonFloat(f float64) string {
	return ryuFormat(f, 64, 16, -5)
}

// OrjsonFloat32 is how orjson (3.13, the project's) writes a numpy float32:
// the shortest digits that read back as the float32, positional when the
// value is below 10^13 and not below 10^-6, else d.ddde±x ("1e-7",
// "1e+13").
func OrjsonFloat32(f float32) string {
	return ryuFormat(float64(f), 32, 13, -6)
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
