package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"zmqnode/pyfmt"
)

// The golden vectors in testdata/*.json are made by the Python codec
// (testdata/gen.py). Each test decodes the frames as the Go codec reads
// them, compares the meaning with Python's, and re-encodes byte for byte.

func loadVectors(t *testing.T, name string) []*Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatalf("%v (regenerate with: .venv/bin/python go/wire/testdata/gen.py)", err)
	}
	v, err := UnmarshalJSON(data)
	if err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	list := v.([]any)
	out := make([]*Object, len(list))
	for i, x := range list {
		out[i] = x.(*Object)
	}
	if len(out) == 0 {
		t.Fatalf("%s.json holds no vectors", name)
	}
	return out
}

func gets(o *Object, key string) string {
	v, _ := o.Get(key)
	s, _ := v.(string)
	return s
}

func geti(t *testing.T, o *Object, key string) int64 {
	v, _ := o.Get(key)
	n, ok := intValue(v)
	if !ok {
		t.Fatalf("vector field %s = %v is not an integer", key, v)
	}
	return n
}

func getu(t *testing.T, o *Object, key string) uint64 {
	v, _ := o.Get(key)
	n, ok := v.(Number).Uint64()
	if !ok {
		t.Fatalf("vector field %s = %v is not an unsigned integer", key, v)
	}
	return n
}

func getb(o *Object, key string) bool {
	v, _ := o.Get(key)
	b, _ := v.(bool)
	return b
}

func unb64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func frames(t *testing.T, o *Object, key string) [][]byte {
	v, _ := o.Get(key)
	list, _ := v.([]any)
	out := make([][]byte, len(list))
	for i, x := range list {
		out[i] = unb64(t, x.(string))
	}
	return out
}

func sameFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

// sameJSON compares decoded values as Python would: keys in order, numbers
// by value (the vector files are written by Python's json, not orjson).
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case *Object:
		y, ok := b.(*Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, f := range x.fields {
			g := y.fields[i]
			if f.Key != g.Key || !sameJSON(f.Value, g.Value) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case Number:
		y, ok := b.(Number)
		if !ok || x.IsInt() != y.IsInt() {
			return false
		}
		if x.IsInt() {
			p, _ := new(big.Int).SetString(string(x), 10)
			q, _ := new(big.Int).SetString(string(y), 10)
			return p.Cmp(q) == 0
		}
		p, _ := x.Float64()
		q, _ := y.Float64()
		return p == q
	default:
		return a == b
	}
}

// goValues turns float literals from a vector file into float64, so that
// re-encoding them exercises Go's own float formatting.
func goValues(v any) any {
	switch x := v.(type) {
	case *Object:
		o := &Object{}
		for _, f := range x.fields {
			o.Set(f.Key, goValues(f.Value))
		}
		return o
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = goValues(x[i])
		}
		return out
	case Number:
		if x.IsInt() {
			return x
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func TestGoldenBodiesDecodeAndReencodeByteIdentically(t *testing.T) {
	for _, vec := range loadVectors(t, "bodies") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			fr := frames(t, vec, "frames")
			header, blobs, err := Decode(fr, DecodeOptions{AllowEmptyID: gets(vec, "kind") == "reply"})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := vec.Get("header")
			if !sameJSON(header, want) {
				t.Fatalf("header %s, Python read %v", header, want)
			}
			if int64(len(blobs)) != geti(t, vec, "blobs") {
				t.Fatalf("%d blobs", len(blobs))
			}
			again, err := Encode(header, blobs)
			if err != nil {
				t.Fatal(err)
			}
			sameFrames(t, again, fr)
			// The same header built from Go floats (not the literals) is
			// the same bytes: FormatFloat is orjson's format.
			again, err = Encode(goValues(header).(*Object), blobs)
			if err != nil {
				t.Fatal(err)
			}
			sameFrames(t, again, fr)
		})
	}
}

func TestGoldenRepliesBuiltInGoMatchPython(t *testing.T) {
	for _, vec := range loadVectors(t, "bodies") {
		if gets(vec, "kind") != "reply" {
			continue
		}
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			fr := frames(t, vec, "frames")
			rv, _ := vec.Get("reply")
			r := rv.(*Object)
			reqv, _ := r.Get("request")
			req, _ := reqv.(*Object)
			argsv, _ := r.Get("args")
			args := argsv.([]any)
			fv, _ := r.Get("fields")
			fields := goValues(fv).(*Object).Fields()
			var h *Object
			switch gets(r, "fn") {
			case "ok":
				h = OKReply(req, fields...)
			case "progress":
				h = ProgressReply(req, fields...)
			case "redirect":
				h = RedirectReply(req, args[0].(string), fields...)
			case "error":
				h = ErrorReply(req, ErrorCode(args[0].(string)), args[1].(string), fields...)
			}
			got, err := Encode(h, fr[1:])
			if err != nil {
				t.Fatal(err)
			}
			sameFrames(t, got, fr)
		})
	}
}

