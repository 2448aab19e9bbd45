package node

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"zmqnode/ml"
	"zmqnode/storage"
	"zmqnode/wire"
)

// StoreModel is the one registry command (registry.py STORE_MODEL).
const StoreModel = "store_model"

// ModelIDFor is the model id a request id produces: stable across retries
// and leaders ("m" + the first 15 hex digits of SHA-256(request id)).
func ModelIDFor(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return "m" + hex.EncodeToString(sum[:])[:15]
}

// EncodeStoreModel is a STORE_MODEL entry: u32 little-endian header length,
// the JSON header (orjson's bytes, key order as registry.py), the model file.
func EncodeStoreModel(requestID string, model []byte, created float64, summary *wire.Object) ([]byte, error) {
	sum := sha256.Sum256(model)
	if summary == nil {
		summary = &wire.Object{}
	}
	header := wire.NewObject(
		wire.Field{Key: "op", Value: StoreModel},
		wire.Field{Key: "model_id", Value: ModelIDFor(requestID)},
		wire.Field{Key: "request_id", Value: requestID},
		wire.Field{Key: "sha256", Value: hex.EncodeToString(sum[:])},
		wire.Field{Key: "size", Value: int64(len(model))},
		wire.Field{Key: "created", Value: created},
		wire.Field{Key: "summary", Value: summary},
	)
	raw, err := wire.MarshalJSON(header)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, 4+len(raw)+len(model))
	binary.LittleEndian.PutUint32(out, uint32(len(raw)))
	out = append(out, raw...)
	return append(out, model...), nil
}

// CommandError is a committed entry that is not a valid registry command.
type CommandError struct{ Msg string }

func (e *CommandError) Error() string { return e.Msg }

// DecodeCommand splits a STORE_MODEL entry into its header and model bytes.
func DecodeCommand(data []byte) (*wire.Object, []byte, error) {
	if len(data) < 4 {
		return nil, nil, &CommandError{"command shorter than its length prefix"}
	}
	n := int(binary.LittleEndian.Uint32(data))
	if 4+n > len(data) {
		return nil, nil, &CommandError{"command header runs past the end of the entry"}
	}
	v, err := wire.UnmarshalJSON(data[4 : 4+n])
	if err != nil {
		return nil, nil, &CommandError{fmt.Sprintf("command header is not JSON: %v", err)}
	}
	h, ok := v.(*wire.Object)
	if !ok {
		return nil, nil, &CommandError{fmt.Sprintf("unknown command %.80s", string(data[4:4+n]))}
	}
	if op, _ := h.Str("op"); op != StoreModel {
		return nil, nil, &CommandError{fmt.Sprintf("unknown command %.80s", string(data[4:4+n]))}
	}
	for _, k := range []string{"model_id", "request_id", "sha256"} {
		if s, ok := h.Str(k); !ok || s == "" {
			return nil, nil, &CommandError{fmt.Sprintf("command field %q is not a string", k)}
		}
	}
	if _, ok := h.Int("size"); !ok {
		return nil, nil, &CommandError{"command field \"size\" is not an integer"}
	}
	if _, ok := h.Get("created"); !ok {
		return nil, nil, &CommandError{"command has no \"created\""}
	}
	return h, data[4+n:], nil
}

// ModelRecord is what the registry knows of one committed model (the same
// on every node). Created and Summary keep the JSON as committed, so a
// listing re-encodes the leader's bytes.
type ModelRecord struct {
	ModelID, RequestID, SHA256 string
	Size                       int64
	Created                    any // a JSON number
	Index                      uint64
	Summary                    *wire.Object
}

// JSON is LIST's object for the record (registry.py ModelRecord.to_json).
func (r *ModelRecord) JSON() *wire.Object {
	o := wire.NewObject(
		wire.Field{Key: "model_id", Value: r.ModelID},
		wire.Field{Key: "created", Value: r.Created},
		wire.Field{Key: "size_bytes", Value: r.Size},
		wire.Field{Key: "sha256", Value: r.SHA256},
		wire.Field{Key: "index", Value: r.Index},
	)
	if r.Summary != nil {
		for _, f := range r.Summary.Fields() {
			o.Set(f.Key, f.Value)
		}
	}
	return o
}

// ModelFileDamaged is a committed model whose file here is missing or
// fails its SHA-256.
type ModelFileDamaged struct{ ModelID, Reason string }

func (e *ModelFileDamaged) Error() string { return fmt.Sprintf("model %s: %s", e.ModelID, e.Reason) }

