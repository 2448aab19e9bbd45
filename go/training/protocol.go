package training

import (
	"fmt"
	"strings"

	"zmqnode/wire"
)

// Message types of the training path (PROTOCOL.md §9).
const (
	SubTrainType = "SUB_TRAIN"
	ResultType   = "SUB_TRAIN_RESULT"
	// MaxTrainingArrayBytes bounds one array of a job or result
	// (protocol.MAX_TRAINING_ARRAY_BYTES).
	MaxTrainingArrayBytes = 4 << 30
)

// Job is one SUB_TRAIN: train chunk Chunk of job JobID for round Round from
// Params, answering to ReplyTo. X and Y are nil when the trainer is expected
// to have the chunk's rows cached. Arrays keep their wire dtype, so a decoded
// job re-encodes to the same bytes.
type Job struct {
	JobID   string
	Round   int
	Chunk   int
	ReplyTo string
	Options *wire.Object // never nil after DecodeJob
	Params  wire.Array
	X, Y    *wire.Array
}

// ID is the job's informative header id, "<job>/<round>/<chunk>".
func (j *Job) ID() string { return fmt.Sprintf("%s/%d/%d", j.JobID, j.Round, j.Chunk) }

// Result is one SUB_TRAIN_RESULT: the trained parameters, or why there are
// none (Error, MissingData).
type Result struct {
	JobID       string
	Round       int
	Chunk       int
	Trainer     string
	NSamples    int
	Loss        float64
	Params      *wire.Array
	Error       string
	MissingData bool
}

// EncodeJob is protocol.encode_job: the header's keys in Python's order,
// then params [, x, y] as frames 0.. in that order.
func EncodeJob(j *Job) ([][]byte, error) {
	options := j.Options
	if options == nil {
		options = &wire.Object{}
	}
	h := wire.NewObject(
		wire.Field{Key: "type", Value: SubTrainType},
		wire.Field{Key: "id", Value: j.ID()},
		wire.Field{Key: "job", Value: j.JobID},
		wire.Field{Key: "round", Value: j.Round},
		wire.Field{Key: "chunk", Value: j.Chunk},
		wire.Field{Key: "reply_to", Value: j.ReplyTo},
		wire.Field{Key: "options", Value: options},
	)
	var blobs [][]byte
	add := func(key string, a *wire.Array) {
		if a == nil {
			return
		}
		desc, blob := wire.ArrayToFrame(*a, len(blobs))
		h.Set(key, desc)
		blobs = append(blobs, blob)
	}
	params := j.Params
	add("params", &params)
	add("x", j.X)
	add("y", j.Y)
	return wire.Encode(h, blobs)
}

