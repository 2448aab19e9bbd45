package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"zmqnode/ml"
	"zmqnode/replies"
	"zmqnode/wire"
)

// Bounds of the prediction queue (serving.py).
const (
	MaxPassRows    = 65_536
	MaxTurnRows    = 262_144
	MaxQueuedBytes = 256 << 20
)

type predictReq struct {
	rows  ml.Matrix
	proba bool
	req   *wire.Object
	reply replies.Replier
}

type batch struct {
	model   *ml.Model
	waiting []predictReq
}

// Batcher is the PREDICTs waiting for their model's next forward pass: one
// pass per model per loop turn (serving.py PredictionBatcher).
type Batcher struct {
	ID          string
	OnBatch     func(requests int)
	batches     map[string]*batch
	order       []string
	QueuedBytes int64
}

// NewBatcher is an empty queue.
func NewBatcher(id string) *Batcher {
	return &Batcher{ID: id, batches: map[string]*batch{}, OnBatch: func(int) {}}
}

// Add queues a request's rows (BUSY past MaxQueuedBytes).
func (b *Batcher) Add(modelID string, m *ml.Model, rows ml.Matrix, proba bool, req *wire.Object, reply replies.Replier) error {
	size := int64(len(rows.Data)) * 4
	if b.QueuedBytes > 0 && b.QueuedBytes+size > MaxQueuedBytes {
		return perr(wire.Busy, req, "node %s has %d bytes of predictions queued; retry later", b.ID, b.QueuedBytes)
	}
	b.QueuedBytes += size
	bt, ok := b.batches[modelID]
	if !ok {
		bt = &batch{model: m}
		b.batches[modelID] = bt
		b.order = append(b.order, modelID)
	}
	bt.waiting = append(bt.waiting, predictReq{rows, proba, req, reply})
	return nil
}

// Flush runs the waiting batches: at most MaxPassRows rows a pass and
// MaxTurnRows a call; the rest waits for the next turn.
func (b *Batcher) Flush() {
	if len(b.batches) == 0 {
		return
	}
	budget := MaxTurnRows
	batches, order := b.batches, b.order
	b.batches, b.order = map[string]*batch{}, nil
	for _, id := range order {
		bt := batches[id]
		for len(bt.waiting) > 0 && budget > 0 {
			take, rowsIn := 0, 0
			for take < len(bt.waiting) && (take == 0 || rowsIn+bt.waiting[take].rows.Rows <= MaxPassRows) {
				rowsIn += bt.waiting[take].rows.Rows
				take++
			}
			b.run(id, bt.model, bt.waiting[:take])
			bt.waiting = bt.waiting[take:]
			budget -= rowsIn
		}
		if len(bt.waiting) > 0 {
			b.batches[id] = bt
			b.order = append(b.order, id)
		}
	}
	b.QueuedBytes = 0
	for _, bt := range b.batches {
		for _, w := range bt.waiting {
			b.QueuedBytes += int64(len(w.rows.Data)) * 4
		}
	}
}

func (b *Batcher) run(id string, m *ml.Model, waiting []predictReq) {
	stacked := waiting[0].rows
	wantProba := false
	for _, w := range waiting {
		wantProba = wantProba || w.proba
	}
	if len(waiting) > 1 {
		cols := waiting[0].rows.Cols
		total := 0
		for _, w := range waiting {
			total += w.rows.Rows
		}
		data := make([]float32, 0, total*cols)
		for _, w := range waiting {
			data = append(data, w.rows.Data...)
		}
		stacked = ml.Matrix{Rows: total, Cols: cols, Data: data}
	}
	out, err := compute(m, stacked, wantProba)
	if err != nil {
		// One bad request must not fail the others: answer them one by one.
		for _, w := range waiting {
			b.answerOne(id, m, w)
		}
		return
	}
	b.OnBatch(len(waiting))
	start := 0
	for _, w := range waiting {
		end := start + w.rows.Rows
		b.send(id, m, out, w, start, end)
		start = end
	}
}

func (b *Batcher) answerOne(id string, m *ml.Model, w predictReq) {
	out, err := compute(m, w.rows, w.proba)
	if errors.Is(err, ml.ErrBadInput) {
		// Python: f"model {model_id}: {exc}" where exc is the BadInput's text.
		w.reply.Error(w.req, wire.BadInput, fmt.Sprintf("model %s: %s", id, mlMessage(err)))
		return
	}
	if err != nil {
		w.reply.Error(w.req, wire.Internal, fmt.Sprintf("node %s: prediction failed: %v", b.ID, err))
		return
	}
	b.send(id, m, out, w, 0, w.rows.Rows)
}

type computed struct {
	index []int64    // classification
	proba *ml.Matrix // classification, if asked
	value ml.Matrix  // regression
	cls   bool
}

func compute(m *ml.Model, x ml.Matrix, proba bool) (computed, error) {
	if len(m.Classes) == 0 {
		v, err := m.Values(x)
		return computed{value: v}, err
	}
	idx, p, err := m.Classify(x, proba)
	return computed{index: idx, proba: p, cls: true}, err
}

func (b *Batcher) send(id string, m *ml.Model, out computed, w predictReq, start, end int) {
	rows := end - start
	fields := []wire.Field{{Key: "model_id", Value: id}, {Key: "node", Value: b.ID}}
	var blobs [][]byte
	if out.cls {
		fields = append(fields, wire.Field{Key: "classes", Value: m.Classes})
		buf := make([]byte, 8*rows)
		for i, v := range out.index[start:end] {
			binary.LittleEndian.PutUint64(buf[8*i:], uint64(v))
		}
		fields = append(fields, wire.Field{Key: "outputs", Value: descriptor("int64", []int{rows}, 0)})
		blobs = append(blobs, buf)
		if w.proba && out.proba != nil {
			k := out.proba.Cols
			fields = append(fields, wire.Field{Key: "probabilities", Value: descriptor("float32", []int{rows, k}, 1)})
			blobs = append(blobs, f32bytes(out.proba.Data[start*k:end*k]))
		}
	} else {
		k := out.value.Cols
		shape := []int{rows, k}
		if k == 1 {
			shape = []int{rows}
		}
		fields = append(fields, wire.Field{Key: "outputs", Value: descriptor("float32", shape, 0)})
		blobs = append(blobs, f32bytes(out.value.Data[start*k:end*k]))
	}
	w.reply.OK(w.req, blobs, fields...)
}

func descriptor(dtype string, shape []int, frame int) *wire.Object {
	s := make([]any, len(shape))
	for i, n := range shape {
		s[i] = int64(n)
	}
	return wire.NewObject(wire.Field{Key: "dtype", Value: dtype}, wire.Field{Key: "shape", Value: s},
		wire.Field{Key: "frame", Value: int64(frame)})
}

func f32bytes(v []float32) []byte {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return buf
}
