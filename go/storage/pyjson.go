package storage

// pyJSONLoads is Python's json.loads(bytes) (CPython 3.11, its C scanner),
// so that raft_state.json is accepted, refused and described exactly as the
// Python node does: the text encoding detected as json.detect_encoding
// does, decoded with 'surrogatepass'; NaN, Infinity, -Infinity; big ints;
// duplicate keys (last value, first position); the same error messages with
// the same positions (counted in code points).
//
// Values: nil, bool, json.Number (int or float literal as written),
// pyConst (NaN, ±Infinity), string, []interface{}, *pyObject. Strings hold
// WTF-8: a lone surrogate (legal in a Python str) is its 3-byte encoding.

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"zmqnode/pyfmt"
)

// pyConst is a float JSON constant: NaN, Infinity or -Infinity.
type pyConst float64

// pyObject is a JSON object with Python's dict order.
type pyObject struct {
	keys   []string
	values map[string]interface{}
}

func (o *pyObject) get(key string) interface{} { return o.values[key] }

func (o *pyObject) set(key string, v interface{}) {
	if _, ok := o.values[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.values[key] = v
}

// pyDecodeError is json.JSONDecodeError or UnicodeDecodeError: Error() is
// Python's str(exc).
type pyDecodeError struct{ msg string }

func (e *pyDecodeError) Error() string { return e.msg }

func pyJSONLoads(raw []byte) (interface{}, error) {
	text, err := pyDecodeText(raw)
	if err != nil {
		return nil, err
	}
	p := &pyParser{s: text}
	idx := p.skipSpace(0)
	v, end, stop := p.scanOnce(idx)
	if stop >= 0 {
		return nil, p.errorAt("Expecting value", stop)
	}
	if err := p.err; err != nil {
		return nil, err
	}
	if end = p.skipSpace(end); end != len(text) {
		return nil, p.errorAt("Extra data", end)
	}
	return v, nil
}

// -- text encodings (json.detect_encoding, codecs with surrogatepass) --

func pyDecodeText(b []byte) ([]rune, error) {
	has := func(prefix string) bool { return strings.HasPrefix(string(b), prefix) }
	switch {
	case has("\x00\x00\xfe\xff"):
		return decodeUTF32("utf-32", b[4:], 4, false)
	case has("\xff\xfe\x00\x00"):
		return decodeUTF32("utf-32", b[4:], 4, true)
	case has("\xfe\xff"):
		return decodeUTF16("utf-16", b[2:], 2, false)
	case has("\xff\xfe"):
		return decodeUTF16("utf-16", b[2:], 2, true)
	case has("\xef\xbb\xbf"):
		return decodeUTF8(b[3:]) // utf-8-sig: positions after the BOM
	}
	if len(b) >= 4 {
		if b[0] == 0 {
			if b[1] != 0 {
				return decodeUTF16("utf-16-be", b, 0, false)
			}
			return decodeUTF32("utf-32-be", b, 0, false)
		}
		if b[1] == 0 {
			if b[2] != 0 || b[3] != 0 {
				return decodeUTF16("utf-16-le", b, 0, true)
			}
			return decodeUTF32("utf-32-le", b, 0, true)
		}
	} else if len(b) == 2 {
		if b[0] == 0 {
			return decodeUTF16("utf-16-be", b, 0, false)
		}
		if b[1] == 0 {
			return decodeUTF16("utf-16-le", b, 0, true)
		}
	}
	return decodeUTF8(b)
}

func codecError(codec string, data []byte, start, end int, reason string) error {
	if end == start+1 {
		return &pyDecodeError{fmt.Sprintf("'%s' codec can't decode byte 0x%02x in position %d: %s",
			codec, data[start], start, reason)}
	}
	return &pyDecodeError{fmt.Sprintf("'%s' codec can't decode bytes in position %d-%d: %s",
		codec, start, end-1, reason)}
}

func isCont(c byte) bool { return c&0xc0 == 0x80 }

// decodeUTF8 is CPython's UTF-8 decoder with the surrogatepass handler.
func decodeUTF8(b []byte) ([]rune, error) {
	out := make([]rune, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			out = append(out, rune(c))
			i++
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			out = append(out, r)
			i += size
			continue
		}
		// Surrogatepass: ED A0..BF 80..BF is a surrogate.
		if c == 0xed && i+2 < len(b) && b[i+1] >= 0xa0 && b[i+1] <= 0xbf && isCont(b[i+2]) {
			out = append(out, rune(0xd000|rune(b[i+1]&0x3f)<<6|rune(b[i+2]&0x3f)))
			i += 3
			continue
		}
		return nil, utf8Error(b, i)
	}
	return out, nil
}

