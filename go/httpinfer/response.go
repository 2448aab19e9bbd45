package httpinfer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"zmqnode/pyfmt"

	"zmqnode/wire"
)

// maxReplyArrayBytes bounds what a node's own PREDICT reply may hold here.
const maxReplyArrayBytes = 1 << 40

// tensor is one output to send: name, v2 datatype, shape and its elements
// (exactly one of the slices, by datatype).
type tensor struct {
	name, datatype string
	shape          []int
	strs           []string
	bools          []bool
	ints           []int64
	f64            []float64
	f32            []float32
}

// InferResponse is the HTTP headers and body for a PREDICT OK reply
// (fields and blobs as the node's PREDICT answer carries them: outputs,
// classes, probabilities). Only the requested outputs are sent (all the
// model has when none were listed); class indices become the labels.
// headers holds Content-Type and, when an output is binary,
// Inference-Header-Content-Length. A 400 means an output the model does not
// have was asked for; a 500, a reply PREDICT does not send (a bug).
func InferResponse(call *InferCall, modelID string, fields *wire.Object, blobs [][]byte) ([][2]string, []byte, *Error) {
	tensors, err := replyTensors(call, fields, blobs)
	if err != nil {
		return nil, nil, err
	}
	var head bytes.Buffer
	var parts [][]byte
	head.WriteString(`{"model_name":`)
	writeJSONString(&head, modelID)
	if call.RequestID != nil {
		head.WriteString(`,"id":`)
		writeJSONString(&head, *call.RequestID)
	}
	head.WriteString(`,"outputs":[`)
	for i, t := range tensors {
		if i > 0 {
			head.WriteByte(',')
		}
		head.WriteString(`{"name":`)
		writeJSONString(&head, t.name)
		head.WriteString(`,"datatype":"` + t.datatype + `","shape":[`)
		for j, n := range t.shape {
			if j > 0 {
				head.WriteByte(',')
			}
			head.WriteString(strconv.Itoa(n))
		}
		head.WriteByte(']')
		if isBinary(call, t.name) {
			raw := tensorBytes(t)
			head.WriteString(`,"parameters":{"binary_data_size":` + strconv.Itoa(len(raw)) + `}}`)
			parts = append(parts, raw)
		} else {
			head.WriteString(`,"data":`)
			writeTensorJSON(&head, t)
			head.WriteByte('}')
		}
	}
	head.WriteString("]}")
	if len(parts) == 0 {
		return [][2]string{{"Content-Type", "application/json"}}, head.Bytes(), nil
	}
	headers := [][2]string{{"Content-Type", "application/octet-stream"}, {HeaderLength, strconv.Itoa(head.Len())}}
	body := head.Bytes()
	for _, p := range parts {
		body = append(body, p...)
	}
	return headers, body, nil
}

func isBinary(call *InferCall, name string) bool {
	for _, o := range call.Outputs {
		if o.Name == name {
			return o.Binary
		}
	}
	return call.BinaryOutput
}

func unexpected(call *InferCall, format string, args ...any) *Error {
	return &Error{Status: 500, Message: fmt.Sprintf("model %s: unexpected PREDICT reply: %s", call.ModelID, fmt.Sprintf(format, args...))}
}

