package ml

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The model file of docs/FORMAT.md: a safetensors file whose header is
// written in model_file.py's canonical order, so the same model gives the
// same bytes from Go as from Python (the Raft log and the registry identify
// models by the file's SHA-256).

// Format constants (FORMAT.md §3).
const (
	FormatName     = "zmqnode.mlp"
	FormatVersion  = 1
	MetadataKey    = "zmqnode"
	VersionKey     = "format_version"
	MaxHeaderBytes = 16 << 20
)

type namedTensor struct {
	name  string
	shape []int
	data  []float32
}

// tensors in name order (byte-wise), the order of the data buffer and of
// the checksum.
func (m *Model) tensors() []namedTensor {
	var ts []namedTensor
	for i, w := range m.Weights {
		ts = append(ts,
			namedTensor{fmt.Sprintf("layers.%d.weight", i), []int{w.Rows, w.Cols}, w.Data},
			namedTensor{fmt.Sprintf("layers.%d.bias", i), []int{len(m.Biases[i])}, m.Biases[i]})
	}
	ts = append(ts,
		namedTensor{"input.mean", []int{len(m.InputMean)}, m.InputMean},
		namedTensor{"input.std", []int{len(m.InputStd)}, m.InputStd})
	if m.OutputMean != nil && m.OutputStd != nil {
		ts = append(ts,
			namedTensor{"output.mean", []int{len(m.OutputMean)}, m.OutputMean},
			namedTensor{"output.std", []int{len(m.OutputStd)}, m.OutputStd})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

func float32Bytes(a []float32) []byte {
	out := make([]byte, 4*len(a))
	for i, v := range a {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

func tensorsSHA256(ts []namedTensor) string {
	h := sha256.New()
	for _, t := range ts {
		h.Write(float32Bytes(t.data))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MetadataDocument is Model.metadata_json: the "zmqnode" document.
func (m *Model) MetadataDocument() map[string]any {
	sizes := make([]any, 0, len(m.Weights)+1)
	for _, s := range m.LayerSizes() {
		sizes = append(sizes, int64(s))
	}
	classes := append([]any{}, m.Classes...)
	training, createdBy := m.Training, m.CreatedBy
	if training == nil {
		training = map[string]any{}
	}
	if createdBy == nil {
		createdBy = map[string]any{}
	}
	doc := map[string]any{
		"format":         FormatName,
		"format_version": int64(FormatVersion),
		"task":           m.Task,
		"architecture": map[string]any{
			"layer_sizes":       sizes,
			"hidden_activation": m.HiddenActivation,
			"output_activation": m.OutputActivation(),
		},
		"classes":        classes,
		"tensors_sha256": tensorsSHA256(m.tensors()),
		"training":       training,
		"created_by":     createdBy,
	}
	// Absent rather than empty: files without names stay byte-identical.
	if len(m.Features) > 0 {
		doc["features"] = m.Features
	}
	if len(m.Targets) > 0 {
		doc["targets"] = m.Targets
	}
	return doc
}

// Bytes is Model.to_bytes: the .bin file, deterministic (same model, same
// bytes, in Go as in Python): __metadata__ first with sorted keys, then the
// tensors in data (name) order, compact JSON, spaces to a multiple of 8.
func (m *Model) Bytes() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	doc, err := PyJSON(m.MetadataDocument())
	if err != nil {
		return nil, modelErr("training metadata is not JSON-serializable: %v", err)
	}
	header := orderedObject{{"__metadata__", orderedObject{
		{VersionKey, strconv.Itoa(FormatVersion)},
		{MetadataKey, string(doc)},
	}}}
	var body []byte
	for _, t := range m.tensors() {
		begin := len(body)
		body = append(body, float32Bytes(t.data)...)
		shape := make([]any, len(t.shape))
		for i, s := range t.shape {
			shape[i] = s
		}
		header = append(header, keyValue{t.name, orderedObject{
			{"dtype", "F32"},
			{"shape", shape},
			{"data_offsets", []any{begin, len(body)}},
		}})
	}
	text, err := PyJSON(header)
	if err != nil {
		return nil, err
	}
	for len(text)%8 != 0 {
		text = append(text, ' ')
	}
	out := make([]byte, 8, 8+len(text)+len(body))
	binary.LittleEndian.PutUint64(out, uint64(len(text)))
	out = append(out, text...)
	return append(out, body...), nil
}

type tensorInfo struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ReadModel is Model.from_bytes: parse and fully validate a model file
// (every check of FORMAT.md §7); errors wrap ErrModelFormat.
func ReadModel(data []byte) (*Model, error) {
	if len(data) < 8 {
		return nil, modelErr("not a model file: %d bytes is too short", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderBytes {
		return nil, modelErr("not a model file: the first 8 bytes announce a %d-byte header (garbage or another format)", n)
	}
	if 8+n > uint64(len(data)) {
		return nil, modelErr("truncated model file: the header needs %d bytes, the file has %d", 8+n, len(data))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil || header == nil {
		return nil, modelErr("not a model file: the header is not safetensors JSON")
	}
	var meta map[string]any
	if raw, ok := header["__metadata__"]; ok {
		_ = json.Unmarshal(raw, &meta)
	}
	docText, ok := meta[MetadataKey].(string)
	if !ok {
		return nil, modelErr("not a zmqnode model: the safetensors metadata has no 'zmqnode' entry")
	}
	if v, _ := meta[VersionKey].(string); v != strconv.Itoa(FormatVersion) {
		return nil, modelErr("unsupported model format version %s; this zmqnode reads version %d", pyRepr(meta[VersionKey]), FormatVersion)
	}
	dec := json.NewDecoder(strings.NewReader(docText))
	dec.UseNumber()
	var docValue any
	if err := dec.Decode(&docValue); err != nil {
		return nil, modelErr("the 'zmqnode' metadata is not valid JSON: %v", err)
	}
	doc, ok := docValue.(map[string]any)
	if !ok {
		return nil, modelErr("the 'zmqnode' metadata must be a JSON object")
	}
	if version, ok := jsonInt(doc["format_version"]); doc["format"] != FormatName || !ok || version != FormatVersion {
		return nil, modelErr("the 'zmqnode' metadata says format %s version %s; expected '%s' version %d",
			pyRepr(doc["format"]), pyRepr(doc["format_version"]), FormatName, FormatVersion)
	}
	tensors, err := readTensors(header, data[8+n:])
	if err != nil {
		return nil, err
	}
	return modelFrom(doc, tensors)
}

type rawTensor struct {
	shape []int
	data  []float32
	dtype string
}

// readTensors is safetensors' own check: every tensor inside the buffer,
// its byte count matching its shape, the buffer covered with no gap or overlap.
func readTensors(header map[string]json.RawMessage, body []byte) (map[string]rawTensor, error) {
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	out := map[string]rawTensor{}
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var info tensorInfo
		if err := json.Unmarshal(raw, &info); err != nil || len(info.DataOffsets) != 2 {
			return nil, modelErr("corrupt tensor data: tensor %s has no valid dtype, shape and data_offsets", name)
		}
		b, e := info.DataOffsets[0], info.DataOffsets[1]
		if b < 0 || e < b || e > int64(len(body)) {
			return nil, modelErr("corrupt tensor data: tensor %s's data_offsets [%d, %d] are outside the %d-byte buffer", name, b, e, len(body))
		}
		count := int64(1)
		shape := make([]int, len(info.Shape))
		for i, s := range info.Shape {
			if s < 0 || s > int64(len(body)) {
				return nil, modelErr("corrupt tensor data: tensor %s has shape %v", name, info.Shape)
			}
			count *= s
			shape[i] = int(s)
		}
		size := map[string]int64{"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
			"I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}[info.Dtype]
		if size == 0 {
			return nil, modelErr("corrupt tensor data: tensor %s has unknown dtype %q", name, info.Dtype)
		}
		if count*size != e-b {
			return nil, modelErr("corrupt tensor data: tensor %s declares %v %s but has %d bytes", name, info.Shape, info.Dtype, e-b)
		}
		spans = append(spans, span{name, b, e})
		t := rawTensor{shape: shape, dtype: info.Dtype}
		if info.Dtype == "F32" {
			t.data = make([]float32, count)
			for i := range t.data {
				t.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[b+4*int64(i):]))
			}
		}
		out[name] = t
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	at := int64(0)
	for _, s := range spans {
		if s.begin != at {
			return nil, modelErr("corrupt tensor data: the tensors do not cover the buffer contiguously (at %s)", s.name)
		}
		at = s.end
	}
	if at != int64(len(body)) {
		return nil, modelErr("corrupt tensor data: %d bytes after the last tensor", int64(len(body))-at)
	}
	return out, nil
}

// modelFrom is model_file._model_from: the document and tensors checked
// against each other, then the Model validated.
func modelFrom(doc map[string]any, tensors map[string]rawTensor) (*Model, error) {
	task, _ := doc["task"].(string)
	if _, ok := OutputActivation[task]; !ok {
		return nil, modelErr("unknown task %s; expected one of binary, multiclass, regression", pyRepr(doc["task"]))
	}
	arch, ok := doc["architecture"].(map[string]any)
	if !ok {
		return nil, modelErr("metadata has no 'architecture' object")
	}
	rawSizes, _ := arch["layer_sizes"].([]any)
	var sizes []int
	for _, s := range rawSizes {
		if v, ok := jsonInt(s); ok && v > 0 && v <= math.MaxInt32 {
			sizes = append(sizes, int(v))
		}
	}
	if len(rawSizes) < 2 || len(sizes) != len(rawSizes) {
		return nil, modelErr("architecture.layer_sizes must be >= 2 positive ints, got %s", pyRepr(arch["layer_sizes"]))
	}
	if arch["output_activation"] != OutputActivation[task] {
		return nil, modelErr("task '%s' needs output activation '%s', the file says %s", task, OutputActivation[task], pyRepr(arch["output_activation"]))
	}
	hidden, ok := arch["hidden_activation"].(string)
	if !ok {
		return nil, modelErr("architecture.hidden_activation must be a string, got %s", pyRepr(arch["hidden_activation"]))
	}
	nLayers := len(sizes) - 1
	var expected []string
	for i := 0; i < nLayers; i++ {
		expected = append(expected, fmt.Sprintf("layers.%d.weight", i), fmt.Sprintf("layers.%d.bias", i))
	}
	expected = append(expected, "input.mean", "input.std")
	if task == TaskRegression {
		expected = append(expected, "output.mean", "output.std")
	}
	var missing, extra []string
	for _, name := range expected {
		if _, ok := tensors[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, modelErr("missing tensor(s): %s", strings.Join(missing, ", "))
	}
	for name := range tensors {
		if !containsString(expected, name) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, modelErr("unexpected tensor(s): %s", strings.Join(extra, ", "))
	}
	for _, name := range expected {
		if tensors[name].dtype != "F32" {
			return nil, modelErr("tensor %s is %s; expected float32 (F32)", name, tensors[name].dtype)
		}
	}
	m := &Model{Task: task, HiddenActivation: hidden}
	for i := 0; i < nLayers; i++ {
		w := tensors[fmt.Sprintf("layers.%d.weight", i)]
		if len(w.shape) != 2 || w.shape[0] != sizes[i] || w.shape[1] != sizes[i+1] {
			return nil, modelErr("layers.%d.weight has shape %v; layer_sizes %v need [%d, %d]", i, w.shape, sizes, sizes[i], sizes[i+1])
		}
		b := tensors[fmt.Sprintf("layers.%d.bias", i)]
		if len(b.shape) != 1 {
			return nil, modelErr("layer %d: weight must be 2-D and bias 1-D, got shapes %v and %v", i, w.shape, b.shape)
		}
		m.Weights = append(m.Weights, Matrix{w.shape[0], w.shape[1], w.data})
		m.Biases = append(m.Biases, b.data)
	}
	var ts []namedTensor
	for _, name := range expected {
		ts = append(ts, namedTensor{name: name, data: tensors[name].data})
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	if doc["tensors_sha256"] != tensorsSHA256(ts) {
		return nil, modelErr("the tensors do not match tensors_sha256: the file is corrupt")
	}
	for _, name := range []string{"input.mean", "input.std", "output.mean", "output.std"} {
		if t, ok := tensors[name]; ok && len(t.shape) != 1 {
			return nil, modelErr("%s must have shape [n], got %v", name, t.shape)
		}
	}
	m.InputMean, m.InputStd = tensors["input.mean"].data, tensors["input.std"].data
	if task == TaskRegression {
		m.OutputMean, m.OutputStd = tensors["output.mean"].data, tensors["output.std"].data
	}
	rawClasses, ok := doc["classes"]
	if !ok {
		rawClasses = []any{}
	}
	classes, ok := rawClasses.([]any)
	if !ok {
		return nil, modelErr("'classes' must be a list")
	}
	for _, c := range classes {
		v, err := classValue(c)
		if err != nil {
			return nil, err
		}
		m.Classes = append(m.Classes, v)
	}
	m.Training, m.CreatedBy = map[string]any{}, map[string]any{}
	if v, ok := doc["training"]; ok {
		if m.Training, ok = v.(map[string]any); !ok {
			return nil, modelErr("'training' and 'created_by' must be objects")
		}
	}
	if v, ok := doc["created_by"]; ok {
		if m.CreatedBy, ok = v.(map[string]any); !ok {
			return nil, modelErr("'training' and 'created_by' must be objects")
		}
	}
	for _, key := range []string{"features", "targets"} {
		v, ok := doc[key]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return nil, modelErr("'%s' must be a list of column names", key)
		}
		names := make([]string, len(list))
		for i, item := range list {
			s, ok := item.(string)
			if !ok {
				return nil, modelErr("%s: each column name must be a string of 1 to %d characters, got %s", key, MaxColumnNameChars, pyRepr(item))
			}
			names[i] = s
		}
		if key == "features" {
			m.Features = names
		} else {
			m.Targets = names
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
