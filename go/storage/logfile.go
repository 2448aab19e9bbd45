package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log"
	"os"
)

// The Raft log file, raft.log (log_file.py). Format version 1, all integers
// little-endian:
//
//	header   magic "ZQRAFTLG" (8 bytes) | u32 version | u64 first_index | u32 crc32
//	record   u32 payload_length | u32 crc32(payload) | payload
//	payload  u64 index | u64 term | u8 kind (1 noop, 2 command, 3 config) | data (the rest)
//
// The header's CRC-32 (IEEE, zlib's) covers its first 20 bytes. first_index
// is the index the first record holds, or would hold: after compaction
// through n the file starts at n+1, even with no records. The header is only
// ever written with the records that follow it, by an atomic whole-file
// rewrite (creation, Compact, Reset); appends only add records.
//
// Recovery (Open) reads the records in order. The first record that is cut
// off or fails its checksum ends the scan; then, if a checksum-valid record
// can still be found anywhere after it, the damage is in the middle of the
// log and the file is refused (*CorruptionError); otherwise it is the torn
// tail of an unacknowledged write, truncated away with a warning. A record
// whose checksum holds but whose index or term breaks the log's rules (not
// contiguous, terms going down, unknown kind) is refused too.

// LogMagic starts every log file.
const LogMagic = "ZQRAFTLG"

// LogVersion is the log format version this code reads and writes.
const LogVersion = 1

const (
	logHeaderFields = 8 + 4 + 8           // magic, version, first_index
	logHeaderSize   = logHeaderFields + 4 // and its CRC
	recordHead      = 4 + 4               // payload length, crc32 of payload
	entryHead       = 8 + 8 + 1           // index, term, kind
	minRecord       = recordHead + entryHead
	maxData         = 1<<32 - 1 - entryHead // payload_length is a u32
)

const logAdvice = "It holds this node's Raft log; restore the storage dir from a backup or " + Rejoin + "."

// kindCode is the kind's code on disk; kindOf the reverse.
func kindCode(k EntryKind) (byte, bool) {
	switch k {
	case EntryNoop:
		return 1, true
	case EntryCommand:
		return 2, true
	case EntryConfig:
		return 3, true
	}
	return 0, false
}

func kindOf(code byte) (EntryKind, bool) {
	switch code {
	case 1:
		return EntryNoop, true
	case 2:
		return EntryCommand, true
	case 3:
		return EntryConfig, true
	}
	return 0, false
}

// EncodeLogHeader is the 24-byte header of a log starting at firstIndex.
func EncodeLogHeader(firstIndex uint64) []byte {
	h := make([]byte, logHeaderSize)
	copy(h, LogMagic)
	binary.LittleEndian.PutUint32(h[8:], LogVersion)
	binary.LittleEndian.PutUint64(h[12:], firstIndex)
	binary.LittleEndian.PutUint32(h[20:], crc32.ChecksumIEEE(h[:logHeaderFields]))
	return h
}

// EncodeRecord is one record: length, checksum, then the entry in binary.
// An entry of unknown kind or with more data than a record holds is refused
// (ErrInvalidArgument).
func EncodeRecord(e Entry) ([]byte, error) {
	if err := checkEncodable(e); err != nil {
		return nil, err
	}
	return appendRecord(nil, e), nil
}

func checkEncodable(e Entry) error {
	if _, ok := kindCode(e.Kind); !ok {
		return fmt.Errorf("%w: entry %d has unknown kind %d", ErrInvalidArgument, e.Index, e.Kind)
	}
	if uint64(len(e.Data)) > maxData {
		return fmt.Errorf("%w: entry %d has %d bytes of data; a record holds at most %d",
			ErrInvalidArgument, e.Index, len(e.Data), uint64(maxData))
	}
	return nil
}

// appendRecord appends e's record to buf; e passed checkEncodable.
func appendRecord(buf []byte, e Entry) []byte {
	code, _ := kindCode(e.Kind)
	start := len(buf)
	buf = append(buf, make([]byte, minRecord)...)
	rec := buf[start:]
	binary.LittleEndian.PutUint32(rec[0:], uint32(entryHead+len(e.Data)))
	binary.LittleEndian.PutUint64(rec[8:], e.Index)
	binary.LittleEndian.PutUint64(rec[16:], e.Term)
	rec[24] = code
	buf = append(buf, e.Data...)
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.ChecksumIEEE(buf[start+recordHead:]))
	return buf
}

