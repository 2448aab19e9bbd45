// Package pyfmt writes text exactly as the Python node writes it: JSON as
// Python's json.dumps or orjson spell it, repr() of str and float, and the
// Latin-1 reading of HTTP bytes.
//
// It exists because files and messages must be byte-identical whichever
// implementation wrote them (a model file, the hard state, a CONFIG entry's
// membership, an error text a test compares): every Go package that must
// match Python's bytes takes its spelling from here instead of keeping its
// own copy. Where Python itself has two spellings (json.dumps vs orjson
// floats), both are here under distinct names.
//
// It imports only the standard library and does no I/O, so any package,
// the Raft core included, may use it.
package pyfmt
