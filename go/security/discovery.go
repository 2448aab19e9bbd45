package security

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Where keys are when no --keys names them (zmqnode/transport/keystore.py).
const (
	KeysEnv        = "ZMQNODE_KEYS"
	RunClusterKeys = ".cluster/keys" // relative to the working directory
	RecordFile     = "keys"
	LocalKeysDir   = "local-keys"
	LockFile       = "local-keys.lock"
	ClusterPublic  = "cluster.key"
)

// UserDir is $XDG_CONFIG_HOME/zmqnode, or ~/.config/zmqnode when
// XDG_CONFIG_HOME is unset or not absolute (the XDG spec ignores relative
// paths).
func UserDir() string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "~" // as Python's expanduser leaves it when HOME is unknown
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "zmqnode")
}

// LocalKeys is the key directory of nodes started on loopback without --keys.
func LocalKeys() string { return filepath.Join(UserDir(), LocalKeysDir) }

// RecordedKeys is the key directory ./run_cluster.sh recorded (one line in
// UserDir()/keys), or "" if there is none or it is not an absolute path.
func RecordedKeys() string {
	data, err := os.ReadFile(filepath.Join(UserDir(), RecordFile))
	if err != nil {
		return ""
	}
	text := strings.TrimSpace(string(data))
	if text == "" || !filepath.IsAbs(text) {
		return ""
	}
	return text
}

func holdsKeys(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, ClusterPublic))
	return err == nil && info.Mode().IsRegular()
}

// FindKeys is the key directory a client uses when given no --keys, in
// keystore.find_keys' order: $ZMQNODE_KEYS (set but empty: none, and no
// further look), ./.cluster/keys, the recorded directory, the local keys;
// the first holding cluster.key wins. "" means plaintext. looked says where
// it looked and what it found, for error messages.
func FindKeys() (dir string, looked []string) {
	if env, set := os.LookupEnv(KeysEnv); set {
		if env == "" {
			return "", []string{"$" + KeysEnv + ": set but empty, meaning no keys"}
		}
		return env, []string{"$" + KeysEnv + "=" + env}
	}
	looked = []string{"$" + KeysEnv + ": unset"}
	if holdsKeys(RunClusterKeys) {
		return RunClusterKeys, append(looked, "./"+RunClusterKeys+": found")
	}
	looked = append(looked, "./"+RunClusterKeys+": none")
	record := filepath.Join(UserDir(), RecordFile)
	recorded := RecordedKeys()
	switch {
	case recorded == "":
		looked = append(looked, record+": nothing recorded by ./run_cluster.sh")
	case holdsKeys(recorded):
		return recorded, append(looked, record+": "+recorded)
	default:
		looked = append(looked, fmt.Sprintf("%s: %s, which holds no %s", record, recorded, ClusterPublic))
	}
	local := LocalKeys()
	if holdsKeys(local) {
		return local, append(looked, local+": found")
	}
	return "", append(looked, local+": none")
}

// IsLoopback is true for "localhost" and loopback IP literals (127.0.0.0/8,
// ::1, brackets allowed). Other names are not resolved.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	literal := strings.Trim(host, "[]")
	ip := net.ParseIP(literal)
	if ip == nil {
		return false
	}
	if strings.Contains(literal, ":") {
		// An IPv6 literal: only ::1. Python's ipaddress (3.11) does not call
		// the IPv4-mapped ::ffff:127.0.0.1 loopback; Go's net.IP would.
		return ip.Equal(net.IPv6loopback)
	}
	return ip.IsLoopback()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// LocalKeyName is a node's keypair name in the local key directory:
// node_<host>_<port>, with [^A-Za-z0-9.-] in the host replaced by "_".
func LocalKeyName(host string, port int) string {
	return "node_" + unsafeChars.ReplaceAllString(host, "_") + "_" + strconv.Itoa(port)
}

// LocalNodeKey is the keypair file of the node at host:port in a local key
// directory.
func LocalNodeKey(keysDir, host string, port int) string {
	return filepath.Join(keysDir, LocalKeyName(host, port)+".key_secret")
}