// Registry is the replicated state machine: every committed model, by id
// (registry.py ModelRegistry). Only the loop goroutine uses it.
type Registry struct {
	Store    *storage.ModelStore
	Models   map[string]*ModelRecord
	Damaged  map[string]bool
	loaded   map[string]*ml.Model
	unsynced map[string]bool
	checked  map[string]bool
	Logf     func(level, format string, args ...any)
}

// NewRegistry is an empty registry over store.
func NewRegistry(store *storage.ModelStore) *Registry {
	return &Registry{
		Store: store, Models: map[string]*ModelRecord{}, Damaged: map[string]bool{},
		loaded: map[string]*ml.Model{}, unsynced: map[string]bool{}, checked: map[string]bool{},
		Logf: func(string, string, ...any) {},
	}
}

// Apply applies the committed command at index; nil if it changed nothing.
// Every node sees the same bytes, so a bad command is skipped alike everywhere.
func (r *Registry) Apply(index uint64, data []byte) (*ModelRecord, error) {
	h, body, err := DecodeCommand(data)
	if err != nil {
		r.Logf("ERROR", "skipping committed entry %d: %v", index, err)
		return nil, nil
	}
	id, _ := h.Str("model_id")
	if _, ok := r.Models[id]; ok {
		return nil, nil // a retried request already stored this model
	}
	want, _ := h.Str("sha256")
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != want {
		r.Logf("ERROR", "skipping committed entry %d: model %s fails its checksum", index, id)
		return nil, nil
	}
	if err := storage.CheckModelID(id); err != nil {
		r.Logf("ERROR", "skipping committed entry %d: %v", index, err)
		return nil, nil
	}
	if !r.fileMatches(id, want) {
		// No fsync: the committed log entry is the durable copy (registry.py).
		if err := r.Store.Write(id, append([]byte(nil), body...), false); err != nil {
			return nil, err
		}
	}
	r.unsynced[id] = true
	rec := &ModelRecord{ModelID: id, SHA256: want, Index: index}
	rec.RequestID, _ = h.Str("request_id")
	rec.Size, _ = h.Int("size")
	rec.Created, _ = h.Get("created")
	rec.Summary, _ = h.Obj("summary")
	if rec.Summary == nil {
		rec.Summary = &wire.Object{}
	}
	r.Models[id] = rec
	delete(r.Damaged, id)
	r.checked[id] = true
	return rec, nil
}

func (r *Registry) fileMatches(id, sha string) bool {
	data, err := r.Store.Read(id)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) == sha
}

// Load is the parsed model, checked against its record's SHA-256 first:
// damaged bytes are never served (*ModelFileDamaged then).
func (r *Registry) Load(id string) (*ml.Model, error) {
	if m, ok := r.loaded[id]; ok {
		return m, nil
	}
	rec, ok := r.Models[id]
	if !ok {
		return nil, fmt.Errorf("no model %s", id)
	}
	if r.Damaged[id] {
		return nil, &ModelFileDamaged{id, "its file is being fetched from peers"}
	}
	data, err := r.Store.Read(id)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			r.Damaged[id] = true
			return nil, &ModelFileDamaged{id, "its file is missing"}
		}
		return nil, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != rec.SHA256 {
		r.Damaged[id] = true
		return nil, &ModelFileDamaged{id, "its file fails its SHA-256 checksum"}
	}
	m, err := ml.ReadModel(data)
	if err != nil {
		return nil, err
	}
	r.loaded[id] = m
	return m, nil
}

// CheckFiles returns the records whose file is missing or damaged (now
// marked so), hashing only those not checked before.
func (r *Registry) CheckFiles() []*ModelRecord {
	var bad []*ModelRecord
	for _, rec := range r.sorted() {
		if r.checked[rec.ModelID] {
			continue
		}
		r.checked[rec.ModelID] = true
		if !r.fileMatches(rec.ModelID, rec.SHA256) {
			r.Damaged[rec.ModelID] = true
			bad = append(bad, rec)
		}
	}
	return bad
}

// StoreRepaired writes a verified copy of a damaged file, durably.
func (r *Registry) StoreRepaired(id string, data []byte) error {
	rec, ok := r.Models[id]
	sum := sha256.Sum256(data)
	if !ok || hex.EncodeToString(sum[:]) != rec.SHA256 {
		return fmt.Errorf("refusing to store a copy of %s that fails its checksum", id)
	}
	if err := r.Store.Write(id, data, true); err != nil {
		return err
	}
	delete(r.unsynced, id)
	delete(r.Damaged, id)
	return nil
}

