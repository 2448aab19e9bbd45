package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unsafe"
)

// hostLittleEndian: the wire's byte order is the host's, so a float32 blob
// can be read in place (numpy's frombuffer) instead of decoded into a copy.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// DefaultMaxArrayBytes bounds one array frame when the caller has no better
// limit; nodes pass their configured one.
const DefaultMaxArrayBytes = 256 << 20

// MaxArrayNdim is the most dimensions an array may have (§3).
const MaxArrayNdim = 8

// Dtype is an array's element type, by its numpy name; always little-endian.
type Dtype string

// The dtypes allowed on the wire (§3).
const (
	Float32 Dtype = "float32"
	Float64 Dtype = "float64"
	Int32   Dtype = "int32"
	Int64   Dtype = "int64"
)

// Dtypes lists the allowed dtypes in PROTOCOL.md's order.
var Dtypes = []Dtype{Float32, Float64, Int32, Int64}

// ItemSize is the byte size of one element, 0 for a dtype not allowed.
func (d Dtype) ItemSize() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	}
	return 0
}

// Array is a C-order array as it travels: dtype, shape and the raw
// little-endian bytes (len(Data) == product(Shape) × ItemSize).
type Array struct {
	Dtype Dtype
	Shape []int
	Data  []byte
}

// Len is the number of elements (product of the shape).
func (a Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Descriptor is the header object describing a for blob number frame:
// {"dtype": ..., "shape": [...], "frame": frame}.
func (a Array) Descriptor(frame int) *Object {
	shape := make([]int, len(a.Shape))
	copy(shape, a.Shape)
	return NewObject(Field{"dtype", string(a.Dtype)}, Field{"shape", shape}, Field{"frame", frame})
}

// ArrayToFrame is the descriptor and blob of a (Python's array_to_frame).
func ArrayToFrame(a Array, frame int) (*Object, []byte) {
	return a.Descriptor(frame), a.Data
}

// FromFloat32 builds a float32 array; len(values) must match the shape.
func FromFloat32(shape []int, values []float32) Array {
	data := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return Array{Float32, shape, data}
}

// FromFloat64 builds a float64 array.
func FromFloat64(shape []int, values []float64) Array {
	data := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(v))
	}
	return Array{Float64, shape, data}
}

// FromInt32 builds an int32 array.
func FromInt32(shape []int, values []int32) Array {
	data := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(data[4*i:], uint32(v))
	}
	return Array{Int32, shape, data}
}

// FromInt64 builds an int64 array.
func FromInt64(shape []int, values []int64) Array {
	data := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	return Array{Int64, shape, data}
}

func (a Array) want(d Dtype) error {
	if a.Dtype != d {
		return fmt.Errorf("wire: array is %s, not %s", a.Dtype, d)
	}
	return nil
}

// Float32s returns the elements of a float32 array.
func (a Array) Float32s() ([]float32, error) {
	if err := a.want(Float32); err != nil {
		return nil, err
	}
	out := make([]float32, len(a.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
	}
	return out, nil
}

// Float32View is Float32s without the copy where it can (Python's
// np.frombuffer): on a little-endian host with 4-byte-aligned data the
// result shares a.Data's memory, so the caller must not write to it, and it
// keeps the whole blob alive; otherwise it is Float32s. A large TRAIN's
// inputs are read this way so the leader holds them once.
func (a Array) Float32View() ([]float32, error) {
	if err := a.want(Float32); err != nil {
		return nil, err
	}
	n := len(a.Data) / 4
	if n == 0 || !hostLittleEndian || uintptr(unsafe.Pointer(&a.Data[0]))%4 != 0 {
		return a.Float32s()
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&a.Data[0])), n), nil
}

// ViewFloat32 is FromFloat32 without the copy on a little-endian host: Data
// shares values' memory (the caller must not change values while the array
// is in use). Chunks are sent this way, from the plan's own rows.
func ViewFloat32(shape []int, values []float32) Array {
	if len(values) == 0 || !hostLittleEndian {
		return FromFloat32(shape, values)
	}
	return Array{Float32, shape, unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), 4*len(values))}
}

// Float64s returns the elements of a float64 array.
func (a Array) Float64s() ([]float64, error) {
	if err := a.want(Float64); err != nil {
		return nil, err
	}
	out := make([]float64, len(a.Data)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(a.Data[8*i:]))
	}
	return out, nil
}

// Int32s returns the elements of an int32 array.
func (a Array) Int32s() ([]int32, error) {
	if err := a.want(Int32); err != nil {
		return nil, err
	}
	out := make([]int32, len(a.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(a.Data[4*i:]))
	}
	return out, nil
}

// Int64s returns the elements of an int64 array.
func (a Array) Int64s() ([]int64, error) {
	if err := a.want(Int64); err != nil {
		return nil, err
	}
	out := make([]int64, len(a.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(a.Data[8*i:]))
	}
	return out, nil
}

