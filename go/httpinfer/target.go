package httpinfer

import (
	"bytes"
	"strconv"
	"strings"
)

// targetFixer sits between the socket and net/http and reads the request
// stream as h11 does (zmqnode/transport/http.py) where net/http is stricter,
// so the Go node answers what the Python node answers:
//
//   - a '%' in the request target not followed by two hex digits: h11 takes
//     the target as it is (inference_http.py then answers 404 for a path it
//     does not serve), net/http answers 400 and closes the connection, and
//     the requests pipelined after it go unanswered. It is passed on as
//     "%25" (which net/http accepts and decodes back to '%'), and the
//     handler gets the original target back (original);
//   - empty lines before a request line: ignored (RFC 9112 §2.2, as h11
//     does) where net/http answers 400.
//
// To find the request lines it follows the framing: Content-Length bodies
// and chunked ones. Anything it cannot frame (a bad length, a bad chunk
// size, a line past maxLine) switches it off for the rest of the
// connection: net/http rejects that request itself and closes.
type targetFixer struct {
	state     fixState
	line      []byte // the head or chunk line being read
	length    int64  // the head's Content-Length (-1: none)
	chunked   bool
	remaining int64 // body or chunk bytes still to pass on
	out       []byte
	originals [][2]string // (as passed on, as sent), oldest first
}

type fixState int

const (
	fixRequestLine fixState = iota // before a request line (empty lines skipped)
	fixHeader                      // in a head, after its request line
	fixBody                        // Content-Length body bytes
	fixChunkSize                   // a chunk-size line
	fixChunkData                   // chunk data
	fixChunkEnd                    // the CRLF after chunk data
	fixTrailer                     // trailer lines after the last chunk
	fixOff                         // framing lost: pass everything on as it is
)

// maxLine bounds a line held back: past it the fixer steps aside and
// net/http's own limits (431) apply.
const maxLine = 1 << 20

// feed takes bytes read from the socket; what net/http is to read next
// is appended to f.out.
func (f *targetFixer) feed(p []byte) {
	for len(p) > 0 {
		switch f.state {
		case fixOff:
			f.out = append(f.out, p...)
			return
		case fixBody, fixChunkData:
			n := int64(len(p))
			if n > f.remaining {
				n = f.remaining
			}
			f.out = append(f.out, p[:n]...)
			p = p[n:]
			f.remaining -= n
			if f.remaining == 0 {
				if f.state == fixBody {
					f.state = fixRequestLine
				} else {
					f.state = fixChunkEnd
				}
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line = append(f.line, p...)
				if len(f.line) > maxLine {
					f.off()
				}
				return
			}
			f.line = append(f.line, p[:i+1]...)
			p = p[i+1:]
			line := f.line
			f.line = nil
			f.endLine(line)
		}
	}
}

// flush passes on a line held back (the stream ended).
func (f *targetFixer) flush() {
	f.out = append(f.out, f.line...)
	f.line = nil
}

func (f *targetFixer) off() {
	f.flush()
	f.state = fixOff
}

func (f *targetFixer) endLine(line []byte) {
	text := strings.TrimRight(string(line), "\r\n")
	switch f.state {
	case fixRequestLine:
		if text == "" {
			return // an empty line before a request line: ignored
		}
		f.length, f.chunked = -1, false
		f.state = fixHeader
		if fixed, changed := fixTarget(text); changed {
			f.originals = append(f.originals, [2]string{requestTarget(fixed), requestTarget(text)})
			f.out = append(f.out, fixed...)
			f.out = append(f.out, line[len(text):]...)
			return
		}
	case fixHeader:
		if text == "" {
			f.out = append(f.out, line...)
			switch {
			case f.chunked:
				f.state = fixChunkSize
			case f.length > 0:
				f.state, f.remaining = fixBody, f.length
			default:
				f.state = fixRequestLine
			}
			return
		}
		name, value, _ := strings.Cut(text, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 || (f.length >= 0 && f.length != n) {
				f.out = append(f.out, line...)
				f.state = fixOff
				return
			}
			f.length = n
		case "transfer-encoding":
			f.chunked = true // anything but chunked last is refused by net/http anyway
		}
	case fixChunkSize:
		size, _, _ := strings.Cut(text, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil || n < 0 {
			f.out = append(f.out, line...)
			f.state = fixOff
			return
		}
		if n == 0 {
			f.state = fixTrailer
		} else {
			f.state, f.remaining = fixChunkData, n
		}
	case fixChunkEnd:
		f.state = fixChunkSize
		if text != "" {
			f.out = append(f.out, line...)
			f.state = fixOff
			return
		}
	case fixTrailer:
		if text == "" {
			f.state = fixRequestLine
		}
	}
	f.out = append(f.out, line...)
}

// original is the request target as the client sent it, for a target
// net/http read as target (the oldest one passed on changed, if it is that).
func (f *targetFixer) original(target string) string {
	if len(f.originals) > 0 && f.originals[0][0] == target {
		orig := f.originals[0][1]
		f.originals = f.originals[1:]
		return orig
	}
	return target
}

// fixTarget escapes, in a request line's target, each '%' not followed by
// two hex digits as "%25".
func fixTarget(line string) (string, bool) {
	start := strings.IndexByte(line, ' ')
	if start < 0 {
		return line, false
	}
	end := strings.IndexByte(line[start+1:], ' ')
	if end < 0 {
		return line, false
	}
	end += start + 1
	target := line[start+1 : end]
	var b strings.Builder
	changed := false
	for i := 0; i < len(target); i++ {
		if target[i] == '%' && !(i+2 < len(target) && isHexDigit(target[i+1]) && isHexDigit(target[i+2])) {
			b.WriteString("%25")
			changed = true
			continue
		}
		b.WriteByte(target[i])
	}
	if !changed {
		return line, false
	}
	return line[:start+1] + b.String() + line[end:], true
}

func requestTarget(line string) string {
	_, rest, _ := strings.Cut(line, " ")
	target, _, _ := strings.Cut(rest, " ")
	return target
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
