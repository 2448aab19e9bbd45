package zmq

/*
#include <zmq.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Z85Encode encodes data (a multiple of 4 bytes, e.g. a 32-byte CURVE key)
// as Z85 text (ZeroMQ RFC 32).
func Z85Encode(data []byte) (string, error) {
	if len(data)%4 != 0 {
		return "", fmt.Errorf("z85: %d bytes is not a multiple of 4", len(data))
	}
	if len(data) == 0 {
		return "", nil
	}
	src := C.CBytes(data)
	defer C.free(src)
	dst := (*C.char)(C.malloc(C.size_t(len(data)*5/4 + 1)))
	defer C.free(unsafe.Pointer(dst))
	if C.zmq_z85_encode(dst, (*C.uint8_t)(src), C.size_t(len(data))) == nil {
		return "", fmt.Errorf("z85: cannot encode")
	}
	return C.GoString(dst), nil
}

// Z85Decode decodes Z85 text (a multiple of 5 characters).
func Z85Decode(text string) ([]byte, error) {
	if len(text)%5 != 0 {
		return nil, fmt.Errorf("z85: %d characters is not a multiple of 5", len(text))
	}
	if len(text) == 0 {
		return []byte{}, nil
	}
	src := C.CString(text)
	defer C.free(unsafe.Pointer(src))
	n := len(text) * 4 / 5
	dst := C.malloc(C.size_t(n))
	defer C.free(dst)
	if C.zmq_z85_decode((*C.uint8_t)(dst), src) == nil {
		return nil, fmt.Errorf("z85: %q is not valid Z85", text)
	}
	return C.GoBytes(dst, C.int(n)), nil
}

// CurveKeypair makes a new CURVE keypair as two 40-character Z85 strings.
func CurveKeypair() (public, secret string, err error) {
	buf := (*C.char)(C.malloc(82))
	defer C.free(unsafe.Pointer(buf))
	pub := buf
	sec := (*C.char)(unsafe.Add(unsafe.Pointer(buf), 41))
	if rc, e := C.zmq_curve_keypair(pub, sec); rc != 0 {
		return "", "", lastError("curve_keypair", e)
	}
	return C.GoString(pub), C.GoString(sec), nil
}

// CurvePublic derives the Z85 public key from a Z85 secret key.
func CurvePublic(secret string) (string, error) {
	if len(secret) != 40 {
		return "", fmt.Errorf("curve: a Z85 secret key has 40 characters, got %d", len(secret))
	}
	sec := C.CString(secret)
	defer C.free(unsafe.Pointer(sec))
	pub := (*C.char)(C.malloc(41))
	defer C.free(unsafe.Pointer(pub))
	if rc, e := C.zmq_curve_public(pub, sec); rc != 0 {
		return "", lastError("curve_public", e)
	}
	return C.GoString(pub), nil
}
