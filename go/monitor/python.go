package monitor

import (
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
	"zmqnode/pyfmt"
)

// What monitor.py gets from Python's standard library, done the same way:
// urlparse of the request target, parse_qs, int() and the log tail.

// splitTarget is urllib.parse.urlparse(target)'s path and query, with the
// path's bytes read as Latin-1 (http.server decodes the request line so).
func splitTarget(target string) (path, query string) {
	if i := strings.IndexByte(target, '#'); i >= 0 {
		target = target[:i]
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target, query = target[:i], target[i+1:]
	}
	// A scheme: letters first, then letters, digits, "+-.", then ':'.
	if i := strings.IndexByte(target, ':'); i > 0 && isScheme(target[:i]) {
		target = target[i+1:]
	}
	if strings.HasPrefix(target, "//") { // a netloc
		rest := target[2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			target = rest[i:]
		} else {
			target = ""
		}
	}
	return pyfmt.Latin1(target), query
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// parseQS is urllib.parse.parse_qs(query): "&"-separated pairs, "+" and
// %XX decoded, pairs without "=" or with an empty value left out.
func parseQS(query string) map[string][]string {
	out := map[string][]string{}
	for _, pair := range strings.Split(query, "&") {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || value == "" {
			continue
		}
		k := unquotePlus(name)
		out[k] = append(out[k], unquotePlus(value))
	}
	return out
}

// unquotePlus is urllib.parse.unquote_plus: invalid escapes stay as they
// are, the bytes are read as UTF-8 with errors replaced.
func unquotePlus(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return decodeReplace(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// pyInt is Python's int(text) for ASCII digits: surrounding whitespace, a
// sign, single underscores between digits. Values beyond ±10^9 are clamped
// (the caller clamps to 1..MaxLogLines anyway).
func pyInt(text string) (int, bool) {
	s := strings.TrimFunc(text, pySpace)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			if s[i-1] == '_' {
				return 0, false
			}
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1e9 {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// pySpace is str.isspace.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

// TailFile is zmqnode/logs.py's tail: the last lines of the file at path,
// reading only its last lines×400 bytes, decoded as UTF-8 with errors
// replaced and split as str.splitlines; none if the file does not exist.
func TailFile(path string, lines int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return []string{}
	}
	start := info.Size() - int64(lines)*400
	if start < 0 {
		start = 0
	}
	data := make([]byte, info.Size()-start)
	n, _ := f.ReadAt(data, start)
	all := splitLines(decodeReplace(data[:n]))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return all
}

// splitLines is str.splitlines (no ends kept).
func splitLines(s string) []string {
	out := []string{}
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			out = append(out, s[start:i])
			i += size
			if r == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
			start = i
		default:
			i += size
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// decodeReplace is bytes.decode("utf-8", "replace"): each maximal ill-formed
// subsequence becomes one U+FFFD (Unicode §3.9, as CPython does).
func decodeReplace(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			sb.WriteRune(r)
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

// maximalSubpart is how many bytes of an ill-formed sequence at b[0] make
// one replacement: the lead byte and the continuation bytes that were valid
// so far.
func maximalSubpart(b []byte) int {
	lo, hi, need := byte(0x80), byte(0xbf), 0
	switch c := b[0]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		lo, need = 0xa0, 2
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed:
		hi, need = 0x9f, 2
	case c == 0xf0:
		lo, need = 0x90, 3
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		hi, need = 0x8f, 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if c < lo || c > hi {
			break
		}
		n++
		lo, hi = 0x80, 0xbf
	}
	return n
}

// pyStrRepr is repr() of an ASCII-ish string (a request method).
func pyStrRepr(s string) string {
	quote := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = `"`
	}
	var b strings.Builder
	b.WriteString(quote)
	for _, r := range s {
		switch {
		case r == '\\' || string(r) == quote:
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + string("0123456789abcdef"[r>>4]) + string("0123456789abcdef"[r&0xf]))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(quote)
	return b.String()
}
