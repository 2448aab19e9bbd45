package node

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"zmqnode/security"
)

// Defaults and bounds, as zmqnode/config.py (see its comments for the reasons).
const (
	DefaultTickSeconds         = 0.05
	DefaultElectionTicks       = 10
	DefaultMaxRequestBytes     = 512 << 20
	DefaultMaxModelBytes       = 64 << 20
	DefaultMaxTrainings        = 4
	DefaultMaxPending          = 10_000
	DefaultMaxUncommittedBytes = 256 << 20
	DefaultSnapshotEntries     = 1000
	DefaultFetchChunkBytes     = 1 << 20
)

// Port offsets from the client port (PROTOCOL.md §1, transport/addresses.py).
const (
	MonitorOffset   = -1000
	RaftOffset      = 1000
	HeartbeatOffset = 2000
	TrainingOffset  = 3000
	ResultsOffset   = 4000
	HTTPOffset      = 5000
)

// Config is one node's settings (Python's NodeConfig), read-only once parsed.
type Config struct {
	Host                string
	Port                int
	MonitorPort         int
	MonitorHost         string
	HTTPPort            *int // nil: Port+5000; 0: off
	HTTPHost            string
	HTTPIdleTimeout     float64
	HTTPRequestTimeout  float64
	Peers               []string
	StorageDir          string
	Tick                time.Duration
	ElectionTicks       int
	MaxRequestBytes     int64
	MaxModelBytes       int64
	MaxTrainings        int
	MaxPending          int
	MaxUncommittedBytes int64
	RequestTimeout      time.Duration
	TrainingTimeout     time.Duration
	Trainer             bool
	LogLevel            string
	FaultFile           string
	SnapshotEntries     int
	FetchChunkBytes     int
	KeysDir             string // "" with NodeKey "": --insecure
	NodeKey             string
	ClientAuth          string
	LocalKeys           bool
	Join                []string
}

// NodeID is the node's client address, its Raft id.
func (c *Config) NodeID() string { return security.FormatAddress(c.Host, c.Port) }

// Insecure reports whether CURVE is off.
func (c *Config) Insecure() bool { return c.KeysDir == "" }

// HTTPEnabled reports whether the HTTP inference port is on.
func (c *Config) HTTPEnabled() bool { return c.HTTPPort == nil || *c.HTTPPort != 0 }

// HTTPListenPort is the HTTP inference port (when enabled).
func (c *Config) HTTPListenPort() int {
	if c.HTTPPort == nil {
		return c.Port + HTTPOffset
	}
	return *c.HTTPPort
}

// Endpoint is tcp://host:port for this node's host.
func Endpoint(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return fmt.Sprintf("tcp://[%s]:%d", host, port)
	}
	return fmt.Sprintf("tcp://%s:%d", host, port)
}

// UsageError is a command line the node refuses (exit status 2, as argparse).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usage(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// multi are the flags that take several values (argparse nargs="*" / "+").
var multi = map[string]bool{"--peers": true, "--join": true}

var boolFlags = map[string]bool{"--no-trainer": true, "--insecure": true}

var known = map[string]bool{
	"--host": true, "--port": true, "--monitor-port": true, "--monitor-host": true,
	"--http-port": true, "--http-host": true, "--http-idle-timeout": true,
	"--http-request-timeout": true, "--raft-port": true, "--peers": true, "--join": true,
	"--storage-dir": true, "--tick": true, "--election-ticks": true,
	"--max-request-bytes": true, "--max-model-bytes": true, "--max-trainings": true,
	"--max-pending": true, "--max-uncommitted-bytes": true, "--no-trainer": true,
	"--log-level": true, "--fault-file": true, "--snapshot-entries": true,
	"--fetch-chunk-bytes": true, "--keys": true, "--node-key": true, "--client-auth": true,
	"--insecure": true,
}

