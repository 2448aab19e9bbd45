package httpinfer

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"
	"zmqnode/pyfmt"

	"zmqnode/wire"
)

// The Open Inference Protocol (KServe v2 / Triton HTTP) mapped onto PREDICT:
// zmqnode/oip.py in Go, with the same checks in the same order and the same
// messages. Pure functions, no sockets.

// Tensor names (client/export.py's ONNX graph, docs/FORMAT.md §5).
const (
	InputName     = "inputs"
	Label         = "label"
	Probabilities = "probabilities"
	Values        = "values"
	// HeaderLength is the binary tensor extension's header: the length of
	// the JSON part of the body.
	HeaderLength = "Inference-Header-Content-Length"
	ServerName   = "zmqnode"
	Platform     = "zmqnode"
)

// OutputNames in the order "all outputs" lists them.
var OutputNames = []string{Label, Probabilities, Values}

// Extensions the server offers (GET /v2).
var Extensions = []string{"binary_tensor_data"}

type inputType struct {
	name  string
	size  int
	float bool
	// integer range (for JSON data of integer types)
	min, max *big.Int
}

// inputTypes are the accepted input datatypes, in the order messages list
// them; all are converted to float32.
var inputTypes = []inputType{
	{"FP16", 2, true, nil, nil},
	{"FP32", 4, true, nil, nil},
	{"FP64", 8, true, nil, nil},
	{"INT8", 1, false, big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
	{"INT16", 2, false, big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
	{"INT32", 4, false, big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
	{"INT64", 8, false, big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
	{"UINT8", 1, false, big.NewInt(0), big.NewInt(math.MaxUint8)},
	{"UINT16", 2, false, big.NewInt(0), big.NewInt(math.MaxUint16)},
	{"UINT32", 4, false, big.NewInt(0), big.NewInt(math.MaxUint32)},
	{"UINT64", 8, false, big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
}

func lookupType(name string) (inputType, bool) {
	for _, t := range inputTypes {
		if t.name == name {
			return t, true
		}
	}
	return inputType{}, false
}

// Error is a request that cannot be served: an HTTP status and a one-line
// message for the {"error": ...} body (oip.py's OipError).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

func bad(format string, args ...any) *Error {
	return &Error{Status: 400, Message: fmt.Sprintf(format, args...)}
}

// RequestedOutput is one entry of a request's outputs.
type RequestedOutput struct {
	Name   string
	Binary bool
}

// InferCall is a parsed infer request: the rows to predict (float32,
// row-major, as PREDICT's blob 0) and how to answer.
type InferCall struct {
	ModelID      string
	RequestID    *string // echoed as "id" when the request had one
	Rows, Cols   int
	Blob         []byte // the rows as little-endian float32
	Outputs      []RequestedOutput
	BinaryOutput bool
}

// Proba says whether PREDICT must send probabilities: "probabilities" was
// listed, or nothing was and task (the model's, "" when unknown) classifies.
func (c *InferCall) Proba(task string) bool {
	if len(c.Outputs) > 0 {
		for _, o := range c.Outputs {
			if o.Name == Probabilities {
				return true
			}
		}
		return false
	}
	return task != "" && task != "regression"
}

// PredictHeader is the PREDICT request for this call (blob: c.Blob). With a
// known task, an output the model lacks is a 400 before any work is done.
func (c *InferCall) PredictHeader(requestID, task string) (*wire.Object, *Error) {
	if task != "" {
		if err := CheckOutputs(c, task); err != nil {
			return nil, err
		}
	}
	return decoded(wire.NewObject(
		wire.Field{Key: "v", Value: wire.ProtocolVersion},
		wire.Field{Key: "type", Value: wire.TypePredict},
		wire.Field{Key: "id", Value: requestID},
		wire.Field{Key: "model_id", Value: c.ModelID},
		wire.Field{Key: "inputs", Value: wire.NewObject(
			wire.Field{Key: "dtype", Value: "float32"},
			wire.Field{Key: "shape", Value: []int{c.Rows, c.Cols}},
			wire.Field{Key: "frame", Value: 0},
		)},
		wire.Field{Key: "proba", Value: c.Proba(task)},
	)), nil
}

// decoded is a header as the node's handlers get one from a client: the
// JSON decoder's types (wire.Number, []any), which they read arrays from.
func decoded(header *wire.Object) *wire.Object {
	raw, err := wire.MarshalJSON(header)
	if err == nil {
		if v, err := wire.UnmarshalJSON(raw); err == nil {
			if o, ok := v.(*wire.Object); ok {
				return o
			}
		}
	}
	return header
}

// CheckOutputs refuses (400) an output a task's model does not have.
func CheckOutputs(c *InferCall, task string) *Error {
	have := []string{Label, Probabilities}
	if task == "regression" {
		have = []string{Values}
	}
	for _, o := range c.Outputs {
		if !contains(have, o.Name) {
			return bad("model %s (%s) has no output '%s'; its outputs: %s",
				c.ModelID, task, o.Name, strings.Join(have, ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ParseHeaderLength reads the Inference-Header-Content-Length value
// (present false: no such header).
func ParseHeaderLength(value string, present bool) (int64, bool, *Error) {
	if !present {
		return 0, false, nil
	}
	text := strings.TrimFunc(value, pySpace)
	ok := text != ""
	var n big.Int
	for i := 0; i < len(text) && ok; i++ {
		ok = text[i] >= '0' && text[i] <= '9'
	}
	if ok {
		n.SetString(text, 10)
	}
	if !ok {
		return 0, false, bad("%s must be a non-negative integer, got %s", HeaderLength, reprCut(pyfmt.Latin1(value), 40))
	}
	if !n.IsInt64() {
		return math.MaxInt64, true, nil // beyond any body: refused by ParseInfer
	}
	return n.Int64(), true, nil
}

// pySpace is str.isspace for Latin-1 text.
func pySpace(r rune) bool {
	return r == ' ' || r >= '\t' && r <= '\r' || r >= 0x1c && r <= 0x1f || r == 0x85 || r == 0xa0
}

// ParseInfer parses an infer request body: JSON, or (hasLength: the
// Inference-Header-Content-Length value) that many bytes of JSON followed
// by the binary tensors. Every refusal is a 400 with oip.py's message.
func ParseInfer(modelID string, body []byte, headerLength int64, hasLength bool) (*InferCall, *Error) {
	jsonPart, tail := body, []byte(nil)
	if hasLength {
		if headerLength < 0 || headerLength > int64(len(body)) {
			return nil, bad("%s is %d but the body has %d bytes", HeaderLength, headerLength, len(body))
		}
		jsonPart, tail = body[:headerLength], body[headerLength:]
	}
	decoded, err := wire.UnmarshalJSON(jsonPart)
	if err != nil {
		// The text after the colon is the JSON parser's own (SPEC_NOTES.md).
		return nil, bad("request is not valid JSON: %s", jsonError(jsonPart, err))
	}
	request, ok := decoded.(*wire.Object)
	if !ok {
		return nil, bad("request must be a JSON object, got %s", kind(decoded))
	}
	call := &InferCall{ModelID: modelID}
	if id, _ := request.Get("id"); id != nil {
		s, ok := id.(string)
		if !ok {
			return nil, bad("request 'id' must be a string, got %s", kind(id))
		}
		call.RequestID = &s
	}
	params, perr := parameters(request, "request")
	if perr != nil {
		return nil, perr
	}
	if v, present := params.Get("binary_data_output"); present {
		b, ok := v.(bool)
		if !ok {
			return nil, bad("parameter 'binary_data_output' must be true or false")
		}
		call.BinaryOutput = b
	}
	inputs, _ := request.Get("inputs")
	list, isList := inputs.([]any)
	if !isList || len(list) != 1 {
		count := kind(inputs)
		if isList {
			count = fmt.Sprintf("%d inputs", len(list))
		}
		return nil, bad("model %s takes exactly one input '%s' (FP32 [-1, columns]), got %s", modelID, InputName, count)
	}
	rows, cols, values, ierr := readInput(list[0], tail)
	if ierr != nil {
		return nil, ierr
	}
	outputs, _ := request.Get("outputs")
	if call.Outputs, ierr = requestedOutputs(outputs, call.BinaryOutput); ierr != nil {
		return nil, ierr
	}
	call.Rows, call.Cols = rows, cols
	call.Blob = make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(call.Blob[4*i:], math.Float32bits(v))
	}
	return call, nil
}

// jsonError describes why a body is not JSON. orjson's wording (with
// positions) is not reproduced; an empty body gets its words.
func jsonError(data []byte, err error) string {
	if len(data) == 0 {
		return "Input is a zero-length, empty document: line 1 column 1 (char 0)"
	}
	return err.Error()
}

func parameters(obj *wire.Object, where string) (*wire.Object, *Error) {
	v, present := obj.Get("parameters")
	if !present {
		return &wire.Object{}, nil
	}
	p, ok := v.(*wire.Object)
	if !ok || p == nil {
		return nil, bad("%s 'parameters' must be an object, got %s", where, kind(v))
	}
	return p, nil
}

// readInput is the one input tensor as finite float32 rows × cols.
func readInput(tensor any, tail []byte) (int, int, []float32, *Error) {
	obj, ok := tensor.(*wire.Object)
	if !ok {
		return 0, 0, nil, bad("input must be an object, got %s", kind(tensor))
	}
	name, _ := obj.Get("name")
	if s, ok := name.(string); !ok || s != InputName {
		return 0, 0, nil, bad("unknown input %s: the model's input is '%s'", repr(name), InputName)
	}
	dtName, _ := obj.Get("datatype")
	s, _ := dtName.(string)
	dt, known := lookupType(s)
	if _, isStr := dtName.(string); !isStr || !known {
		names := make([]string, len(inputTypes))
		for i, t := range inputTypes {
			names[i] = t.name
		}
		return 0, 0, nil, bad("input '%s' has datatype %s; allowed: %s", InputName, repr(dtName), strings.Join(names, ", "))
	}
	shapeValue, _ := obj.Get("shape")
	shape, okShape := shapeOf(shapeValue)
	if !okShape {
		return 0, 0, nil, bad("input '%s' shape must be [rows, columns] or [columns] of positive integers, got %s",
			InputName, reprCut(shapeValue, 80))
	}
	count := new(big.Int).SetInt64(1)
	for _, n := range shape {
		count.Mul(count, n)
	}
	params, perr := parameters(obj, fmt.Sprintf("input '%s'", InputName))
	if perr != nil {
		return 0, 0, nil, perr
	}
	if params.Has("shared_memory_region") {
		return 0, 0, nil, bad("shared memory inputs are not supported")
	}
	var (
		rows    []float32
		isFloat bool
		finite  bool
		err     *Error
	)
	if size, _ := params.Get("binary_data_size"); size != nil {
		rows, isFloat, finite, err = binaryInput(obj, size, tail, count, dt, shapeValue)
	} else {
		if len(tail) > 0 {
			return 0, 0, nil, bad("the body has %d bytes after the JSON but no input has 'binary_data_size'", len(tail))
		}
		data, _ := obj.Get("data")
		rows, isFloat, finite, err = jsonInput(data, count, dt)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	// One check after the cast: NaN and infinity stay so, and a value beyond
	// float32's range became infinite. (Integers are all within the range.)
	if isFloat && len(rows) > 0 {
		for _, v := range rows {
			if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
				if !finite {
					return 0, 0, nil, bad("input '%s' holds NaN or infinite values", InputName)
				}
				return 0, 0, nil, bad("input '%s' holds values beyond float32's range (±3.4e38)", InputName)
			}
		}
	}
	cols := int(shape[len(shape)-1].Int64())
	return len(rows) / cols, cols, rows, nil
}

// shapeOf accepts a list of 1 or 2 Python ints >= 1.
func shapeOf(v any) ([]*big.Int, bool) {
	list, ok := v.([]any)
	if !ok || len(list) < 1 || len(list) > 2 {
		return nil, false
	}
	out := make([]*big.Int, len(list))
	for i, e := range list {
		n, ok := isPyInt(e)
		if !ok || n.Sign() < 1 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func binaryInput(tensor *wire.Object, size any, tail []byte, count *big.Int, dt inputType, shape any) ([]float32, bool, bool, *Error) {
	n, ok := isPyInt(size)
	if !ok || n.Sign() < 0 {
		return nil, false, false, bad("'binary_data_size' must be a non-negative integer, got %s", reprCut(size, 40))
	}
	if tensor.Has("data") {
		return nil, false, false, bad("input '%s' has both 'data' and 'binary_data_size'", InputName)
	}
	if n.Cmp(big.NewInt(int64(len(tail)))) != 0 {
		return nil, false, false, bad("input '%s' declares binary_data_size %s but %d bytes follow the JSON header",
			InputName, n, len(tail))
	}
	need := new(big.Int).Mul(count, big.NewInt(int64(dt.size)))
	if need.Cmp(n) != 0 {
		return nil, false, false, bad("input '%s' shape %s %s needs %s bytes, binary_data_size is %s",
			InputName, repr(shape), dt.name, need, n)
	}
	k := len(tail) / dt.size
	rows := make([]float32, k)
	finite := true
	le := binary.LittleEndian
	for i := 0; i < k; i++ {
		b := tail[i*dt.size:]
		var v float32
		switch dt.name {
		case "FP16":
			v = halfToFloat32(le.Uint16(b))
		case "FP32":
			v = math.Float32frombits(le.Uint32(b))
		case "FP64":
			f := math.Float64frombits(le.Uint64(b))
			if math.IsInf(f, 0) || math.IsNaN(f) {
				finite = false
			}
			v = float32(f)
		case "INT8":
			v = float32(int8(b[0]))
		case "INT16":
			v = float32(int16(le.Uint16(b)))
		case "INT32":
			v = float32(int32(le.Uint32(b)))
		case "INT64":
			v = float32(int64(le.Uint64(b)))
		case "UINT8":
			v = float32(b[0])
		case "UINT16":
			v = float32(le.Uint16(b))
		case "UINT32":
			v = float32(le.Uint32(b))
		case "UINT64":
			v = float32(le.Uint64(b))
		}
		if dt.name != "FP64" && (math.IsInf(float64(v), 0) || math.IsNaN(float64(v))) {
			finite = false
		}
		rows[i] = v
	}
	return rows, dt.float, finite, nil
}

// halfToFloat32 is IEEE 754 binary16 to binary32 (exact).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(frac) / (1 << 24) // subnormal: frac × 2^-24
		if sign != 0 {
			return -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// numpy's dtype kinds of np.array(data) that matter here.
const (
	kindBool  byte = 'b'
	kindInt   byte = 'i'
	kindUint  byte = 'u'
	kindFloat byte = 'f'
	kindOther byte = 'O' // strings, None, objects: not numbers
)

// maxDims is numpy's NPY_MAXDIMS: np.array refuses deeper nesting.
const maxDims = 64

// jsonInput is oip.py's _json_input: np.array(data) (its shape discovery
// and dtype), then the kind, size and range checks, then the cast.
func jsonInput(data any, count *big.Int, dt inputType) ([]float32, bool, bool, *Error) {
	list, ok := data.([]any)
	if !ok {
		return nil, false, false, bad("input '%s' needs 'data' (a list) or 'binary_data_size'", InputName)
	}
	var leaves []any
	if _, ok := shapeOfData(list, 1, &leaves); !ok {
		return nil, false, false, bad("input '%s' data must be numbers in lists of equal length", InputName)
	}
	arrayKind := kindFloat // np.array([]) is float64
	if len(leaves) > 0 {
		arrayKind = dtypeKind(leaves)
	}
	integer := !dt.float
	if len(leaves) > 0 {
		allowed := arrayKind == kindInt || arrayKind == kindUint || (!integer && arrayKind == kindFloat)
		if !allowed {
			what := "numbers"
			if integer {
				what = "integers"
			}
			return nil, false, false, bad("input '%s' data must be %s for datatype %s", InputName, what, dt.name)
		}
	}
	if count.Cmp(big.NewInt(int64(len(leaves)))) != 0 {
		return nil, false, false, bad("input '%s' shape says %s values, data has %d", InputName, count, len(leaves))
	}
	if integer && len(leaves) > 0 {
		for _, leaf := range leaves {
			n := leafInt(leaf)
			if n.Cmp(dt.min) < 0 || n.Cmp(dt.max) > 0 {
				return nil, false, false, bad("input '%s' data is out of range for %s", InputName, dt.name)
			}
		}
	}
	rows := make([]float32, len(leaves))
	finite := true
	for i, leaf := range leaves {
		switch arrayKind {
		case kindFloat:
			f := leafFloat(leaf)
			if math.IsInf(f, 0) || math.IsNaN(f) {
				finite = false
			}
			rows[i] = float32(f)
		case kindInt:
			rows[i] = float32(leafInt(leaf).Int64())
		case kindUint:
			rows[i] = float32(leafInt(leaf).Uint64())
		}
	}
	return rows, arrayKind == kindFloat, finite, nil
}

// shapeOfData finds np.array's shape of nested lists, collecting the
// leaves in row-major order; false when numpy refuses (ragged, a list
// beside a scalar, deeper than 64 dimensions).
func shapeOfData(list []any, depth int, leaves *[]any) ([]int, bool) {
	if depth > maxDims {
		return nil, false
	}
	if len(list) == 0 {
		return []int{0}, true
	}
	_, firstIsList := list[0].([]any)
	var inner []int
	for i, e := range list {
		sub, isList := e.([]any)
		if isList != firstIsList {
			return nil, false
		}
		if !isList {
			*leaves = append(*leaves, e)
			continue
		}
		s, ok := shapeOfData(sub, depth+1, leaves)
		if !ok {
			return nil, false
		}
		if i == 0 {
			inner = s
		} else if !equalInts(s, inner) {
			return nil, false
		}
	}
	return append([]int{len(list)}, inner...), true
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dtypeKind is the kind of np.array's dtype for these scalars: bools alone
// are bool; an int is int64, or uint64 beyond int64, and the two together
// promote to float64 (bools join either); any float makes float64;
// anything else (str, None, dict) is not a number.
func dtypeKind(leaves []any) byte {
	allBool, anyFloat, anyInt64, anyBig := true, false, false, false
	for _, leaf := range leaves {
		switch x := leaf.(type) {
		case bool:
		case wire.Number:
			allBool = false
			p := readNumber(x)
			switch {
			case !p.isInt:
				anyFloat = true
			case p.i.Cmp(maxInt64) > 0:
				anyBig = true
			default:
				anyInt64 = true
			}
		default:
			return kindOther
		}
	}
	switch {
	case allBool:
		return kindBool
	case anyFloat, anyBig && anyInt64:
		return kindFloat
	case anyBig:
		return kindUint
	}
	return kindInt
}

func leafInt(leaf any) *big.Int {
	switch x := leaf.(type) {
	case bool:
		if x {
			return big.NewInt(1)
		}
		return big.NewInt(0)
	case wire.Number:
		if p := readNumber(x); p.isInt {
			return p.i
		}
	}
	return big.NewInt(0)
}

func leafFloat(leaf any) float64 {
	switch x := leaf.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case wire.Number:
		p := readNumber(x)
		if !p.isInt {
			return p.f
		}
		f, _ := new(big.Float).SetInt(p.i).Float64() // correctly rounded, as Python's int -> float
		return f
	}
	return 0
}

func requestedOutputs(outputs any, binaryDefault bool) ([]RequestedOutput, *Error) {
	if outputs == nil {
		return nil, nil
	}
	list, ok := outputs.([]any)
	if !ok {
		return nil, bad("'outputs' must be a list, got %s", kind(outputs))
	}
	var chosen []RequestedOutput
	for _, out := range list {
		obj, ok := out.(*wire.Object)
		if !ok {
			return nil, bad("each requested output must be an object, got %s", kind(out))
		}
		nameValue, _ := obj.Get("name")
		name, isStr := nameValue.(string)
		if !isStr || !contains(OutputNames, name) {
			return nil, bad("unknown output %s; outputs are %s", reprCut(nameValue, 80), strings.Join(OutputNames, ", "))
		}
		for _, o := range chosen {
			if o.Name == name {
				return nil, bad("output '%s' is requested twice", name)
			}
		}
		params, perr := parameters(obj, fmt.Sprintf("output '%s'", name))
		if perr != nil {
			return nil, perr
		}
		if params.Has("classification") {
			return nil, bad("the classification extension is not supported")
		}
		if params.Has("shared_memory_region") {
			return nil, bad("shared memory outputs are not supported")
		}
		binary := binaryDefault
		if v, present := params.Get("binary_data"); present {
			b, ok := v.(bool)
			if !ok {
				return nil, bad("output '%s' parameter 'binary_data' must be true or false", name)
			}
			binary = b
		}
		chosen = append(chosen, RequestedOutput{Name: name, Binary: binary})
	}
	return chosen, nil
}
