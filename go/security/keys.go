// Package security gives the Go node the Python node's CURVE security
// (docs/PROTOCOL.md §1.1, zmqnode/transport/security.py and keystore.py):
// the same key files read the same way, the same CURVE server and client
// roles, and a ZAP handler (Gatekeeper) that admits the same public keys.
//
// Key layout (python -m zmqnode keygen --dir DIR):
//
//	DIR/cluster.key          the cluster's CURVE server public key: clients need it
//	DIR/cluster.key_secret   the cluster's server keypair: every node needs it
//	DIR/node<i>.key_secret   node i's own keypair (its CURVE client identity)
//	DIR/members/*.key        allow-list of node public keys (peer sockets)
//	DIR/client.key_secret    a client keypair (the CLI's default identity)
//	DIR/clients/*.key        allow-list of client public keys (--client-auth curve)
//	DIR/http.token           the HTTP inference bearer token
//
// Files are ZeroMQ certificates as pyzmq's zmq.auth writes and reads them.
// A nil *NodeKeys everywhere below means --insecure: the NULL mechanism,
// plaintext, no authentication.
package security

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"zmqnode/zmq"
)

// ZAP domains (PROTOCOL.md §1.1).
const (
	// Peers: Raft ROUTER, trainer PULL, results PULL. Member keys only.
	Peers = "zmqnode.peers"
	// Clients: client ROUTER and heartbeat PUB. Members and, with
	// --client-auth curve, the client allow-list; with none, any key.
	Clients = "zmqnode.clients"
)

// File and directory names of a key directory.
const (
	ClusterKey = "cluster"
	ClientKey  = "client"
	MembersDir = "members"
	ClientsDir = "clients"
	HTTPToken  = "http.token"
)

// Client authentication policies (--client-auth).
const (
	ClientAuthNone  = "none"
	ClientAuthCurve = "curve"
)

// KeyFileError is a key file or directory that is missing or unreadable;
// the message names it. A node stops with it (exit status 2).
type KeyFileError struct{ Msg string }

func (e *KeyFileError) Error() string { return e.Msg }

func keyErr(format string, args ...any) error {
	return &KeyFileError{Msg: fmt.Sprintf(format, args...)}
}

// NodeKeys is what a node (and its trainer) needs: the cluster's server
// keypair, the node's own keypair and the allow-lists, all Z85 text.
type NodeKeys struct {
	ServerPublic string
	ServerSecret string
	Public       string
	Secret       string
	Members      []string // sorted
	Clients      []string // sorted; nil: any client key (--client-auth none)
}

// ClientKeys is what a client needs: the cluster's public key and a keypair.
type ClientKeys struct {
	ServerPublic string
	Public       string
	Secret       string
}

// LoadCertificate reads a ZeroMQ certificate file as pyzmq's
// zmq.auth.load_certificate does: lines starting (after trimming) with
// "public-key" or "secret-key" give the text after the first "=", stripped
// of spaces, tabs and quotes; "#" lines are comments; the first of each
// wins. secret is "" for a public (.key) file.
func LoadCertificate(path string) (public, secret string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", keyErr("cannot read key file %s: %v", path, err)
	}
	var pub, sec []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if bytes.HasPrefix(line, []byte("#")) {
			continue
		}
		value := func() []byte {
			_, v, _ := bytes.Cut(line, []byte("="))
			return bytes.Trim(v, " \t'\"")
		}
		if bytes.HasPrefix(line, []byte("public-key")) {
			pub = value()
		}
		if bytes.HasPrefix(line, []byte("secret-key")) {
			sec = value()
		}
		if len(pub) > 0 && len(sec) > 0 {
			break
		}
	}
	if pub == nil {
		return "", "", keyErr("cannot read key file %s: No public key found in %s", path, path)
	}
	return string(pub), string(sec), nil
}

// LoadKeypair reads a .key_secret file; an error if it holds no secret key.
func LoadKeypair(path string) (public, secret string, err error) {
	public, secret, err = LoadCertificate(path)
	if err != nil {
		return "", "", err
	}
	if secret == "" {
		return "", "", keyErr("%s holds no secret key (a .key_secret file is needed)", path)
	}
	return public, secret, nil
}

// LoadPublicKey is the Z85 public key in a .key or .key_secret file.
func LoadPublicKey(path string) (string, error) {
	public, _, err := LoadCertificate(path)
	return public, err
}

// LoadAllowList reads the public keys of every *.key file in dir (not
// .key_secret), sorted and without duplicates, as zmq.auth.load_certificates.
func LoadAllowList(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return nil, keyErr("allow-list directory %s does not exist", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, keyErr("cannot list %s: %v", dir, err)
	}
	seen := map[string]bool{}
	var keys []string
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue // Python's glob skips hidden files; so do we
		}
		public, err := LoadPublicKey(f)
		if err != nil {
			return nil, err
		}
		if public != "" && !seen[public] {
			seen[public] = true
			keys = append(keys, public)
		}
	}
	sort.Strings(keys)
	if keys == nil {
		keys = []string{}
	}
	return keys, nil
}