// ParseArgs reads the Python node's command line (zmqnode/config.py): the same
// flags, defaults, checks and port offsets. --peers and --join take
// space- or comma-separated lists.
func ParseArgs(argv []string) (*Config, error) {
	vals := map[string][]string{}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if !strings.HasPrefix(arg, "--") {
			return nil, usage("unrecognized argument: %s", arg)
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if !known[name] {
			return nil, usage("unrecognized argument: %s", name)
		}
		switch {
		case boolFlags[name]:
			vals[name] = []string{"true"}
		case hasValue:
			vals[name] = append(vals[name], value)
		case multi[name]:
			if _, ok := vals[name]; !ok {
				vals[name] = []string{}
			}
			for i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "--") {
				i++
				vals[name] = append(vals[name], argv[i])
			}
		default:
			if i+1 >= len(argv) {
				return nil, usage("argument %s: expected one argument", name)
			}
			i++
			vals[name] = []string{argv[i]}
		}
	}
	str := func(name, def string) string {
		if v, ok := vals[name]; ok && len(v) > 0 {
			return v[len(v)-1]
		}
		return def
	}
	var err error
	intv := func(name string, def int64) int64 {
		s := str(name, "")
		if s == "" || err != nil {
			return def
		}
		n, e := strconv.ParseInt(s, 10, 64)
		if e != nil {
			err = usage("argument %s: invalid int value: '%s'", name, s)
		}
		return n
	}
	floatv := func(name string, def float64) float64 {
		s := str(name, "")
		if s == "" || err != nil {
			return def
		}
		f, e := strconv.ParseFloat(s, 64)
		if e != nil {
			err = usage("argument %s: invalid float value: '%s'", name, s)
		}
		return f
	}
	envLevel := os.Getenv("ZMQNODE_LOG_LEVEL")
	if envLevel == "" {
		envLevel = "INFO"
	}
	c := &Config{
		Host:                str("--host", "127.0.0.1"),
		Port:                int(intv("--port", 9000)),
		MonitorHost:         str("--monitor-host", "127.0.0.1"),
		HTTPHost:            str("--http-host", "127.0.0.1"),
		HTTPIdleTimeout:     floatv("--http-idle-timeout", 60),
		HTTPRequestTimeout:  floatv("--http-request-timeout", 30),
		ElectionTicks:       int(intv("--election-ticks", DefaultElectionTicks)),
		MaxRequestBytes:     intv("--max-request-bytes", DefaultMaxRequestBytes),
		MaxModelBytes:       intv("--max-model-bytes", DefaultMaxModelBytes),
		MaxTrainings:        int(intv("--max-trainings", DefaultMaxTrainings)),
		MaxPending:          int(intv("--max-pending", DefaultMaxPending)),
		MaxUncommittedBytes: intv("--max-uncommitted-bytes", DefaultMaxUncommittedBytes),
		RequestTimeout:      30 * time.Second,
		TrainingTimeout:     600 * time.Second,
		Trainer:             str("--no-trainer", "") == "",
		LogLevel:            strings.ToUpper(str("--log-level", envLevel)),
		FaultFile:           str("--fault-file", ""),
		SnapshotEntries:     int(intv("--snapshot-entries", DefaultSnapshotEntries)),
		FetchChunkBytes:     int(intv("--fetch-chunk-bytes", DefaultFetchChunkBytes)),
		ClientAuth:          str("--client-auth", "none"),
	}
	tick := floatv("--tick", DefaultTickSeconds)
	monitor := intv("--monitor-port", -1)
	raftPort := intv("--raft-port", -1)
	httpPort := intv("--http-port", -1)
	if err != nil {
		return nil, err
	}
	if c.ClientAuth != "none" && c.ClientAuth != "curve" {
		return nil, usage("argument --client-auth: invalid choice: '%s' (choose from 'none', 'curve')", c.ClientAuth)
	}
	if c.Port < 1001 || c.Port > 60535 {
		if monitor < 0 || (httpPort < 0) {
			return nil, usage("port %d must be in 1001..60535 so that every derived port is valid", c.Port)
		}
	}
	c.MonitorPort = c.Port + MonitorOffset
	if monitor >= 0 {
		c.MonitorPort = int(monitor)
	}
	if httpPort >= 0 {
		p := int(httpPort)
		if p > 65535 {
			return nil, usage("--http-port must be 0 (off) or a port, got %d", p)
		}
		c.HTTPPort = &p
	}
	if !(c.HTTPIdleTimeout > 0 && c.HTTPRequestTimeout > 0) {
		return nil, usage("--http-idle-timeout and --http-request-timeout must be positive")
	}
	insecure := str("--insecure", "") != ""
	if insecure && c.HTTPEnabled() && !security.IsLoopback(c.HTTPHost) {
		return nil, usage("--http-host %s is not a loopback address, and with --insecure "+
			"there is no token to ask HTTP clients for: drop --insecure (the token is "+
			"KEYS/http.token), bind 127.0.0.1, or turn HTTP off with --http-port 0", c.HTTPHost)
	}
	if !(tick > 0 && tick <= 5) {
		return nil, usage("--tick must be between 0 and 5 seconds, got %v", tick)
	}
	c.Tick = time.Duration(tick * float64(time.Second))
	if c.ElectionTicks < 2 {
		return nil, usage("--election-ticks must be at least 2 (heartbeats go every tick), got %d", c.ElectionTicks)
	}
	if c.SnapshotEntries < 0 {
		return nil, usage("--snapshot-entries must be 0 (never) or more, got %d", c.SnapshotEntries)
	}
	if c.FetchChunkBytes < 1024 || c.FetchChunkBytes > 64<<20 {
		return nil, usage("--fetch-chunk-bytes must be 1 KiB to 64 MiB, got %d", c.FetchChunkBytes)
	}
	if raftPort >= 0 && int(raftPort) != c.Port+RaftOffset {
		return nil, usage("--raft-port %d does not match the layout every node assumes "+
			"(client port + 1000 = %d); drop --raft-port or use %d", raftPort, c.Port+RaftOffset, c.Port+RaftOffset)
	}
	for _, b := range []struct {
		flag  string
		value int64
	}{{"--max-trainings", int64(c.MaxTrainings)}, {"--max-pending", int64(c.MaxPending)}, {"--max-uncommitted-bytes", c.MaxUncommittedBytes}} {
		if b.value < 1 {
			return nil, usage("%s must be at least 1, got %d", b.flag, b.value)
		}
	}
	self := c.NodeID()
	hosts := []string{c.Host}
	for _, text := range splitList(vals["--peers"]) {
		host, port, e := security.ParseAddress(text)
		if e != nil {
			return nil, usage("--peers: %v", e)
		}
		id := security.FormatAddress(host, port)
		if id != self && !contains(c.Peers, id) {
			c.Peers = append(c.Peers, id)
			hosts = append(hosts, host)
		}
	}
	for _, text := range splitList(vals["--join"]) {
		host, port, e := security.ParseAddress(text)
		if e != nil {
			return nil, usage("--join: %v", e)
		}
		c.Join = append(c.Join, security.FormatAddress(host, port))
		hosts = append(hosts, host)
	}
	c.StorageDir = str("--storage-dir", fmt.Sprintf("node_%d_storage", c.Port))
	keys, keysSet := os.LookupEnv("ZMQNODE_KEYS")
	if v, ok := vals["--keys"]; ok && len(v) > 0 {
		keys, keysSet = v[len(v)-1], true
	}
	nodeKey := str("--node-key", "")
	switch {
	case insecure:
		if c.ClientAuth != "none" {
			return nil, usage("--client-auth curve needs CURVE: drop --insecure")
		}
	case keys != "":
		c.KeysDir = keys
		if len(c.Join) > 0 && nodeKey == "" {
			return nil, usage("--join with --keys needs this node's own key: --node-key FILE " +
				"(python -m zmqnode keygen --dir KEYS --node NAME makes KEYS/NAME.key_secret)")
		}
		if nodeKey == "" {
			nk, e := security.DefaultNodeKey(keys, c.Host, c.Port, c.Peers)
			if e != nil {
				return nil, usage("%v", e)
			}
			nodeKey = nk
		}
		c.NodeKey = nodeKey
	default:
		var remote []string
		for _, h := range hosts {
			if !security.IsLoopback(h) {
				remote = append(remote, h)
			}
		}
		if keysSet || len(remote) > 0 {
			why := "an empty --keys or ZMQNODE_KEYS means no keys"
			if len(remote) > 0 {
				why = fmt.Sprintf("not every address is loopback (%s), so no local keys", strings.Join(remote, ", "))
			}
			return nil, usage("security is on by default and needs the cluster's keys: --keys DIR (or "+
				"ZMQNODE_KEYS; create them with python -m zmqnode keygen --dir DIR), "+
				"or --insecure to run without encryption and authentication (%s)", why)
		}
		c.KeysDir = security.LocalKeys()
		if nodeKey == "" {
			nodeKey = security.LocalNodeKey(c.KeysDir, c.Host, c.Port)
		}
		c.NodeKey = nodeKey
		c.LocalKeys = true
	}
	return c, nil
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if strings.TrimSpace(part) != "" {
				out = append(out, strings.TrimSpace(part))
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

// LogPath is worker_<port>.log in the storage dir.
func (c *Config) LogPath() string {
	return filepath.Join(c.StorageDir, fmt.Sprintf("worker_%d.log", c.Port))
}