// FormatAddress is "host:port", with IPv6 hosts in brackets.
func FormatAddress(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// ParseAddress splits "host:port" or "[v6]:port" (addresses.parse_address).
func ParseAddress(text string) (string, int, error) {
	value := strings.TrimSpace(text)
	var host, portText string
	if strings.HasPrefix(value, "[") {
		h, rest, ok := strings.Cut(value[1:], "]")
		if !ok || !strings.HasPrefix(rest, ":") {
			return "", 0, fmt.Errorf("address %q is not '[ipv6]:port'", text)
		}
		host, portText = h, rest[1:]
	} else {
		i := strings.LastIndex(value, ":")
		if i < 0 {
			return "", 0, fmt.Errorf("address %q has no port; expected 'host:port'", text)
		}
		host, portText = value[:i], value[i+1:]
		if strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("address %q: write IPv6 hosts as '[addr]:port'", text)
		}
	}
	if host == "" {
		return "", 0, fmt.Errorf("address %q has no host; expected 'host:port'", text)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 || strings.TrimLeft(portText, "0123456789") != "" {
		return "", 0, fmt.Errorf("address %q: port must be a number in 1..65535", text)
	}
	return host, port, nil
}

// DefaultNodeKey is KEYS/node<i>.key_secret where i is this node's place
// among the cluster's addresses (itself and its peers) sorted by (host,
// port), as config.default_node_key: keygen --nodes N and run_cluster.sh
// number nodes the same way.
func DefaultNodeKey(keysDir, host string, port int, peers []string) (string, error) {
	self := FormatAddress(host, port)
	members := []Address{{host, port}}
	for _, p := range peers {
		h, n, err := ParseAddress(p)
		if err != nil {
			return "", err
		}
		if FormatAddress(h, n) != self {
			members = append(members, Address{h, n})
		}
	}
	sort.SliceStable(members, func(i, j int) bool {
		if members[i].Host != members[j].Host {
			return members[i].Host < members[j].Host // code-point order, as Python's str
		}
		return members[i].Port < members[j].Port
	})
	for i, m := range members {
		if m.Host == host && m.Port == port {
			return filepath.Join(keysDir, fmt.Sprintf("node%d.key_secret", i)), nil
		}
	}
	return "", fmt.Errorf("unreachable: %s not among the members", self)
}

// Address is a node's host and client port.
type Address struct {
	Host string
	Port int
}

// EnsureLocalKeys makes sure keysDir holds the cluster keypair, a client
// keypair and, for each node address, a member keypair (public key in
// members/), creating what is missing under an exclusive flock on the
// sibling local-keys.lock so nodes starting at once (Python or Go) make one
// set. Returns the files made. As keystore.ensure_local_keys.
func EnsureLocalKeys(keysDir string, nodes []Address) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, keyErr("cannot make the local keys in %s: %v", keysDir, err)
	}
	parent := filepath.Dir(keysDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fail(err)
	}
	lock, err := os.OpenFile(filepath.Join(parent, LockFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		return fail(err)
	}
	defer lock.Close() // releases the lock
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fail(err)
	}
	var made []string
	if _, err := os.Stat(filepath.Join(keysDir, ClusterKey+".key_secret")); err != nil {
		// keygen(root, nodes=0, clients=1, force=True): a fresh set.
		if err := os.Mkdir(keysDir, 0o700); err != nil && !os.IsExist(err) {
			return fail(err)
		}
		for _, sub := range []string{MembersDir, ClientsDir} {
			if err := os.RemoveAll(filepath.Join(keysDir, sub)); err != nil {
				return fail(err)
			}
		}
		old, _ := filepath.Glob(filepath.Join(keysDir, "*.key*"))
		for _, f := range old {
			os.Remove(f)
		}
		for _, sub := range []string{MembersDir, ClientsDir} {
			if err := os.MkdirAll(filepath.Join(keysDir, sub), 0o755); err != nil {
				return fail(err)
			}
		}
		for _, k := range []struct{ pub, name string }{{keysDir, ClusterKey},
			{filepath.Join(keysDir, ClientsDir), ClientKey}} {
			path, err := CreateKeypair(k.pub, keysDir, k.name)
			if err != nil {
				return nil, err
			}
			made = append(made, path)
		}
		os.Remove(filepath.Join(keysDir, HTTPToken))
		token, err := EnsureHTTPToken(keysDir)
		if err != nil {
			return nil, err
		}
		made = append(made, token)
	}
	for _, n := range nodes {
		name := LocalKeyName(n.Host, n.Port)
		if _, err := os.Stat(filepath.Join(keysDir, name+".key_secret")); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(keysDir, MembersDir), 0o755); err != nil {
			return fail(err)
		}
		path, err := CreateKeypair(filepath.Join(keysDir, MembersDir), keysDir, name)
		if err != nil {
			return nil, err
		}
		made = append(made, path)
	}
	return made, nil
}
