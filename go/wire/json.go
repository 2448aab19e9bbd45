package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"zmqnode/pyfmt"
)

// Headers are JSON objects whose bytes must match the Python node's
// (orjson) exactly when a vector is re-encoded, so this file has its own
// small JSON model instead of encoding/json's maps and structs:
//
//   - Object keeps its keys in order (Python dicts do; orjson writes them in
//     insertion order), and a repeated key keeps its first place with the
//     last value (what json.loads/orjson and a Python dict give).
//   - Number keeps the literal as received, so a float is re-sent digit for
//     digit; numbers made in Go are formatted as orjson formats them.
//   - Strings are escaped as orjson escapes them (SPEC_NOTES.md §JSON).
//
// Decoded values are nil, bool, string, Number, []any and *Object.

// Field is one key and value of an Object.
type Field struct {
	Key   string
	Value any
}

// Object is a JSON object with ordered keys. The zero value is empty and
// ready to use.
type Object struct {
	fields []Field
	index  map[string]int
}

// NewObject makes an object from fields in order (a repeated key keeps its
// first place and takes the last value).
func NewObject(fields ...Field) *Object {
	o := &Object{}
	for _, f := range fields {
		o.Set(f.Key, f.Value)
	}
	return o
}

// Get returns the value under key.
func (o *Object) Get(key string) (any, bool) {
	if o == nil || o.index == nil {
		return nil, false
	}
	i, ok := o.index[key]
	if !ok {
		return nil, false
	}
	return o.fields[i].Value, true
}

// Has reports whether key is present (even with a null value).
func (o *Object) Has(key string) bool {
	_, ok := o.Get(key)
	return ok
}

// Set replaces key's value in place, or appends key at the end.
func (o *Object) Set(key string, value any) *Object {
	if o.index == nil {
		o.index = map[string]int{}
	}
	if i, ok := o.index[key]; ok {
		o.fields[i].Value = value
		return o
	}
	o.index[key] = len(o.fields)
	o.fields = append(o.fields, Field{key, value})
	return o
}

// Delete removes key (a no-op if absent).
func (o *Object) Delete(key string) {
	i, ok := o.index[key]
	if !ok {
		return
	}
	o.fields = append(o.fields[:i], o.fields[i+1:]...)
	delete(o.index, key)
	for j := i; j < len(o.fields); j++ {
		o.index[o.fields[j].Key] = j
	}
}

// Fields returns the fields in order (a copy).
func (o *Object) Fields() []Field {
	if o == nil {
		return nil
	}
	return append([]Field(nil), o.fields...)
}

// Len is the number of keys.
func (o *Object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.fields)
}

// String is the object's JSON text (for logs and errors).
func (o *Object) String() string {
	b, err := MarshalJSON(o)
	if err != nil {
		return fmt.Sprintf("<invalid: %v>", err)
	}
	return string(b)
}

// Number is a JSON number literal exactly as received (or as formatted).
type Number string