// LoadNodeKeys reads a node's keys: DIR/cluster.key_secret, the node's own
// keypair nodeKey, DIR/members/ (which must hold the node's own public key:
// the other nodes would refuse it otherwise) and, with clientAuth "curve",
// DIR/clients/. Any problem is a *KeyFileError naming the file.
func LoadNodeKeys(keysDir, nodeKey, clientAuth string) (*NodeKeys, error) {
	serverPublic, serverSecret, err := LoadKeypair(filepath.Join(keysDir, ClusterKey+".key_secret"))
	if err != nil {
		return nil, err
	}
	public, secret, err := LoadKeypair(nodeKey)
	if err != nil {
		return nil, err
	}
	membersDir := filepath.Join(keysDir, MembersDir)
	members, err := LoadAllowList(membersDir)
	if err != nil {
		return nil, err
	}
	if !contains(members, public) {
		return nil, keyErr("%s's public key is not in %s: the other nodes would refuse this node",
			nodeKey, membersDir)
	}
	keys := &NodeKeys{ServerPublic: serverPublic, ServerSecret: serverSecret, Public: public,
		Secret: secret, Members: members}
	if clientAuth == ClientAuthCurve {
		if keys.Clients, err = LoadAllowList(filepath.Join(keysDir, ClientsDir)); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// LoadClientKeys reads what a client needs from keysDir (holding
// cluster.key). Its identity is clientKey, else keysDir/client.key_secret,
// else a fresh keypair (enough for --client-auth none).
func LoadClientKeys(keysDir, clientKey string) (*ClientKeys, error) {
	serverPublic, err := LoadPublicKey(filepath.Join(keysDir, ClusterKey+".key"))
	if err != nil {
		return nil, err
	}
	path := clientKey
	if path == "" {
		path = filepath.Join(keysDir, ClientKey+".key_secret")
	}
	var public, secret string
	if _, statErr := os.Stat(path); clientKey != "" || statErr == nil {
		public, secret, err = LoadKeypair(path)
	} else {
		public, secret, err = zmq.CurveKeypair()
	}
	if err != nil {
		return nil, err
	}
	return &ClientKeys{ServerPublic: serverPublic, Public: public, Secret: secret}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Writing keys (the local key directory, tests)

const secretBanner = `#   ****  Generated on %s by zmqnode (Go)  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

`

const publicBanner = `#   ****  Generated on %s by zmqnode (Go)  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.

`

// writeCertificate writes a certificate in zmq.auth's format (what pyzmq's
// create_certificates writes: banner, empty metadata, curve section).
func writeCertificate(path, public, secret string, mode os.FileMode) error {
	var b bytes.Buffer
	now := time.Now().Format("2006-01-02 15:04:05.000000")
	if secret != "" {
		fmt.Fprintf(&b, secretBanner, now)
	} else {
		fmt.Fprintf(&b, publicBanner, now)
	}
	b.WriteString("metadata\ncurve\n")
	fmt.Fprintf(&b, "    public-key = \"%s\"\n", public)
	if secret != "" {
		fmt.Fprintf(&b, "    secret-key = \"%s\"\n", secret)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode is masked by umask
		return err
	}
	return os.Rename(tmp, path)
}

// CreateKeypair makes a new keypair NAME: publicDir/NAME.key (public) and
// secretDir/NAME.key_secret (mode 0600), as security._create does. Returns
// the secret file's path.
func CreateKeypair(publicDir, secretDir, name string) (string, error) {
	public, secret, err := zmq.CurveKeypair()
	if err != nil {
		return "", err
	}
	if err := writeCertificate(filepath.Join(publicDir, name+".key"), public, "", 0o644); err != nil {
		return "", keyErr("cannot write %s: %v", name+".key", err)
	}
	path := filepath.Join(secretDir, name+".key_secret")
	if err := writeCertificate(path, public, secret, 0o600); err != nil {
		return "", keyErr("cannot write %s: %v", path, err)
	}
	return path, nil
}

// EnsureHTTPToken makes DIR/http.token (mode 0600, 256 random bits as hex)
// if it is missing, with O_EXCL so nodes starting at once make one.
func EnsureHTTPToken(dir string) (string, error) {
	path := filepath.Join(dir, HTTPToken)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return path, nil
	}
	if err != nil {
		return "", keyErr("cannot create %s: %v", path, err)
	}
	defer f.Close()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	if _, err := f.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
		return "", keyErr("cannot write %s: %v", path, err)
	}
	return path, f.Sync()
}