// DecodeJob is protocol.decode_job, with its checks, codes and messages.
func DecodeJob(frames [][]byte) (*Job, error) {
	h, blobs, err := wire.Decode(frames, wire.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	if t := wire.HeaderType(h); t != SubTrainType {
		return nil, protoErr(wire.UnknownType, "expected %s, got %s", SubTrainType, pyRepr(t))
	}
	arrays := map[string]*wire.Array{}
	for _, key := range []string{"params", "x", "y"} {
		if !h.Has(key) {
			continue
		}
		a, err := wire.ReadArray(h, blobs, key, MaxTrainingArrayBytes)
		if err != nil {
			return nil, err
		}
		arrays[key] = &a
	}
	if arrays["params"] == nil {
		return nil, protoErr(wire.BadRequest, "SUB_TRAIN without params")
	}
	j := &Job{Params: *arrays["params"], X: arrays["x"], Y: arrays["y"]}
	if j.JobID, err = headerStr(h, "job"); err != nil {
		return nil, err
	}
	if j.Round, err = headerInt(h, "round"); err != nil {
		return nil, err
	}
	if j.Chunk, err = headerInt(h, "chunk"); err != nil {
		return nil, err
	}
	if j.ReplyTo, err = headerStr(h, "reply_to"); err != nil {
		return nil, err
	}
	if o, ok := h.Obj("options"); ok {
		j.Options = o
	} else {
		j.Options = &wire.Object{}
	}
	return j, nil
}

// EncodeResult is protocol.encode_result.
func EncodeResult(r *Result) ([][]byte, error) {
	h := wire.NewObject(
		wire.Field{Key: "type", Value: ResultType},
		wire.Field{Key: "id", Value: fmt.Sprintf("%s/%d/%d", r.JobID, r.Round, r.Chunk)},
		wire.Field{Key: "job", Value: r.JobID},
		wire.Field{Key: "round", Value: r.Round},
		wire.Field{Key: "chunk", Value: r.Chunk},
		wire.Field{Key: "trainer", Value: r.Trainer},
		wire.Field{Key: "n_samples", Value: r.NSamples},
		wire.Field{Key: "loss", Value: r.Loss},
		wire.Field{Key: "error", Value: r.Error},
		wire.Field{Key: "missing_data", Value: r.MissingData},
	)
	var blobs [][]byte
	if r.Params != nil {
		desc, blob := wire.ArrayToFrame(*r.Params, 0)
		h.Set("params", desc)
		blobs = append(blobs, blob)
	}
	return wire.Encode(h, blobs)
}

// DecodeResult is protocol.decode_result, with its checks, codes and messages.
func DecodeResult(frames [][]byte) (*Result, error) {
	h, blobs, err := wire.Decode(frames, wire.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	if t := wire.HeaderType(h); t != ResultType {
		return nil, protoErr(wire.UnknownType, "expected %s, got %s", ResultType, pyRepr(t))
	}
	r := &Result{}
	if h.Has("params") {
		a, err := wire.ReadArray(h, blobs, "params", MaxTrainingArrayBytes)
		if err != nil {
			return nil, err
		}
		r.Params = &a
	}
	if v, present := h.Get("loss"); present {
		switch x := v.(type) {
		case bool: // Python: isinstance(True, int)
			if x {
				r.Loss = 1
			}
		default:
			f, ok := h.Float("loss")
			if !ok {
				return nil, protoErr(wire.BadRequest, "'loss' must be a number")
			}
			r.Loss = f
		}
	}
	errValue, _ := h.Get("error")
	r.Error = pyStrOrEmpty(errValue)
	md, _ := h.Get("missing_data")
	r.MissingData = truthy(md)
	if r.Params == nil && r.Error == "" && !r.MissingData {
		return nil, protoErr(wire.BadRequest, "a result needs params, an error or missing_data")
	}
	if r.JobID, err = headerStr(h, "job"); err != nil {
		return nil, err
	}
	if r.Round, err = headerInt(h, "round"); err != nil {
		return nil, err
	}
	if r.Chunk, err = headerInt(h, "chunk"); err != nil {
		return nil, err
	}
	if r.Trainer, err = headerStr(h, "trainer"); err != nil {
		return nil, err
	}
	if r.NSamples, err = headerInt(h, "n_samples"); err != nil {
		return nil, err
	}
	return r, nil
}

func protoErr(code wire.ErrorCode, format string, args ...any) error {
	return &wire.ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func headerStr(h *wire.Object, key string) (string, error) {
	s, ok := h.Str(key)
	if !ok {
		return "", protoErr(wire.BadRequest, "field '%s' must be a string", key)
	}
	return s, nil
}

func headerInt(h *wire.Object, key string) (int, error) {
	n, ok := h.Int(key)
	if !ok || n < 0 || int64(int(n)) != n {
		return 0, protoErr(wire.BadRequest, "field '%s' must be a non-negative integer", key)
	}
	return int(n), nil
}

// truthy is Python's bool() of a decoded JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case wire.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case []any:
		return len(x) > 0
	case *wire.Object:
		return x.Len() > 0
	}
	return true
}

// pyStrOrEmpty is str(header.get("error") or "").
func pyStrOrEmpty(v any) string {
	if !truthy(v) {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, err := wire.MarshalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	// Python would print its repr (True, None, {'a': 1}); JSON is as readable.
	return string(b)
}

// pyRepr is Python's repr() of a str (enough of it for messages: quotes,
// backslashes and control characters).
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}