// TakeUnsynced returns (and forgets) the files written without fsync.
func (r *Registry) TakeUnsynced() []string {
	ids := make([]string, 0, len(r.unsynced))
	for id := range r.unsynced {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r.unsynced = map[string]bool{}
	return ids
}

// MarkUnsynced puts ids back (a compaction failed).
func (r *Registry) MarkUnsynced(ids []string) {
	for _, id := range ids {
		r.unsynced[id] = true
	}
}

func (r *Registry) sorted() []*ModelRecord {
	out := make([]*ModelRecord, 0, len(r.Models))
	for _, rec := range r.Models {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Listing is LIST's models, in commit order.
func (r *Registry) Listing() []*wire.Object {
	recs := r.sorted()
	out := make([]*wire.Object, len(recs))
	for i, rec := range recs {
		out[i] = rec.JSON()
	}
	return out
}

// SnapshotData is the records stored at index through or before, as
// registry.py snapshot_data writes them (the same bytes for the same records;
// Python orders by dict insertion, which is apply order, hence index order).
func (r *Registry) SnapshotData(through uint64) ([]byte, error) {
	items := []*wire.Object{}
	for _, rec := range r.sorted() {
		if rec.Index > through {
			continue
		}
		o := rec.JSON()
		o.Set("request_id", rec.RequestID)
		o.Set("summary", rec.Summary)
		items = append(items, o)
	}
	return wire.MarshalJSON(items)
}

// Restore replaces the records with a snapshot's; CheckFiles then finds
// the files to fetch. Models already held keep their parsed and checked state.
func (r *Registry) Restore(data []byte) error {
	var items []any
	if len(data) > 0 {
		v, err := wire.UnmarshalJSON(data)
		if err != nil {
			return fmt.Errorf("snapshot data is not JSON: %w", err)
		}
		list, ok := v.([]any)
		if !ok {
			return errors.New("snapshot data is not a JSON list")
		}
		items = list
	}
	previous := r.Models
	loaded, checked, damaged := r.loaded, r.checked, r.Damaged
	r.Models, r.loaded, r.checked, r.Damaged = map[string]*ModelRecord{}, map[string]*ml.Model{}, map[string]bool{}, map[string]bool{}
	for _, it := range items {
		o, ok := it.(*wire.Object)
		if !ok {
			return errors.New("snapshot record is not an object")
		}
		rec := &ModelRecord{}
		rec.ModelID, _ = o.Str("model_id")
		rec.RequestID, _ = o.Str("request_id")
		rec.SHA256, _ = o.Str("sha256")
		rec.Size, _ = o.Int("size_bytes")
		rec.Created, _ = o.Get("created")
		rec.Index, _ = o.Uint("index")
		rec.Summary, _ = o.Obj("summary")
		if rec.Summary == nil {
			rec.Summary = &wire.Object{}
		}
		if rec.ModelID == "" {
			return errors.New("snapshot record without model_id")
		}
		r.Models[rec.ModelID] = rec
		if old, ok := previous[rec.ModelID]; ok && old.SHA256 == rec.SHA256 {
			if m, ok := loaded[rec.ModelID]; ok {
				r.loaded[rec.ModelID] = m
			}
			if checked[rec.ModelID] {
				r.checked[rec.ModelID] = true
			}
			if damaged[rec.ModelID] {
				r.Damaged[rec.ModelID] = true
			}
		}
	}
	return nil
}

// ModelSizes is the total bytes of the registry's model files.
func (r *Registry) ModelBytes() int64 {
	var n int64
	for _, rec := range r.Models {
		n += rec.Size
	}
	return n
}

// summaryKeys is Model.summary's key order (model_file.py), then
// listing_summary's inputs and outputs.
var summaryKeys = []string{"task", "layer_sizes", "hidden_activation", "output_activation",
	"input_columns", "classes", "output_columns", "features", "targets", "rounds_run",
	"best_round", "stopped_early", "final", "epochs"}

// ListingSummary is registry.py listing_summary(model), keys in Python's order.
func ListingSummary(m *ml.Model) *wire.Object {
	s := m.Summary()
	o := &wire.Object{}
	for _, k := range summaryKeys {
		if v, ok := s[k]; ok {
			o.Set(k, jsonValue(v))
		}
	}
	o.Set("inputs", int64(m.NInputs()))
	o.Set("outputs", int64(m.NOutputs()))
	return o
}

// jsonValue turns maps into ordered objects with sorted keys (what Python
// dicts read from a sort_keys model file hold).
func jsonValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := &wire.Object{}
		for _, k := range keys {
			o.Set(k, jsonValue(t[k]))
		}
		return o
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonValue(x)
		}
		return out
	}
	return v
}
