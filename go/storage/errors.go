package storage

import (
	"errors"
	"fmt"
	"zmqnode/pyfmt"
)

// Rejoin is what an operator can always do when one node's disk is beyond
// repair (errors.py REJOIN). Raft makes it safe only while the other nodes
// form a healthy majority: an empty node has forgotten its votes, and the
// leader rebuilds its log and models.
const Rejoin = "remove the whole storage dir to rejoin as an empty node — the other nodes " +
	"will send it everything (do this only while the other nodes form a working majority)"

// CorruptionError is Python's StorageCorruption: bytes on disk fail a check;
// the node must not start from them. Error() names the file, says what is
// wrong and what to do, exactly as str(exc) does in Python.
type CorruptionError struct {
	Path    string
	Problem string
	Advice  string
}

func (e *CorruptionError) Error() string {
	return e.Path + " " + e.Problem + ". " + e.Advice
}

func corruption(path, problem, advice string) *CorruptionError {
	return &CorruptionError{Path: path, Problem: problem, Advice: advice}
}

// BrokenError is Python's StorageBroken: an earlier write or fsync failed, so
// what is on disk is unknown. The object refuses further use: after a failed
// fsync the kernel may have dropped the dirty pages, and retrying would
// report success for data that is gone. Restart the node; it recovers from
// what the disk really holds.
type BrokenError struct {
	Message string
}

func (e *BrokenError) Error() string { return e.Message }

// InvalidModelIDError is Python's InvalidModelId (a ValueError): a model id
// that is not 1-64 of A-Z a-z 0-9 _ -.
type InvalidModelIDError struct {
	ID string
}

func (e *InvalidModelIDError) Error() string {
	return fmt.Sprintf("invalid model id %s: use 1 to 64 letters, digits, '_' or '-'", pyfmt.StrRepr(e.ID))
}

// ErrInvalidArgument is what Python raises as ValueError: a caller's
// mistake (entries that leave a gap, compaction beyond the log, a hard
// state that cannot be encoded). Nothing was written. Errors wrap it (%w).
var ErrInvalidArgument = errors.New("invalid argument")

// ErrNotOpen and ErrAlreadyOpen are Python's RuntimeErrors for using a file
// or NodeStorage before Open, or opening it twice.
var (
	ErrNotOpen     = errors.New("not open")
	ErrAlreadyOpen = errors.New("already open")
)
