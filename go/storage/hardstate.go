package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"strconv"
	"zmqnode/pyfmt"
)

// HardStateVersion is the version of raft_state.json this code reads and
// writes.
//
// Format (hard_state.py), one JSON object, replaced atomically on every
// change:
//
//	{"version": 1, "current_term": 7, "voted_for": "127.0.0.1:9001", "checksum": 123456789}
//
// checksum is the CRC-32 (IEEE, as zlib.crc32) of the canonical JSON of the
// other three fields: keys sorted, no spaces, ASCII only. voted_for is ""
// when the node has not voted in current_term.
const HardStateVersion = 1

const hardStateAdvice = "It holds this node's term and vote; restore it from a backup or " + Rejoin + "."

func hardStateCanonical(term uint64, vote string) []byte {
	return []byte(`{"current_term":` + strconv.FormatUint(term, 10) + `,"version":1,"voted_for":` +
		pyfmt.QuoteASCII(vote) + "}")
}

// EncodeHardState is the file's bytes for hs, as Python's
// json.dumps(doc, indent=2) + "\n" writes them.
func EncodeHardState(hs HardState) []byte {
	sum := crc32.ChecksumIEEE(hardStateCanonical(hs.Term, hs.Vote))
	return []byte(fmt.Sprintf("{\n  \"version\": %d,\n  \"current_term\": %d,\n  \"voted_for\": %s,\n  \"checksum\": %d\n}\n",
		HardStateVersion, hs.Term, pyfmt.QuoteASCII(hs.Vote), sum))
}

// HardStateFile loads and saves one HardState; Save skips the write when
// nothing changed.
type HardStateFile struct {
	Path  string
	Stats *FsyncStats
	// Found says whether Load found the file (NodeStorage checks a missing one).
	Found bool

	saved *HardState // what the file holds, once known
}

// NewHardStateFile is the hard state file at path.
func NewHardStateFile(path string, stats *FsyncStats) *HardStateFile {
	return &HardStateFile{Path: path, Stats: orNew(stats)}
}

// Load returns the stored state; HardState{} if the file does not exist.
//
// It returns a *CorruptionError if the file is empty, not JSON, has missing
// or mistyped fields, an unknown version, or a checksum mismatch. A missing
// file is only legitimate on a node that never stored a log entry;
// NodeStorage.Open checks that (Found says which case).
func (f *HardStateFile) Load() (HardState, error) {
	raw, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		f.Found = false
		f.saved = &HardState{}
		return HardState{}, nil
	}
	if err != nil {
		return HardState{}, err
	}
	hs, err := decodeHardState(f.Path, raw)
	if err != nil {
		return HardState{}, err
	}
	f.Found = true
	f.saved = &hs
	return hs, nil
}

// Save makes hs durable; false when the file already held it (no I/O).
// A vote that is not valid UTF-8 (lone surrogates allowed, as in a Python
// str) cannot be written as Python would (ErrInvalidArgument).
func (f *HardStateFile) Save(hs HardState) (bool, error) {
	if f.saved != nil && *f.saved == hs {
		return false, nil
	}
	if !validWTF8(hs.Vote) {
		return false, fmt.Errorf("%w: not a valid hard state: vote %q is not UTF-8", ErrInvalidArgument, hs.Vote)
	}
	if err := AtomicWrite(f.Path, EncodeHardState(hs), f.Stats, true); err != nil {
		return false, err
	}
	f.saved = &hs
	return true, nil
}

// DecodeHardState parses raft_state.json's bytes; path only names the file
// in a *CorruptionError.
func DecodeHardState(path string, raw []byte) (HardState, error) {
	return decodeHardState(path, raw)
}

func decodeHardState(path string, raw []byte) (HardState, error) {
	corrupt := func(problem string) (HardState, error) {
		return HardState{}, corruption(path, problem, hardStateAdvice)
	}
	if len(bytes.Trim(raw, " \t\n\r\v\f")) == 0 {
		return corrupt("is empty (a crash should never leave it so: it is replaced atomically)")
	}
	doc, err := pyJSONLoads(raw)
	if err != nil {
		return corrupt(fmt.Sprintf("is not valid JSON (%v)", err))
	}
	obj, ok := doc.(*pyObject)
	if !ok {
		return corrupt(fmt.Sprintf("holds a JSON %s, not an object", pyTypeName(doc)))
	}
	version := obj.get("version")
	if n, ok := version.(json.Number); !ok || pyFloat(n) != HardStateVersion {
		return corrupt(fmt.Sprintf("has version %s; this zmqnode reads version %d "+
			"(was it written by a newer release?)", pyRepr(version), HardStateVersion))
	}
	termValue, vote, checksum := obj.get("current_term"), obj.get("voted_for"), obj.get("checksum")
	term, ok := nonNegativeInt(termValue)
	if !ok {
		return corrupt(fmt.Sprintf("has current_term %s; expected a non-negative integer", pyRepr(termValue)))
	}
	voteString, ok := vote.(string)
	if !ok {
		return corrupt(fmt.Sprintf("has voted_for %s; expected a string", pyRepr(vote)))
	}
	sum, ok := checksum.(json.Number)
	if !ok || !isIntLiteral(sum) {
		return corrupt(fmt.Sprintf("has checksum %s; expected an integer", pyRepr(checksum)))
	}
	expected := crc32.ChecksumIEEE(hardStateCanonical(term, voteString))
	if pyIntLiteral(sum) != strconv.FormatUint(uint64(expected), 10) {
		return corrupt(fmt.Sprintf("fails its checksum (stored %s, computed %d): "+
			"the file was edited or damaged", pyIntLiteral(sum), expected))
	}
	return HardState{Term: term, Vote: voteString}, nil
}

// nonNegativeInt accepts what Python's isinstance(v, int) and v >= 0 accept,
// as far as it fits in a uint64 (see SPEC_NOTES.md).
func nonNegativeInt(v interface{}) (uint64, bool) {
	n, ok := v.(json.Number)
	if !ok || !isIntLiteral(n) {
		return 0, false
	}
	u, err := strconv.ParseUint(pyIntLiteral(n), 10, 64)
	return u, err == nil
}
