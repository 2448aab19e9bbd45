package pyfmt

import (
	"math"
	"testing"
)

func TestFloatReprIsPythonsRepr(t *testing.T) {
	floats := map[float64]string{
		1e16: "1e+16", 1e15: "1000000000000000.0", 0.0001: "0.0001", 0.00001: "1e-05",
		123.456: "123.456", 1.5e-7: "1.5e-07", 4: "4.0", 1e22: "1e+22", 12345678901234567: "1.2345678901234568e+16",
		0: "0.0", math.Copysign(0, -1): "-0.0", -2.5: "-2.5", 1e100: "1e+100",
		math.Inf(1): "inf", math.Inf(-1): "-inf",
	}
	for f, want := range floats {
		if got := FloatRepr(f); got != want {
			t.Errorf("FloatRepr(%v) = %q, want %q", f, got, want)
		}
	}
	if got := FloatRepr(math.NaN()); got != "nan" {
		t.Errorf("FloatRepr(NaN) = %q", got)
	}
}

func TestOrjsonFloatDiffersFromReprInTheExponent(t *testing.T) {
	cases := map[float64]string{
		1e16: "1e+16", 1e15: "1000000000000000.0", 0.00001: "0.00001", 1e-6: "1e-6",
		4: "4.0", 1.5e300: "1.5e+300", -1.5e7: "-15000000.0", 0: "0.0", math.Inf(1): "null",
	}
	for f, want := range cases {
		if got := OrjsonFloat(f); got != want {
			t.Errorf("OrjsonFloat(%v) = %q, want %q", f, got, want)
		}
	}
	f32 := map[float32]string{0.1: "0.1", 1e13: "1e+13", 1e12: "1000000000000.0", 1e-7: "1e-7", 1e-6: "0.000001"}
	for f, want := range f32 {
		if got := OrjsonFloat32(f); got != want {
			t.Errorf("OrjsonFloat32(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestQuoteASCIIIsJSONDumpsEnsureASCII(t *testing.T) {
	cases := map[string]string{
		"a\x7f\x01é😀\"\\/": `"a\u007f\u0001\u00e9\ud83d\ude00\"\\/"`,
		"\n\r\t\b\f":       `"\n\r\t\b\f"`,
		"\xed\xa0\x80":     `"\ud800"`, // a lone surrogate, as Python holds it
		"\xff":             `"\ufffd"`,
		"":                 `""`,
	}
	for s, want := range cases {
		if got := QuoteASCII(s); got != want {
			t.Errorf("QuoteASCII(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestStrReprIsPythonsRepr(t *testing.T) {
	cases := map[string]string{
		"abc": `'abc'`, "it's": `"it's"`, `a'b"c`: `'a\'b"c'`, "\t\n\r\x01\x7f": `'\t\n\r\x01\x7f'`,
		"é": `'é'`, "\u00a0": `'\xa0'`, "\u2028": `'\u2028'`, "\xed\xa0\x80": `'\ud800'`, "\xff": `'\udcff'`,
	}
	for s, want := range cases {
		if got := StrRepr(s); got != want {
			t.Errorf("StrRepr(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestLatin1ReadsEachByteAsOneCharacter(t *testing.T) {
	if got := Latin1("caf\xe9"); got != "café" {
		t.Errorf("Latin1 = %q", got)
	}
	if got := Latin1("plain"); got != "plain" {
		t.Errorf("Latin1 = %q", got)
	}
}