// ConvertToFloat32 is numpy's astype(float32) of a float64, int32 or
// int64 array, into a new slice. ok is false for any other dtype, float32
// included: the caller chooses Float32s or Float32View for that one.
func (a Array) ConvertToFloat32() (values []float32, ok bool, err error) {
	switch a.Dtype {
	case Float64:
		v, err := a.Float64s()
		return convert(v), true, err
	case Int32:
		v, err := a.Int32s()
		return convert(v), true, err
	case Int64:
		v, err := a.Int64s()
		return convert(v), true, err
	}
	return nil, false, nil
}

func convert[T float64 | int32 | int64](v []T) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// ArrayFromFrame rebuilds an array from its descriptor and blob, checking
// everything, in Python's order: the descriptor is an object (BAD_REQUEST),
// dtype is allowed (BAD_INPUT), shape is a list of at most 8 non-negative
// integers (BAD_SHAPE), the declared size is within maxBytes (TOO_LARGE,
// before the blob is looked at), the blob has exactly that size (BAD_SHAPE).
// name is used in messages. Data aliases blob.
func ArrayFromFrame(desc any, blob []byte, maxBytes int64, name string) (Array, error) {
	d, ok := desc.(*Object)
	if !ok {
		return Array{}, protoErr(BadRequest, nil,
			"array '%s' descriptor must be an object with dtype and shape, got %s", name, kindOf(desc))
	}
	dv, _ := d.Get("dtype")
	dtypeName, _ := dv.(string)
	dtype := Dtype(dtypeName)
	if dtype.ItemSize() == 0 {
		return Array{}, protoErr(BadInput, nil, "array '%s' has dtype %s; allowed: float32, float64, int32, int64",
			name, pyRepr(dv))
	}
	sv, _ := d.Get("shape")
	list, isList := sv.([]any)
	shapeErr := func() error {
		return protoErr(BadShape, nil, "array '%s' shape must be a list of at most %d non-negative integers, got %s",
			name, MaxArrayNdim, pyRepr(sv))
	}
	if !isList || len(list) > MaxArrayNdim {
		return Array{}, shapeErr()
	}
	dims := make([]uint64, len(list))
	for i, x := range list {
		n, ok := x.(Number)
		if !ok {
			return Array{}, shapeErr()
		}
		u, ok := n.Uint64()
		if !ok {
			return Array{}, shapeErr()
		}
		dims[i] = u
	}
	declared, overflow := product(dims, uint64(dtype.ItemSize()))
	if overflow || declared > uint64(maxBytes) {
		size := fmt.Sprint(declared)
		if overflow {
			size = "more than 2^64"
		}
		return Array{}, protoErr(TooLarge, nil, "array '%s' declares shape %s %s = %s bytes, limit is %d",
			name, pyRepr(sv), dtype, size, maxBytes)
	}
	if uint64(len(blob)) != declared {
		return Array{}, protoErr(BadShape, nil, "array '%s' declares shape %s %s = %d bytes but the frame has %d bytes",
			name, pyRepr(sv), dtype, declared, len(blob))
	}
	shape := make([]int, len(dims))
	for i, u := range dims {
		if u > math.MaxInt64 { // only possible beside a 0 dimension; Go's int cannot hold it
			return Array{}, shapeErr()
		}
		shape[i] = int(u)
	}
	return Array{dtype, shape, blob}, nil
}

// product is Π dims × itemSize; overflow is reported (Python's ints do not
// overflow, so a huge declared size must read as TOO_LARGE, not wrap).
func product(dims []uint64, itemSize uint64) (uint64, bool) {
	for _, d := range dims {
		if d == 0 {
			return 0, false
		}
	}
	p := itemSize
	for _, d := range dims {
		hi, lo := bits.Mul64(p, d)
		if hi != 0 {
			return 0, true
		}
		p = lo
	}
	return p, false
}

// ReadArray is the array described by header[key], whose frame field
// (default 0) indexes blobs: ArrayFromFrame's errors plus BAD_REQUEST when
// the descriptor is missing, null or not an object, or frame is not a
// valid blob index.
func ReadArray(header *Object, blobs [][]byte, key string, maxBytes int64) (Array, error) {
	desc, _ := header.Get(key)
	if desc == nil {
		return Array{}, protoErr(BadRequest, nil, "missing array descriptor '%s'", key)
	}
	d, ok := desc.(*Object)
	if !ok {
		return Array{}, protoErr(BadRequest, nil, "array '%s' descriptor must be an object, got %s", key, kindOf(desc))
	}
	var frame any = Number("0")
	if f, present := d.Get("frame"); present {
		frame = f
	}
	idx, ok := intValue(frame)
	if !ok || idx < 0 || idx >= int64(len(blobs)) {
		return Array{}, protoErr(BadRequest, nil,
			"array '%s' refers to frame %s but the message has %d binary frame(s)", key, pyRepr(frame), len(blobs))
	}
	return ArrayFromFrame(d, blobs[idx], maxBytes, key)
}

// pyRepr writes a decoded JSON value roughly as Python's repr would, for
// messages that quote the offending value ([4, 2], 'float16', None).
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + x + "'"
	case Number:
		return string(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *Object:
		parts := make([]string, 0, x.Len())
		for _, f := range x.fields {
			parts = append(parts, "'"+f.Key+"': "+pyRepr(f.Value))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}