func TestGoldenEnvelopes(t *testing.T) {
	for _, vec := range loadVectors(t, "envelopes") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			fr := frames(t, vec, "frames")
			routing, body, err := SplitEnvelope(fr)
			if err != nil {
				t.Fatal(err)
			}
			sameFrames(t, routing, frames(t, vec, "routing"))
			sameFrames(t, body, frames(t, vec, "body"))
			sameFrames(t, JoinEnvelope(routing, body), fr)
		})
	}
}

func TestGoldenArraysEveryDtype(t *testing.T) {
	seen := map[Dtype]bool{}
	for _, vec := range loadVectors(t, "arrays") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			fr := frames(t, vec, "frames")
			header, blobs, err := Decode(fr, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			a, err := ReadArray(header, blobs, gets(vec, "key"), DefaultMaxArrayBytes)
			if err != nil {
				t.Fatal(err)
			}
			seen[a.Dtype] = true
			if string(a.Dtype) != gets(vec, "dtype") {
				t.Fatalf("dtype %s", a.Dtype)
			}
			shapeV, _ := vec.Get("shape")
			shape := shapeV.([]any)
			if len(shape) != len(a.Shape) {
				t.Fatalf("shape %v, want %v", a.Shape, shape)
			}
			for i := range shape {
				if n, _ := intValue(shape[i]); int(n) != a.Shape[i] {
					t.Fatalf("shape %v, want %v", a.Shape, shape)
				}
			}
			valuesV, _ := vec.Get("values")
			values := valuesV.([]any)
			var rebuilt Array
			switch a.Dtype {
			case Float32:
				got, _ := a.Float32s()
				want := make([]float32, len(values))
				for i, v := range values {
					f, err := strconv.ParseFloat(v.(string), 64)
					if err != nil {
						t.Fatal(err)
					}
					want[i] = float32(f)
					if float64(got[i]) != f && !(math.IsNaN(f) && math.IsNaN(float64(got[i]))) {
						t.Fatalf("value %d = %v, want %v", i, got[i], f)
					}
				}
				rebuilt = FromFloat32(a.Shape, want)
			case Float64:
				got, _ := a.Float64s()
				want := make([]float64, len(values))
				for i, v := range values {
					want[i], _ = strconv.ParseFloat(v.(string), 64)
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
					}
				}
				rebuilt = FromFloat64(a.Shape, want)
			case Int32:
				got, _ := a.Int32s()
				want := make([]int32, len(values))
				for i, v := range values {
					n, _ := intValue(v)
					want[i] = int32(n)
					if got[i] != want[i] {
						t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
					}
				}
				rebuilt = FromInt32(a.Shape, want)
			case Int64:
				got, _ := a.Int64s()
				want := make([]int64, len(values))
				for i, v := range values {
					want[i], _ = intValue(v)
					if got[i] != want[i] {
						t.Fatalf("value %d = %v, want %v", i, got[i], want[i])
					}
				}
				rebuilt = FromInt64(a.Shape, want)
			}
			desc, blob := ArrayToFrame(rebuilt, int(geti(t, vec, "frame")))
			if !bytes.Equal(blob, a.Data) {
				t.Fatalf("rebuilt bytes %x, want %x", blob, a.Data)
			}
			if got, _ := MarshalJSON(desc); string(got) != gets(vec, "descriptor_json") {
				t.Fatalf("descriptor %s, want %s", got, gets(vec, "descriptor_json"))
			}
			again, _ := Encode(header, blobs)
			sameFrames(t, again, fr)
		})
	}
	for _, d := range Dtypes {
		if !seen[d] {
			t.Errorf("no vector for dtype %s", d)
		}
	}
}

func codeOrNone(err error) string {
	if err == nil {
		return ""
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		return "not a ProtocolError: " + err.Error()
	}
	return string(pe.Code)
}

func TestGoldenRejectsHaveThePythonCode(t *testing.T) {
	for _, vec := range loadVectors(t, "rejects") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			opts := DecodeOptions{MaxHeaderBytes: int(geti(t, vec, "max_header_bytes")),
				AllowEmptyID: getb(vec, "allow_empty_id")}
			header, _, err := Decode(frames(t, vec, "frames"), opts)
			if got, want := codeOrNone(err), gets(vec, "code"); got != want {
				t.Fatalf("code %q, Python: %q (%v)", got, want, err)
			}
			want, _ := vec.Get("header")
			if checked, _ := vec.Bool("header_checked"); !checked {
				return
			}
			if err != nil {
				var pe *ProtocolError
				errors.As(err, &pe)
				header = pe.Header
			}
			if want == nil && header == nil {
				return
			}
			if !sameJSON(header, want) {
				t.Fatalf("header %s, Python read %v", header, want)
			}
		})
	}
}

func TestGoldenArrayRejectsHaveThePythonCode(t *testing.T) {
	for _, vec := range loadVectors(t, "array_rejects") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			header, blobs, err := Decode(frames(t, vec, "frames"), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ReadArray(header, blobs, gets(vec, "key"), geti(t, vec, "max_bytes"))
			if got, want := codeOrNone(err), gets(vec, "code"); got != want {
				t.Fatalf("code %q, Python: %q (%v)", got, want, err)
			}
		})
	}
}