// replyTensors are the outputs to send, in order.
func replyTensors(call *InferCall, fields *wire.Object, blobs [][]byte) ([]tensor, *Error) {
	values, err := wire.ReadArray(fields, blobs, "outputs", maxReplyArrayBytes)
	if err != nil {
		return nil, unexpected(call, "%v", err)
	}
	available := map[string]tensor{}
	classesValue, hasClasses := fields.Get("classes")
	if classesValue == nil {
		hasClasses = false
	}
	if !hasClasses {
		t := tensor{name: Values, datatype: "FP32", shape: values.Shape}
		if t.f32, err = toFloat32(values); err != nil {
			return nil, unexpected(call, "%v", err)
		}
		available[Values] = t
	} else {
		t, lerr := labels(classesValue, values)
		if lerr != nil {
			return nil, unexpected(call, "%v", lerr)
		}
		available[Label] = t
		if fields.Has("probabilities") {
			proba, err := wire.ReadArray(fields, blobs, "probabilities", maxReplyArrayBytes)
			if err != nil {
				return nil, unexpected(call, "%v", err)
			}
			p := tensor{name: Probabilities, datatype: "FP32", shape: proba.Shape}
			if p.f32, err = toFloat32(proba); err != nil {
				return nil, unexpected(call, "%v", err)
			}
			available[Probabilities] = p
		}
	}
	var chosen []tensor
	if len(call.Outputs) == 0 {
		for _, name := range OutputNames {
			if t, ok := available[name]; ok {
				chosen = append(chosen, t)
			}
		}
		return chosen, nil
	}
	for _, o := range call.Outputs {
		t, ok := available[o.Name]
		if !ok {
			task := "classification"
			if !hasClasses {
				task = "regression"
			}
			if o.Name == Probabilities && hasClasses {
				return nil, &Error{Status: 500, Message: fmt.Sprintf("model %s: PREDICT sent no probabilities", call.ModelID)}
			}
			var have []string
			for _, name := range OutputNames {
				if _, ok := available[name]; ok {
					have = append(have, name)
				}
			}
			return nil, bad("model %s (%s) has no output '%s'; its outputs: %s", call.ModelID, task, o.Name, joinComma(have))
		}
		chosen = append(chosen, t)
	}
	return chosen, nil
}