// checkRecord returns the end offset of the checksum-valid record at pos,
// or why it is not one.
func checkRecord(buf []byte, pos int) (int, string) {
	end := len(buf)
	if end-pos < recordHead {
		return 0, fmt.Sprintf("the record header is cut off (%d of %d bytes)", end-pos, recordHead)
	}
	length := uint64(binary.LittleEndian.Uint32(buf[pos:]))
	sum := binary.LittleEndian.Uint32(buf[pos+4:])
	if length < entryHead {
		return 0, fmt.Sprintf("its length field says %d bytes, less than any entry", length)
	}
	body := pos + recordHead
	if uint64(body)+length > uint64(end) {
		return 0, fmt.Sprintf("it is cut off (%d of %d payload bytes present)", end-body, length)
	}
	stop := body + int(length)
	if crc32.ChecksumIEEE(buf[body:stop]) != sum {
		return 0, "its checksum does not match"
	}
	return stop, ""
}

// findValidRecord returns the offset of some checksum-valid record starting
// after `after` whose index field lies where a record after the damage could
// hold it (minIndex up to one per minimal record size), or -1. The lowest
// such offset, as log_file.py's _find_valid_record.
func findValidRecord(buf []byte, after int, minIndex uint64) int {
	end := len(buf)
	maxIndex := minIndex + uint64((end-after)/minRecord) + 1
	for pos := after + 1; pos+recordHead+entryHead <= end; pos++ {
		index := binary.LittleEndian.Uint64(buf[pos+recordHead:])
		if index < minIndex || index > maxIndex {
			continue
		}
		if _, reason := checkRecord(buf, pos); reason == "" {
			return pos
		}
	}
	return -1
}

// LogContents is what LogFile.Open found: the entries, and what it had to
// repair.
type LogContents struct {
	Entries        []Entry
	Warnings       []string
	TruncatedBytes int
}

// LogFile is one append-only log file. It keeps only each record's offset
// and term in memory (the entries live in the Raft core). Append writes
// without fsync; call Sync once per batch (group commit). Not safe for
// concurrent use: one event loop owns it.
//
// After an I/O error from a write or fsync the object refuses further use
// (*BrokenError): what reached the disk is then unknown.
type LogFile struct {
	Path  string
	Stats *FsyncStats
	// Warn is told each warning Open logs (Python logs them on the
	// "zmqnode.storage" logger at WARNING); log.Printf when nil.
	Warn func(message string)

	f          *os.File
	firstIndex uint64
	offsets    []int64 // byte offset of the record for firstIndex + k
	terms      []uint64
	size       int64
	dirty      bool
	broken     string
}

// NewLogFile is the log file at path (not opened yet).
func NewLogFile(path string, stats *FsyncStats) *LogFile {
	return &LogFile{Path: path, Stats: orNew(stats), firstIndex: 1}
}

// FirstIndex is the index the first record holds, or would hold.
func (l *LogFile) FirstIndex() uint64 { return l.firstIndex }

// LastIndex is the index of the last record (FirstIndex-1 when empty).
func (l *LogFile) LastIndex() uint64 { return l.firstIndex + uint64(len(l.offsets)) - 1 }

// Size is the file's length in bytes, header included.
func (l *LogFile) Size() int64 { return l.size }

// TermAt is the term of the stored entry at index; false if not in the file.
func (l *LogFile) TermAt(index uint64) (uint64, bool) {
	if index < l.firstIndex || index-l.firstIndex >= uint64(len(l.terms)) {
		return 0, false
	}
	return l.terms[index-l.firstIndex], true
}

func (l *LogFile) corrupt(problem string) *CorruptionError {
	return corruption(l.Path, problem, logAdvice)
}

func warn(hook func(string), message string) {
	if hook != nil {
		hook(message)
		return
	}
	log.Printf("WARNING zmqnode.storage: %s", message)
}