// utf8Error reproduces the reason and range CPython reports at b[start].
func utf8Error(b []byte, start int) error {
	c, left := b[start], len(b)-start
	end := func() error { return codecError("utf-8", b, start, len(b), "unexpected end of data") }
	cont := func(n int) error { return codecError("utf-8", b, start, start+n, "invalid continuation byte") }
	switch {
	case c < 0xc2 || c >= 0xf5:
		return codecError("utf-8", b, start, start+1, "invalid start byte")
	case c < 0xe0:
		if left < 2 {
			return end()
		}
		return cont(1)
	case c < 0xf0:
		if left < 2 {
			return end()
		}
		c2 := b[start+1]
		bad2 := !isCont(c2) || (c == 0xe0 && c2 < 0xa0) || (c == 0xed && c2 >= 0xa0)
		if bad2 {
			return cont(1)
		}
		if left < 3 {
			return end()
		}
		return cont(2)
	default:
		if left < 2 {
			return end()
		}
		c2 := b[start+1]
		if !isCont(c2) || (c == 0xf0 && c2 < 0x90) || (c == 0xf4 && c2 >= 0x90) {
			return cont(1)
		}
		if left < 3 {
			return end()
		}
		if !isCont(b[start+2]) {
			return cont(2)
		}
		if left < 4 {
			return end()
		}
		return cont(3)
	}
}

func decodeUTF16(codec string, b []byte, offset int, little bool) ([]rune, error) {
	n := len(b) / 2
	units := make([]uint16, n)
	for k := 0; k < n; k++ {
		if little {
			units[k] = uint16(b[2*k]) | uint16(b[2*k+1])<<8
		} else {
			units[k] = uint16(b[2*k])<<8 | uint16(b[2*k+1])
		}
	}
	var out []rune
	for k := 0; k < n; k++ {
		u := rune(units[k])
		if utf16.IsSurrogate(u) && u < 0xdc00 && k+1 < n && units[k+1] >= 0xdc00 && units[k+1] <= 0xdfff {
			out = append(out, utf16.DecodeRune(u, rune(units[k+1])))
			k++
			continue
		}
		out = append(out, u) // a lone surrogate passes
	}
	if len(b)%2 == 1 {
		whole := append(make([]byte, offset), b...)
		return nil, codecError(codec, whole, offset+len(b)-1, offset+len(b), "truncated data")
	}
	return out, nil
}

func decodeUTF32(codec string, b []byte, offset int, little bool) ([]rune, error) {
	whole := append(make([]byte, offset), b...)
	var out []rune
	for k := 0; k+4 <= len(b); k += 4 {
		var r uint32
		if little {
			r = uint32(b[k]) | uint32(b[k+1])<<8 | uint32(b[k+2])<<16 | uint32(b[k+3])<<24
		} else {
			r = uint32(b[k])<<24 | uint32(b[k+1])<<16 | uint32(b[k+2])<<8 | uint32(b[k+3])
		}
		if r > 0x10ffff {
			return nil, codecError(codec, whole, offset+k, offset+k+4, "code point not in range(0x110000)")
		}
		out = append(out, rune(r))
	}
	if rest := len(b) % 4; rest != 0 {
		return nil, codecError(codec, whole, offset+len(b)-rest, offset+len(b), "truncated data")
	}
	return out, nil
}