func joinComma(list []string) string {
	var b bytes.Buffer
	for i, s := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// toFloat32 is numpy's astype(float32) of a reply array.
func toFloat32(a wire.Array) ([]float32, error) {
	if a.Dtype == wire.Float32 {
		return a.Float32s()
	}
	if v, ok, err := a.ConvertToFloat32(); ok {
		return v, err
	}
	return nil, fmt.Errorf("dtype %s", a.Dtype)
}

// labels maps class indices to the model's class labels (oip.py's _labels).
func labels(classesValue any, index wire.Array) (tensor, error) {
	classes, err := classList(classesValue)
	if err != nil {
		return tensor{}, err
	}
	if len(classes) == 0 {
		return tensor{}, fmt.Errorf("'classes' must be a non-empty list")
	}
	if len(index.Shape) != 1 || (index.Dtype != wire.Int32 && index.Dtype != wire.Int64) {
		return tensor{}, fmt.Errorf("class indices must be integers [rows], got %s %v", index.Dtype, index.Shape)
	}
	var idx []int64
	if index.Dtype == wire.Int64 {
		idx, err = index.Int64s()
	} else {
		var v []int32
		v, err = index.Int32s()
		for _, n := range v {
			idx = append(idx, int64(n))
		}
	}
	if err != nil {
		return tensor{}, err
	}
	datatype, err := labelDatatype(classes)
	if err != nil {
		return tensor{}, err
	}
	if datatype == "INT64" {
		for _, c := range classes {
			if !c.fitsInt64 {
				return tensor{}, fmt.Errorf("class %s does not fit int64", c.text)
			}
		}
	}
	t := tensor{name: Label, datatype: datatype, shape: []int{len(idx)}}
	for _, i := range idx {
		if i < 0 || i >= int64(len(classes)) {
			return tensor{}, fmt.Errorf("a class index is outside 0..%d", len(classes)-1)
		}
		c := classes[i]
		switch datatype {
		case "BYTES":
			t.strs = append(t.strs, c.s)
		case "BOOL":
			t.bools = append(t.bools, c.b)
		case "INT64":
			t.ints = append(t.ints, c.i)
		case "FP64":
			t.f64 = append(t.f64, c.f)
		}
	}
	return t, nil
}

// class is one class label as Python sees it.
type class struct {
	kind      byte // 's' str, 'b' bool, 'i' int, 'f' float
	s         string
	b         bool
	i         int64
	fitsInt64 bool
	f         float64
	text      string
}

func classList(v any) ([]class, error) {
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	case []int64:
		for _, n := range x {
			items = append(items, n)
		}
	case []int:
		for _, n := range x {
			items = append(items, n)
		}
	case []float64:
		for _, f := range x {
			items = append(items, f)
		}
	case []bool:
		for _, b := range x {
			items = append(items, b)
		}
	default:
		return nil, fmt.Errorf("'classes' must be a non-empty list, got %s", kind(v))
	}
	out := make([]class, len(items))
	for i, item := range items {
		c, err := classOf(item)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func classOf(v any) (class, error) {
	switch x := v.(type) {
	case string:
		return class{kind: 's', s: x}, nil
	case bool:
		return class{kind: 'b', b: x}, nil
	case int:
		return class{kind: 'i', i: int64(x), fitsInt64: true, f: float64(x)}, nil
	case int64:
		return class{kind: 'i', i: x, fitsInt64: true, f: float64(x)}, nil
	case float64:
		return class{kind: 'f', f: x}, nil
	case wire.Number:
		p := readNumber(x)
		if !p.isInt {
			return class{kind: 'f', f: p.f}, nil
		}
		f, _ := new(big.Float).SetInt(p.i).Float64()
		return class{kind: 'i', i: p.i.Int64(), fitsInt64: p.i.IsInt64(), f: f, text: p.i.String()}, nil
	}
	return class{}, fmt.Errorf("classes must be all strings or all numbers, got %s", kind(v))
}

// labelDatatype is the label output's datatype for these classes: BYTES
// for strings, BOOL for booleans, INT64 for integers, FP64 for other
// numbers (the types client/export.py gives the ONNX label).
func labelDatatype(classes []class) (string, error) {
	all := func(ok func(c class) bool) bool {
		for _, c := range classes {
			if !ok(c) {
				return false
			}
		}
		return true
	}
	switch {
	case all(func(c class) bool { return c.kind == 's' }):
		return "BYTES", nil
	case all(func(c class) bool { return c.kind == 'b' }):
		return "BOOL", nil
	case all(func(c class) bool { return c.kind == 'i' }):
		return "INT64", nil
	case all(func(c class) bool { return c.kind == 'i' || c.kind == 'f' }):
		return "FP64", nil
	}
	return "", fmt.Errorf("classes must be all strings or all numbers")
}

// writeTensorJSON writes a tensor's elements, flat, as orjson writes the
// numpy array (ryu's shortest float32/float64 forms, NaN and ±Inf as null).
func writeTensorJSON(b *bytes.Buffer, t tensor) {
	b.WriteByte('[')
	n := 0
	sep := func() {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
	}
	switch t.datatype {
	case "BYTES":
		for _, s := range t.strs {
			sep()
			writeJSONString(b, s)
		}
	case "BOOL":
		for _, v := range t.bools {
			sep()
			b.WriteString(strconv.FormatBool(v))
		}
	case "INT64":
		for _, v := range t.ints {
			sep()
			b.WriteString(strconv.FormatInt(v, 10))
		}
	case "FP64":
		for _, v := range t.f64 {
			sep()
			b.WriteString(pyfmt.OrjsonFloat(v))
		}
	case "FP32":
		for _, v := range t.f32 {
			sep()
			b.WriteString(pyfmt.OrjsonFloat32(v))
		}
	}
	b.WriteByte(']')
}

// tensorBytes is binary tensor data: little-endian, row-major; BYTES
// elements as a 4-byte little-endian length then the UTF-8 bytes; BOOL one
// byte each.
func tensorBytes(t tensor) []byte {
	var out []byte
	le := binary.LittleEndian
	switch t.datatype {
	case "BYTES":
		for _, s := range t.strs {
			out = le.AppendUint32(out, uint32(len(s)))
			out = append(out, s...)
		}
	case "BOOL":
		for _, v := range t.bools {
			if v {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		}
	case "INT64":
		for _, v := range t.ints {
			out = le.AppendUint64(out, uint64(v))
		}
	case "FP64":
		for _, v := range t.f64 {
			out = le.AppendUint64(out, math.Float64bits(v))
		}
	case "FP32":
		out = make([]byte, 0, 4*len(t.f32))
		for _, v := range t.f32 {
			out = le.AppendUint32(out, math.Float32bits(v))
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, err := wire.MarshalJSON(s)
	if err != nil { // not UTF-8: as Latin-1, which is what a path byte is
		enc, _ = wire.MarshalJSON(pyfmt.Latin1(s))
	}
	b.Write(enc)
}

// ModelMetadata is GET /v2/models/{id}: name, versions (none: a new model
// is a new id), platform, and the input and output tensors with -1 for the
// batch dimension; listing is the model's LIST/INFO entry (PROTOCOL.md
// §5.4). An error means a listing INFO does not send (a 500).
func ModelMetadata(modelID string, listing *wire.Object) ([]byte, error) {
	inputs, ok := listingInt(listing, "inputs")
	if !ok {
		return nil, fmt.Errorf("model listing without 'inputs'")
	}
	task, _ := listing.Str("task")
	classesValue, _ := listing.Get("classes")
	var classes []class
	if classesValue != nil {
		var err error
		if classes, err = classList(classesValue); err != nil {
			return nil, err
		}
	}
	var outList []*wire.Object
	if task == "regression" || len(classes) == 0 {
		k := int64(1)
		if listing.Has("outputs") {
			if k, ok = listingInt(listing, "outputs"); !ok {
				return nil, fmt.Errorf("model listing 'outputs' is not an integer")
			}
		}
		shape := []int64{-1}
		if k != 1 {
			shape = []int64{-1, k}
		}
		outList = append(outList, wire.NewObject(
			wire.Field{Key: "name", Value: Values}, wire.Field{Key: "datatype", Value: "FP32"}, wire.Field{Key: "shape", Value: shape}))
	} else {
		datatype, err := labelDatatype(classes)
		if err != nil {
			return nil, err
		}
		outList = append(outList,
			wire.NewObject(wire.Field{Key: "name", Value: Label}, wire.Field{Key: "datatype", Value: datatype},
				wire.Field{Key: "shape", Value: []int64{-1}}),
			wire.NewObject(wire.Field{Key: "name", Value: Probabilities}, wire.Field{Key: "datatype", Value: "FP32"},
				wire.Field{Key: "shape", Value: []int64{-1, int64(len(classes))}}))
	}
	meta := wire.NewObject(
		wire.Field{Key: "name", Value: modelID},
		wire.Field{Key: "versions", Value: []any{}},
		wire.Field{Key: "platform", Value: Platform},
		wire.Field{Key: "inputs", Value: []*wire.Object{wire.NewObject(
			wire.Field{Key: "name", Value: InputName}, wire.Field{Key: "datatype", Value: "FP32"},
			wire.Field{Key: "shape", Value: []int64{-1, inputs}})}},
		wire.Field{Key: "outputs", Value: outList},
	)
	return wire.MarshalJSON(meta)
}

// listingInt is Python's int() of a listing's number.
func listingInt(listing *wire.Object, key string) (int64, bool) {
	v, _ := listing.Get(key)
	switch x := v.(type) {
	case wire.Number:
		p := readNumber(x)
		if p.isInt {
			return p.i.Int64(), p.i.IsInt64()
		}
		if math.IsInf(p.f, 0) || math.IsNaN(p.f) || math.Abs(p.f) > 1<<62 {
			return 0, false
		}
		return int64(p.f), true
	case int:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1<<62 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// ServerMetadata is GET /v2: the server's name, version and extensions.
func ServerMetadata(version string) []byte {
	b, _ := wire.MarshalJSON(wire.NewObject(
		wire.Field{Key: "name", Value: ServerName},
		wire.Field{Key: "version", Value: version},
		wire.Field{Key: "extensions", Value: Extensions},
	))
	return b
}

// ErrorStatus is the HTTP status of a PREDICT/INFO error code: 500 for
// INTERNAL and any code an infer cannot legitimately cause. BUSY is 503,
// not 429: the node's admission bound, not one user's rate (oip.py).
func ErrorStatus(code wire.ErrorCode) int {
	switch code {
	case wire.Malformed, wire.BadRequest, wire.BadShape, wire.BadInput:
		return 400
	case wire.NotFound:
		return 404
	case wire.TooLarge:
		return 413
	case wire.Busy, wire.Unavailable, wire.NotLeader:
		return 503
	case wire.Timeout:
		return 504
	}
	return 500
}

// ErrorBody is the spec's error response body: {"error": message}.
func ErrorBody(message string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"error":`)
	writeJSONString(&b, message)
	b.WriteByte('}')
	return b.Bytes()
}
