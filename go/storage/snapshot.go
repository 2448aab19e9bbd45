package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// The latest snapshot, snapshot/snapshot.bin (snapshot_store.py), replaced
// atomically. Format version 2, integers little-endian:
//
//	magic "ZQSNAPSH" (8) | u32 version | u64 index | u64 term | u64 data_length
//	| u32 crc32(data) | u64 membership_length | u32 crc32(membership)
//	| u32 crc32(all preceding header bytes) | data | membership
//
// Version 1 files (no membership fields: the header is the first 40 bytes
// and its CRC) are still read; their membership is empty, the bootstrap one.

// SnapshotMagic starts every snapshot file.
const SnapshotMagic = "ZQSNAPSH"

// SnapshotVersion is the version written; versions 1 and 2 are read.
const SnapshotVersion = 2

// SnapshotFileName is the snapshot's name inside its directory.
const SnapshotFileName = "snapshot.bin"

const (
	snapFieldsV1 = 8 + 4 + 8 + 8 + 8 + 4 // magic, version, index, term, data length, data crc
	snapFields   = snapFieldsV1 + 8 + 4  // and membership length, membership crc
)

const snapshotAdvice = "It holds the state of every entry the log no longer has; restore it from a backup or " +
	Rejoin + "."

// EncodeSnapshot is snapshot.bin's bytes (version 2) for s.
func EncodeSnapshot(s Snapshot) []byte {
	out := make([]byte, snapFields+4, snapFields+4+len(s.Data)+len(s.Membership))
	copy(out, SnapshotMagic)
	le := binary.LittleEndian
	le.PutUint32(out[8:], SnapshotVersion)
	le.PutUint64(out[12:], s.Index)
	le.PutUint64(out[20:], s.Term)
	le.PutUint64(out[28:], uint64(len(s.Data)))
	le.PutUint32(out[36:], crc32.ChecksumIEEE(s.Data))
	le.PutUint64(out[40:], uint64(len(s.Membership)))
	le.PutUint32(out[48:], crc32.ChecksumIEEE(s.Membership))
	le.PutUint32(out[snapFields:], crc32.ChecksumIEEE(out[:snapFields]))
	out = append(out, s.Data...)
	return append(out, s.Membership...)
}

// DecodeSnapshot parses snapshot.bin's bytes; path only names the file in a
// *CorruptionError.
func DecodeSnapshot(path string, raw []byte) (Snapshot, error) {
	corrupt := func(problem string) (Snapshot, error) {
		return Snapshot{}, corruption(path, problem, snapshotAdvice)
	}
	if len(raw) < snapFieldsV1+4 {
		return corrupt(fmt.Sprintf("is %d bytes long, too short for a snapshot header", len(raw)))
	}
	le := binary.LittleEndian
	if string(raw[:8]) != SnapshotMagic {
		return corrupt(fmt.Sprintf("does not start with %s (found %s)",
			pyBytesRepr([]byte(SnapshotMagic)), pyBytesRepr(raw[:8])))
	}
	version := le.Uint32(raw[8:])
	if version != 1 && version != SnapshotVersion {
		return corrupt(fmt.Sprintf("has format version %d; this zmqnode reads versions 1 and %d "+
			"(was it written by a newer release?)", version, SnapshotVersion))
	}
	layout := snapFieldsV1
	if version != 1 {
		layout = snapFields
	}
	if len(raw) < layout+4 {
		return corrupt(fmt.Sprintf("is %d bytes long, too short for its %d-byte header", len(raw), layout+4))
	}
	if crc32.ChecksumIEEE(raw[:layout]) != le.Uint32(raw[layout:]) {
		return corrupt("has a header that fails its checksum")
	}
	index, term := le.Uint64(raw[12:]), le.Uint64(raw[20:])
	length, dataCRC := le.Uint64(raw[28:]), le.Uint32(raw[36:])
	var memberLength uint64
	var memberCRC uint32
	if version != 1 {
		memberLength, memberCRC = le.Uint64(raw[40:]), le.Uint32(raw[48:])
	}
	body := raw[layout+4:]
	// Python's sum cannot overflow; a wrapped u64 sum must not match by accident.
	total := length + memberLength
	if total < length || uint64(len(body)) != total {
		return corrupt(fmt.Sprintf("holds %d bytes after its header where it says %s",
			len(body), bigSum(length, memberLength)))
	}
	data, membership := body[:length], body[length:]
	if crc32.ChecksumIEEE(data) != dataCRC {
		return corrupt("has data that fails its checksum")
	}
	if version > 1 && crc32.ChecksumIEEE(membership) != memberCRC {
		return corrupt("has a membership that fails its checksum")
	}
	return Snapshot{
		Index:      index,
		Term:       term,
		Data:       append([]byte{}, data...),
		Membership: append([]byte{}, membership...),
	}, nil
}

// bigSum prints a+b without wrapping, as Python's ints do.
func bigSum(a, b uint64) string {
	sum := a + b
	if sum >= a {
		return fmt.Sprint(sum)
	}
	// a+b = 2^64 + sum; 2^64 = 18446744073709551616.
	return addDecimal("18446744073709551616", fmt.Sprint(sum))
}

func addDecimal(x, y string) string {
	out := []byte{}
	carry := 0
	for i, j := len(x)-1, len(y)-1; i >= 0 || j >= 0 || carry > 0; i, j = i-1, j-1 {
		d := carry
		if i >= 0 {
			d += int(x[i] - '0')
		}
		if j >= 0 {
			d += int(y[j] - '0')
		}
		out = append([]byte{byte('0' + d%10)}, out...)
		carry = d / 10
	}
	return string(out)
}

// SnapshotStore saves and loads the latest snapshot in Dir.
type SnapshotStore struct {
	Dir   string
	Path  string
	Stats *FsyncStats
}

// NewSnapshotStore is the snapshot store in dir (created on the first Save).
func NewSnapshotStore(dir string, stats *FsyncStats) *SnapshotStore {
	return &SnapshotStore{Dir: dir, Path: filepath.Join(dir, SnapshotFileName), Stats: orNew(stats)}
}

// Save replaces the stored snapshot with s, durably.
func (s *SnapshotStore) Save(snap Snapshot) error {
	if err := EnsureDir(s.Dir, s.Stats); err != nil {
		return err
	}
	return AtomicWrite(s.Path, EncodeSnapshot(snap), s.Stats, true)
}

// Load returns the stored snapshot, nil if there is none, a
// *CorruptionError if it is damaged. It first removes temporary files a
// crash left in Dir.
func (s *SnapshotStore) Load() (*Snapshot, error) {
	if _, err := RemoveStaleTemps(s.Dir); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	snap, err := DecodeSnapshot(s.Path, raw)
	if err != nil {
		return nil, err
	}
	return &snap, nil
}