// wtf8 is the Go string of Python str runes (surrogates encoded as such).
func wtf8(rs []rune) string {
	var b strings.Builder
	for _, r := range rs {
		if r >= 0xd800 && r <= 0xdfff {
			b.WriteByte(0xed)
			b.WriteByte(byte(0x80 | (r>>6)&0x3f))
			b.WriteByte(byte(0x80 | r&0x3f))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// validWTF8 reports whether s is a string Python could hold (UTF-8 with
// surrogates allowed).
func validWTF8(s string) bool {
	for i := 0; i < len(s); {
		r, size := pyfmt.DecodeWTF8(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// -- the scanner (Modules/_json.c) --

type pyParser struct {
	s   []rune
	err error // a JSONDecodeError other than "Expecting value"
}

func (p *pyParser) errorAt(msg string, pos int) error {
	line, col := 1, pos+1
	for i := 0; i < pos && i < len(p.s); i++ {
		if p.s[i] == '\n' {
			line++
			col = pos - i
		}
	}
	return &pyDecodeError{fmt.Sprintf("%s: line %d column %d (char %d)", msg, line, col, pos)}
}

func (p *pyParser) fail(msg string, pos int) (interface{}, int, int) {
	if p.err == nil {
		p.err = p.errorAt(msg, pos)
	}
	return nil, 0, -1
}

func (p *pyParser) skipSpace(i int) int {
	for i < len(p.s) && (p.s[i] == ' ' || p.s[i] == '\t' || p.s[i] == '\n' || p.s[i] == '\r') {
		i++
	}
	return i
}

func (p *pyParser) startsWith(i int, word string) bool {
	w := []rune(word)
	if i+len(w) > len(p.s) {
		return false
	}
	for k, r := range w {
		if p.s[i+k] != r {
			return false
		}
	}
	return true
}

// scanOnce parses the value at idx: (value, end, -1), or stop >= 0 where
// Python raises StopIteration(stop) ("Expecting value" there), or p.err set.
func (p *pyParser) scanOnce(idx int) (v interface{}, end int, stop int) {
	if p.err != nil {
		return nil, 0, -1
	}
	if idx >= len(p.s) {
		return nil, 0, idx
	}
	switch c := p.s[idx]; {
	case c == '"':
		s, end := p.scanString(idx + 1)
		if p.err != nil {
			return nil, 0, -1
		}
		return s, end, -1
	case c == '{':
		return p.parseObject(idx + 1)
	case c == '[':
		return p.parseArray(idx + 1)
	case c == 'n' && p.startsWith(idx, "null"):
		return nil, idx + 4, -1
	case c == 't' && p.startsWith(idx, "true"):
		return true, idx + 4, -1
	case c == 'f' && p.startsWith(idx, "false"):
		return false, idx + 5, -1
	case c == 'N' && p.startsWith(idx, "NaN"):
		return pyConst(math.NaN()), idx + 3, -1
	case c == 'I' && p.startsWith(idx, "Infinity"):
		return pyConst(math.Inf(1)), idx + 8, -1
	case c == '-' && p.startsWith(idx, "-Infinity"):
		return pyConst(math.Inf(-1)), idx + 9, -1
	}
	return p.matchNumber(idx)
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func (p *pyParser) matchNumber(start int) (interface{}, int, int) {
	s, endIdx := p.s, len(p.s)-1
	idx := start
	if s[idx] == '-' {
		idx++
		if idx > endIdx {
			return nil, 0, start
		}
	}
	switch {
	case s[idx] >= '1' && s[idx] <= '9':
		idx++
		for idx <= endIdx && isDigit(s[idx]) {
			idx++
		}
	case s[idx] == '0':
		idx++
	default:
		return nil, 0, start
	}
	if idx < endIdx && s[idx] == '.' && isDigit(s[idx+1]) {
		idx += 2
		for idx <= endIdx && isDigit(s[idx]) {
			idx++
		}
	}
	if idx < endIdx && (s[idx] == 'e' || s[idx] == 'E') {
		eStart := idx
		idx++
		if idx < endIdx && (s[idx] == '-' || s[idx] == '+') {
			idx++
		}
		for idx <= endIdx && isDigit(s[idx]) {
			idx++
		}
		if !isDigit(s[idx-1]) {
			idx = eStart
		}
	}
	return json.Number(string(s[start:idx])), idx, -1
}

func (p *pyParser) parseObject(idx int) (interface{}, int, int) {
	obj := &pyObject{values: map[string]interface{}{}}
	s, endIdx := p.s, len(p.s)-1
	idx = p.skipSpace(idx)
	if idx > endIdx || s[idx] != '}' {
		for idx <= endIdx {
			if s[idx] != '"' {
				return p.fail("Expecting property name enclosed in double quotes", idx)
			}
			key, next := p.scanString(idx + 1)
			if p.err != nil {
				return nil, 0, -1
			}
			idx = p.skipSpace(next)
			if idx > endIdx || s[idx] != ':' {
				return p.fail("Expecting ':' delimiter", idx)
			}
			idx = p.skipSpace(idx + 1)
			v, next, stop := p.scanOnce(idx)
			if stop >= 0 || p.err != nil {
				return nil, 0, stop
			}
			obj.set(key, v)
			idx = p.skipSpace(next)
			if idx <= endIdx && s[idx] == '}' {
				break
			}
			if idx > endIdx || s[idx] != ',' {
				return p.fail("Expecting ',' delimiter", idx)
			}
			idx = p.skipSpace(idx + 1)
		}
		if idx > endIdx || s[idx] != '}' {
			return p.fail("Expecting property name enclosed in double quotes", idx)
		}
	}
	return obj, idx + 1, -1
}

func (p *pyParser) parseArray(idx int) (interface{}, int, int) {
	list := []interface{}{}
	s, endIdx := p.s, len(p.s)-1
	idx = p.skipSpace(idx)
	if idx > endIdx || s[idx] != ']' {
		for idx <= endIdx {
			v, next, stop := p.scanOnce(idx)
			if stop >= 0 || p.err != nil {
				return nil, 0, stop
			}
			list = append(list, v)
			idx = p.skipSpace(next)
			if idx <= endIdx && s[idx] == ']' {
				break
			}
			if idx > endIdx || s[idx] != ',' {
				return p.fail("Expecting ',' delimiter", idx)
			}
			idx = p.skipSpace(idx + 1)
		}
		if idx > endIdx || s[idx] != ']' {
			return p.fail("Expecting value", idx)
		}
	}
	return list, idx + 1, -1
}

func hexValue(r rune) (rune, bool) {
	switch {
	case r >= '0' && r <= '9':
		return r - '0', true
	case r >= 'a' && r <= 'f':
		return r - 'a' + 10, true
	case r >= 'A' && r <= 'F':
		return r - 'A' + 10, true
	}
	return 0, false
}

// scanString is scanstring_unicode (strict): end is just after the opening
// quote; it returns the string and the index after the closing quote.
func (p *pyParser) scanString(end int) (string, int) {
	s, n := p.s, len(p.s)
	begin := end - 1
	var out []rune
	fail := func(msg string, pos int) (string, int) {
		p.fail(msg, pos)
		return "", 0
	}
	for {
		next := end
		var c rune
		for ; next < n; next++ {
			c = s[next]
			if c == '"' || c == '\\' {
				break
			}
			if c <= 0x1f {
				return fail("Invalid control character at", next)
			}
		}
		if next >= n {
			return fail("Unterminated string starting at", begin)
		}
		out = append(out, s[end:next]...)
		next++
		if c == '"' {
			return wtf8(out), next
		}
		if next == n {
			return fail("Unterminated string starting at", begin)
		}
		c = s[next]
		if c != 'u' {
			end = next + 1
			switch c {
			case '"', '\\', '/':
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default:
				return fail("Invalid \\escape", end-2)
			}
			out = append(out, c)
			continue
		}
		next++
		end = next + 4
		if end >= n {
			return fail("Invalid \\uXXXX escape", next-1)
		}
		var u rune
		for ; next < end; next++ {
			d, ok := hexValue(s[next])
			if !ok {
				return fail("Invalid \\uXXXX escape", end-5)
			}
			u = u<<4 | d
		}
		if u >= 0xd800 && u <= 0xdbff && end+6 < n && s[next] == '\\' && s[next+1] == 'u' {
			next += 2
			end += 6
			var u2 rune
			for ; next < end; next++ {
				d, ok := hexValue(s[next])
				if !ok {
					return fail("Invalid \\uXXXX escape", end-5)
				}
				u2 = u2<<4 | d
			}
			if u2 >= 0xdc00 && u2 <= 0xdfff {
				u = 0x10000 + ((u-0xd800)<<10 | (u2 - 0xdc00))
			} else {
				end -= 6
			}
		}
		out = append(out, u)
	}
}