// IsInt reports whether the number is what Python calls an int: a literal
// without fraction or exponent that fits in 64 bits (-2^63..2^64-1). orjson
// reads any other literal as a float, so `1.0`, `1e2` and
// `18446744073709551616` are not integers here either.
func (n Number) IsInt() bool {
	s := string(n)
	if strings.ContainsAny(s, ".eE") {
		return false
	}
	if strings.HasPrefix(s, "-") {
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// Int64 is the value of an integer literal that fits in int64.
func (n Number) Int64() (int64, bool) {
	if !n.IsInt() {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

// Uint64 is the value of a non-negative integer literal.
func (n Number) Uint64() (uint64, bool) {
	if !n.IsInt() || strings.HasPrefix(string(n), "-") {
		if n == "-0" {
			return 0, true
		}
		return 0, false
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	return v, err == nil
}

// Float64 is the number's value as a float64 (any literal).
func (n Number) Float64() (float64, error) {
	return strconv.ParseFloat(string(n), 64)
}

// intValue returns a decoded value as an int64 if it is a JSON integer
// (not a bool, not a float literal) within int64.
func intValue(v any) (int64, bool) {
	switch n := v.(type) {
	case Number:
		return n.Int64()
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// ---------------------------------------------------------------------------
// Decoding

// UnmarshalJSON parses one JSON value with the rules of the Python node's
// parser (orjson): valid UTF-8 only, no NaN/Infinity, a number too large for
// a double is an error, nothing but whitespace after the value.
func UnmarshalJSON(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	if err := checkSurrogates(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// maxDepth is orjson's nesting limit (it refuses deeper documents).
const maxDepth = 1024

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("unexpected end of JSON")
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxDepth)
		}
		switch t {
		case '{':
			o := &Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				val, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.Set(key, val)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return o, nil
		case '[':
			list := []any{}
			for dec.More() {
				val, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		n := Number(t)
		if !n.IsInt() {
			f, err := n.Float64()
			if err != nil || math.IsInf(f, 0) {
				return nil, fmt.Errorf("number %s is infinity when parsed as double", t)
			}
		}
		return n, nil
	default: // bool, nil
		return t, nil
	}
}

// checkSurrogates refuses a lone UTF-16 surrogate escape ("\ud800"), which
// orjson refuses and encoding/json would turn into U+FFFD. Backslashes occur
// only inside strings in valid JSON (anything else fails to parse anyway).
func checkSurrogates(data []byte) error {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' || i+1 >= len(data) {
			continue
		}
		if data[i+1] != 'u' {
			i++
			continue
		}
		r, ok := hex4(data, i+2)
		i += 5
		if !ok || r < 0xd800 || r > 0xdfff {
			continue
		}
		if r >= 0xdc00 {
			return errors.New("lone low surrogate in string")
		}
		if lo, ok := hex4(data, i+3); i+2 < len(data) && data[i+1] == '\\' && data[i+2] == 'u' && ok && lo >= 0xdc00 && lo <= 0xdfff {
			i += 6
			continue
		}
		return errors.New("no low surrogate in string")
	}
	return nil
}

func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// ---------------------------------------------------------------------------
// Encoding

// MarshalJSON writes v as orjson would: no spaces, keys in order, floats in
// orjson's shortest form, non-ASCII as UTF-8, NaN and ±Inf as null.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeValue(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeValue(b *bytes.Buffer, v any) error {
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
		return writeString(b, x)
	case Number:
		b.WriteString(string(x))
	case json.Number:
		b.WriteString(string(x))
	case int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int8:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int16:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint8:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint16:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float32:
		b.WriteString(pyfmt.OrjsonFloat(float64(x)))
	case float64:
		b.WriteString(pyfmt.OrjsonFloat(x))
	case *Object:
		b.WriteByte('{')
		if x != nil {
			for i, f := range x.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := writeString(b, f.Key); err != nil {
					return err
				}
				b.WriteByte(':')
				if err := writeValue(b, f.Value); err != nil {
					return fmt.Errorf("%s: %w", f.Key, err)
				}
			}
		}
		b.WriteByte('}')
	case map[string]any:
		// Go maps have no order; sorted keys make the bytes deterministic.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := &Object{}
		for _, k := range keys {
			o.Set(k, x[k])
		}
		return writeValue(b, o)
	case []any:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []string:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []int:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []int64:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []uint64:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []float64:
		return writeList(b, len(x), func(i int) any { return x[i] })
	case []*Object:
		return writeList(b, len(x), func(i int) any { return x[i] })
	default:
		return fmt.Errorf("cannot encode %T as JSON", v)
	}
	return nil
}

func writeList(b *bytes.Buffer, n int, at func(int) any) error {
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeValue(b, at(i)); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

const hexDigits = "0123456789abcdef"

// writeString escapes as orjson does: \" \\ \b \t \n \f \r, other control
// characters as \u00xx, everything else (DEL, "/", non-ASCII, U+2028) raw.
func writeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("string %q is not valid UTF-8", s)
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return nil
}

// kindOf names a decoded JSON value as Python's wire._json_kind does, for
// error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case *Object:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