// Open opens the file (creating an empty log starting at index 1) and
// recovers the entries, repairing a torn tail. It returns a
// *CorruptionError for damage it cannot repair.
func (l *LogFile) Open() (LogContents, error) {
	if l.f != nil {
		return LogContents{}, fmt.Errorf("%s: %w", l.Path, ErrAlreadyOpen)
	}
	if _, err := os.Stat(l.Path); errors.Is(err, fs.ErrNotExist) {
		if err := AtomicWrite(l.Path, EncodeLogHeader(1), l.Stats, true); err != nil {
			return LogContents{}, err
		}
	}
	f, err := os.OpenFile(l.Path, os.O_RDWR, 0)
	if err != nil {
		return LogContents{}, err
	}
	contents, err := l.recover(f)
	if err != nil {
		f.Close()
		return LogContents{}, err
	}
	l.f = f
	return contents, nil
}

func (l *LogFile) recover(f *os.File) (LogContents, error) {
	buf, err := io.ReadAll(f)
	if err != nil {
		return LogContents{}, err
	}
	firstIndex, err := l.readHeader(buf)
	if err != nil {
		return LogContents{}, err
	}
	var offsets []int64
	var terms []uint64
	var entries []Entry
	pos, expected, lastTerm := logHeaderSize, firstIndex, uint64(0)
	end := len(buf)
	for pos < end {
		stop, reason := checkRecord(buf, pos)
		if reason != "" {
			return l.repairTail(f, buf, pos, expected, reason, firstIndex, offsets, terms, entries)
		}
		body := pos + recordHead
		index := binary.LittleEndian.Uint64(buf[body:])
		term := binary.LittleEndian.Uint64(buf[body+8:])
		code := buf[body+16]
		kind, known := kindOf(code)
		if index != expected || term < lastTerm || !known {
			return LogContents{}, l.invalidRecord(pos, index, term, code, expected, lastTerm)
		}
		data := make([]byte, stop-body-entryHead)
		copy(data, buf[body+entryHead:stop])
		entries = append(entries, Entry{Index: index, Term: term, Kind: kind, Data: data})
		offsets = append(offsets, int64(pos))
		terms = append(terms, term)
		pos, expected, lastTerm = stop, expected+1, term
	}
	l.install(firstIndex, offsets, terms, int64(end))
	return LogContents{Entries: entries}, nil
}

// invalidRecord describes a record that passed its checksum yet breaks the
// log's rules: it was written so, and is never "repaired".
func (l *LogFile) invalidRecord(pos int, index, term uint64, code byte, expected, lastTerm uint64) error {
	where := fmt.Sprintf("has a record at byte %d", pos)
	if index != expected {
		return l.corrupt(fmt.Sprintf("%s for entry %d where entry %d belongs", where, index, expected))
	}
	if term < lastTerm {
		return l.corrupt(fmt.Sprintf("%s (entry %d) whose term %d is lower than the term %d before it",
			where, index, term, lastTerm))
	}
	return l.corrupt(fmt.Sprintf("%s (entry %d) of unknown kind %d (written by a newer release?)",
		where, index, code))
}

func (l *LogFile) readHeader(buf []byte) (uint64, error) {
	if len(buf) < logHeaderSize {
		return 0, l.corrupt(fmt.Sprintf("is %d bytes long, too short for its %d-byte header",
			len(buf), logHeaderSize))
	}
	if string(buf[:8]) != LogMagic {
		return 0, l.corrupt(fmt.Sprintf("does not start with %s (found %s): "+
			"it is not a zmqnode Raft log, or its header is damaged",
			pyBytesRepr([]byte(LogMagic)), pyBytesRepr(buf[:8])))
	}
	if crc32.ChecksumIEEE(buf[:logHeaderFields]) != binary.LittleEndian.Uint32(buf[logHeaderFields:]) {
		return 0, l.corrupt("has a header that fails its checksum")
	}
	if v := binary.LittleEndian.Uint32(buf[8:]); v != LogVersion {
		return 0, l.corrupt(fmt.Sprintf("has format version %d; this zmqnode reads "+
			"version %d (was it written by a newer release?)", v, LogVersion))
	}
	first := binary.LittleEndian.Uint64(buf[12:])
	if first < 1 {
		return 0, l.corrupt(fmt.Sprintf("says its first index is %d; indexes start at 1", first))
	}
	return first, nil
}

