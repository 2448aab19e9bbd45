package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// File names inside a storage dir besides the Raft files (node.py,
// training/process.py, logs.py).
const (
	JoinedAtFileName   = "joined_at"
	MemberKeysFileName = "member_keys"
)

// WorkerLogName is the node's log file in its storage dir,
// worker_<port>.log; the monitor's /logs tails it.
func WorkerLogName(port int) string {
	return fmt.Sprintf("worker_%d.log", port)
}

// SaveJoinedAt stores the index of this node's JOIN durably: the Raft core's
// vote floor across restarts. The file is the decimal index and a newline.
func SaveJoinedAt(dir string, index uint64, stats *FsyncStats) error {
	return AtomicWrite(filepath.Join(dir, JoinedAtFileName), []byte(strconv.FormatUint(index, 10)+"\n"), stats, true)
}

// LoadJoinedAt is the stored JOIN index; 0 when the file is missing,
// unreadable or holds no number, as node.py's _joined_at (a negative number
// also gives 0: as a vote floor it means the same).
func LoadJoinedAt(dir string) uint64 {
	raw, err := os.ReadFile(filepath.Join(dir, JoinedAtFileName))
	if err != nil || !utf8.Valid(raw) {
		return 0
	}
	s := strings.TrimFunc(string(raw), unicode.IsSpace)
	if s == "" {
		return 0
	}
	n, ok := pyInt(s)
	if !ok {
		return 0
	}
	return n
}

// pyInt parses what Python's int(str) accepts in ASCII: an optional sign,
// digits, single underscores between digits. Negative values give 0.
func pyInt(s string) (uint64, bool) {
	negative := false
	if s[0] == '+' || s[0] == '-' {
		negative = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	if negative {
		return 0, true
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// MemberKeys is the member allow-list a node shares with its trainer
// process (transport/security.py MemberKeysFile): one z85 public key (40
// characters) per line, sorted, replaced by a rename (not fsynced: it is
// rewritten whenever the membership changes, and at every start).
type MemberKeys struct {
	Path string
	seen *time.Time
}

// NewMemberKeys is the member_keys file of a storage dir.
func NewMemberKeys(dir string) *MemberKeys {
	return &MemberKeys{Path: filepath.Join(dir, MemberKeysFileName)}
}

// Write replaces the file with keys (byte-wise sorted, one per line),
// through "member_keys.tmp" as the Python node does.
func (m *MemberKeys) Write(keys []string) error {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	var b bytes.Buffer
	for i, k := range sorted {
		if i > 0 && k == sorted[i-1] {
			continue // a set in Python
		}
		b.WriteString(k)
		b.WriteByte('\n')
	}
	tmp := m.Path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o666); err != nil {
		return err
	}
	return os.Rename(tmp, m.Path)
}

// Reload returns the keys if the file changed (by mtime) since the last
// call, else nil; nil too when it cannot be read or holds no key. Words
// that are not 40 bytes long are skipped.
func (m *MemberKeys) Reload() []string {
	info, err := os.Stat(m.Path)
	if err != nil {
		return nil
	}
	mtime := info.ModTime()
	if m.seen != nil && m.seen.Equal(mtime) {
		return nil
	}
	raw, err := os.ReadFile(m.Path)
	if err != nil {
		return nil
	}
	m.seen = &mtime
	set := map[string]bool{}
	for _, word := range bytes.FieldsFunc(raw, isASCIISpace) { // Python's bytes.split()
		if len(word) == 40 {
			set[string(word)] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LogLine formats one line of worker_<port>.log as Python's logging does
// with logs.py FORMAT "%(asctime)s %(levelname)-7s [%(node)s] %(name)s:
// %(message)s": local time "2006-01-02 15:04:05,000", the level padded to 7
// (DEBUG, INFO, WARNING, ERROR, CRITICAL), the node id, the logger's name
// (e.g. "zmqnode.storage"). No newline.
func LogLine(t time.Time, level, node, logger, message string) string {
	stamp := t.Format("2006-01-02 15:04:05") + fmt.Sprintf(",%03d", t.Nanosecond()/1e6)
	return fmt.Sprintf("%s %-7s [%s] %s: %s", stamp, level, node, logger, message)
}

// TailLog returns the last lines lines of a log file, reading only its end
// (at most 400 bytes a line), as logs.py tail; nil if it does not exist.
func TailLog(path string, lines int) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	start := size - int64(lines)*400
	if start < 0 {
		start = 0
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	all := splitLines(strings.ToValidUTF8(string(data), "\uFFFD"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return all, nil
}

func isASCIISpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// splitLines is Python's str.splitlines: \r\n, and each of \n \r \v \f
// \x1c \x1d \x1e \x85 U+2028 U+2029, ends a line.
func splitLines(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			if r == '\n' && i > 0 && s[i-1] == '\r' {
				start = i + 1 // the second half of \r\n
				continue
			}
			out = append(out, s[start:i])
			start = i + utf8.RuneLen(r)
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