func messageFromVector(t *testing.T, o *Object) *RaftMessage {
	m := &RaftMessage{
		Type: MessageType(gets(o, "type")), Src: gets(o, "src"), Dst: gets(o, "dst"),
		Term: getu(t, o, "term"), LogIndex: getu(t, o, "log_index"), LogTerm: getu(t, o, "log_term"),
		Commit: getu(t, o, "commit"), Reject: getb(o, "reject"), Index: getu(t, o, "index"),
		RejectHint: getu(t, o, "reject_hint"), Context: getu(t, o, "context"),
		ReadCtx: gets(o, "read_ctx"), Force: getb(o, "force"),
	}
	ev, _ := o.Get("entries")
	for _, x := range ev.([]any) {
		e := x.(*Object)
		m.Entries = append(m.Entries, Entry{Index: getu(t, e, "index"), Term: getu(t, e, "term"),
			Kind: EntryKind(gets(e, "kind")), Data: unb64(t, gets(e, "data"))})
	}
	if sv, _ := o.Get("snapshot"); sv != nil {
		s := sv.(*Object)
		m.Snapshot = &Snapshot{Index: getu(t, s, "index"), Term: getu(t, s, "term"),
			Data: unb64(t, gets(s, "data")), Membership: []byte(gets(s, "membership"))}
	}
	return m
}

func sameMessage(t *testing.T, got, want *RaftMessage) {
	t.Helper()
	g, w := *got, *want
	g.Entries, w.Entries, g.Snapshot, w.Snapshot = nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("message\n got %+v\nwant %+v", g, w)
	}
	if len(got.Entries) != len(want.Entries) {
		t.Fatalf("%d entries, want %d", len(got.Entries), len(want.Entries))
	}
	for i := range want.Entries {
		a, b := got.Entries[i], want.Entries[i]
		if a.Index != b.Index || a.Term != b.Term || a.Kind != b.Kind || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("entry %d = %+v, want %+v", i, a, b)
		}
	}
	if (got.Snapshot == nil) != (want.Snapshot == nil) {
		t.Fatalf("snapshot %v, want %v", got.Snapshot, want.Snapshot)
	}
	if s, w := got.Snapshot, want.Snapshot; s != nil {
		if s.Index != w.Index || s.Term != w.Term || !bytes.Equal(s.Data, w.Data) ||
			!bytes.Equal(s.Membership, w.Membership) {
			t.Fatalf("snapshot %+v, want %+v", s, w)
		}
	}
}

func TestGoldenRaftMessagesEveryType(t *testing.T) {
	seen := map[MessageType]bool{}
	for _, vec := range loadVectors(t, "raft") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			fr := frames(t, vec, "frames")
			got, err := DecodeRaft(fr, 0)
			if err != nil {
				t.Fatal(err)
			}
			seen[got.Type] = true
			mv, _ := vec.Get("message")
			want := messageFromVector(t, mv.(*Object))
			sameMessage(t, got, want)
			again, err := EncodeRaft(want)
			if err != nil {
				t.Fatal(err)
			}
			sameFrames(t, again, fr)
		})
	}
	for _, mt := range MessageTypes {
		if !seen[mt] {
			t.Errorf("no vector for %s", mt)
		}
	}
}

func TestGoldenRaftRejectsHaveThePythonCode(t *testing.T) {
	for _, vec := range loadVectors(t, "raft_rejects") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			got, err := DecodeRaft(frames(t, vec, "frames"), 0)
			if c, want := codeOrNone(err), gets(vec, "code"); c != want {
				t.Fatalf("code %q, Python: %q (%v)", c, want, err)
			}
			if err == nil {
				mv, _ := vec.Get("message")
				sameMessage(t, got, messageFromVector(t, mv.(*Object)))
			}
		})
	}
}

func TestGoldenFloatsFormatAsOrjson(t *testing.T) {
	for _, vec := range loadVectors(t, "floats") {
		raw, _ := hex.DecodeString(gets(vec, "bits"))
		f := math.Float64frombits(new(big.Int).SetBytes(raw).Uint64())
		if got := pyfmt.OrjsonFloat(f); got != gets(vec, "json") {
			t.Errorf("OrjsonFloat(%v) = %s, orjson: %s", f, got, gets(vec, "json"))
		}
	}
}

func TestGoldenMembershipEncodingMatchesPython(t *testing.T) {
	for _, vec := range loadVectors(t, "memberships") {
		vec := vec
		t.Run(gets(vec, "name"), func(t *testing.T) {
			voters, _ := vec.Strings("voters")
			learners, _ := vec.Strings("learners")
			creds, _ := vec.Obj("credentials")
			sort.Strings(voters)
			sort.Strings(learners)
			doc := NewObject(Field{"voters", voters}, Field{"learners", learners}, Field{"credentials", creds})
			got, err := MarshalSortedASCII(doc)
			if err != nil {
				t.Fatal(err)
			}
			if want := unb64(t, gets(vec, "bytes")); !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
}