func (l *LogFile) repairTail(f *os.File, buf []byte, pos int, expected uint64, reason string,
	firstIndex uint64, offsets []int64, terms []uint64, entries []Entry) (LogContents, error) {
	if found := findValidRecord(buf, pos, expected); found >= 0 {
		return LogContents{}, l.corrupt(fmt.Sprintf("is damaged in the middle: the record at byte %d "+
			"(entry %d) is unreadable (%s), yet a valid record follows at byte %d. "+
			"Dropping the rest could lose acknowledged entries, so the node will not start",
			pos, expected, reason, found))
	}
	dropped := len(buf) - pos
	if err := f.Truncate(int64(pos)); err != nil {
		return LogContents{}, err
	}
	if err := l.Stats.Fsync(f); err != nil {
		return LogContents{}, err
	}
	warning := fmt.Sprintf("%s: dropped %d bytes at the tail (byte %d on, entry %d: %s), most likely "+
		"a write cut short when the node stopped, which was never acknowledged because its fsync "+
		"had not returned; the log now ends at entry %d", l.Path, dropped, pos, expected, reason, expected-1)
	warn(l.Warn, warning)
	l.install(firstIndex, offsets, terms, int64(pos))
	return LogContents{Entries: entries, Warnings: []string{warning}, TruncatedBytes: dropped}, nil
}

func (l *LogFile) install(firstIndex uint64, offsets []int64, terms []uint64, size int64) {
	l.firstIndex, l.offsets, l.terms, l.size = firstIndex, offsets, terms, size
	l.dirty = false
}

func (l *LogFile) usable() (*os.File, error) {
	if l.broken != "" {
		return nil, &BrokenError{Message: fmt.Sprintf("%s: an earlier %s failed; restart the node", l.Path, l.broken)}
	}
	if l.f == nil {
		return nil, fmt.Errorf("%s is not open: %w", l.Path, ErrNotOpen)
	}
	return l.f, nil
}

// Append writes entries after the log, first cutting it before
// entries[0].Index. Not durable until Sync. Entries that would leave a gap,
// are not consecutive, overwrite compacted entries or make terms go down
// are refused (ErrInvalidArgument) and the file is untouched.
func (l *LogFile) Append(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	f, err := l.usable()
	if err != nil {
		return err
	}
	invalid := func(format string, args ...interface{}) error {
		return fmt.Errorf("%w: "+format, append([]interface{}{ErrInvalidArgument}, args...)...)
	}
	first := entries[0].Index
	if first < l.firstIndex {
		return invalid("entry %d is compacted: %s starts at %d", first, l.Path, l.firstIndex)
	}
	if first > l.LastIndex()+1 {
		return invalid("appending entry %d after %d leaves a gap", first, l.LastIndex())
	}
	keep := int(first - l.firstIndex)
	term := uint64(0)
	if keep > 0 {
		term = l.terms[keep-1]
	}
	for k, e := range entries {
		if e.Index != first+uint64(k) {
			return invalid("entries are not consecutive: %d after %d", e.Index, first+uint64(k)-1)
		}
		if e.Term < term {
			return invalid("entry %d has term %d, lower than %d", e.Index, e.Term, term)
		}
		if err := checkEncodable(e); err != nil {
			return err
		}
		term = e.Term
	}
	var blob []byte
	for _, e := range entries {
		blob = appendRecord(blob, e)
	}
	if keep < len(l.offsets) {
		if err := l.truncate(f, keep); err != nil {
			l.broken = "write"
			return err
		}
	}
	if _, err := f.WriteAt(blob, l.size); err != nil {
		l.broken = "write"
		return err
	}
	pos := l.size
	for _, e := range entries {
		l.offsets = append(l.offsets, pos)
		l.terms = append(l.terms, e.Term)
		pos += int64(minRecord + len(e.Data))
	}
	l.size = pos
	l.dirty = true
	return nil
}

// truncate cuts the file before record keep, durably before new records
// land where the old ones were: otherwise a crash could leave new records
// followed by stale old ones.
func (l *LogFile) truncate(f *os.File, keep int) error {
	size := l.offsets[keep]
	if err := f.Truncate(size); err != nil {
		return err
	}
	if err := l.Stats.Fsync(f); err != nil {
		return err
	}
	l.offsets = l.offsets[:keep]
	l.terms = l.terms[:keep]
	l.size = size
	return nil
}

// Sync fsyncs what Append wrote; false if there was nothing to sync.
func (l *LogFile) Sync() (bool, error) {
	f, err := l.usable()
	if err != nil {
		return false, err
	}
	if !l.dirty {
		return false, nil
	}
	if err := l.Stats.Fsync(f); err != nil {
		l.broken = "fsync"
		return false, err
	}
	l.dirty = false
	return true, nil
}

// Compact drops entries up to throughIndex; the log then starts at
// throughIndex+1. It rewrites the file atomically (kept records are copied
// as they are, after checking each one read back). Durable on return,
// including any earlier unsynced appends.
func (l *LogFile) Compact(throughIndex uint64) error {
	f, err := l.usable()
	if err != nil {
		return err
	}
	if throughIndex < l.firstIndex {
		return nil
	}
	keepFrom := throughIndex + 1 - l.firstIndex
	if keepFrom >= uint64(len(l.offsets)) {
		return l.Reset(throughIndex + 1)
	}
	start := l.offsets[keepFrom]
	tail := make([]byte, l.size-start)
	if n, err := f.ReadAt(tail, start); n != len(tail) {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%s: short read while compacting", l.Path)
		}
		return err
	}
	if err := l.verifyReadBack(tail, start, throughIndex+1); err != nil {
		return err
	}
	shift := start - logHeaderSize
	offsets := make([]int64, 0, len(l.offsets)-int(keepFrom))
	for _, o := range l.offsets[keepFrom:] {
		offsets = append(offsets, o-shift)
	}
	terms := append([]uint64(nil), l.terms[keepFrom:]...)
	content := append(EncodeLogHeader(throughIndex+1), tail...)
	return l.replace(content, throughIndex+1, offsets, terms)
}

// verifyReadBack checks records read back from the file (blob starts at
// byte offset with entry first) before they are copied anywhere: copying a
// record the disk damaged since Open would hide the damage in the middle of
// the new file.
func (l *LogFile) verifyReadBack(blob []byte, offset int64, first uint64) error {
	pos, index := 0, first
	for pos < len(blob) {
		end, reason := checkRecord(blob, pos)
		if reason != "" {
			return l.corrupt(fmt.Sprintf("has a damaged record at byte %d (entry %d), found when "+
				"reading it back to compact the log: %s. The disk changed bytes after they were written",
				offset+int64(pos), index, reason))
		}
		if stored := binary.LittleEndian.Uint64(blob[pos+recordHead:]); stored != index {
			return l.corrupt(fmt.Sprintf("has entry %d at byte %d where entry %d was written, "+
				"found when reading it back to compact the log", stored, offset+int64(pos), index))
		}
		pos, index = end, index+1
	}
	return nil
}

// Reset drops every entry; the next one appended must be firstIndex. Durable.
func (l *LogFile) Reset(firstIndex uint64) error {
	if _, err := l.usable(); err != nil {
		return err
	}
	return l.replace(EncodeLogHeader(firstIndex), firstIndex, nil, nil)
}

func (l *LogFile) replace(content []byte, firstIndex uint64, offsets []int64, terms []uint64) error {
	old, err := l.usable()
	if err != nil {
		return err
	}
	if err := AtomicWrite(l.Path, content, l.Stats, true); err != nil {
		return err
	}
	// The rename swapped inodes; our descriptor still points at the old one.
	f, err := os.OpenFile(l.Path, os.O_RDWR, 0)
	if err != nil {
		l.broken = "reopen after compaction"
		return err
	}
	old.Close()
	l.f = f
	l.install(firstIndex, offsets, terms, int64(len(content)))
	return nil
}

// Close fsyncs anything unsynced, then closes. Safe to call twice.
func (l *LogFile) Close() error {
	if l.f == nil {
		return nil
	}
	var err error
	if l.broken == "" {
		_, err = l.Sync()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// EncodeLog is the bytes of a healthy log file, for tests and tools: the
// header for firstIndex followed by the entries' records.
func EncodeLog(firstIndex uint64, entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	b.Write(EncodeLogHeader(firstIndex))
	for _, e := range entries {
		rec, err := EncodeRecord(e)
		if err != nil {
			return nil, err
		}
		b.Write(rec)
	}
	return b.Bytes(), nil
}
