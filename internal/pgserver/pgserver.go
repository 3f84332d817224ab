// Package pgserver starts and stops a local PostgreSQL server from the
// installed server binaries. billingd uses it when DATABASE_URL is unset, and
// the tests and benchmarks use it so that nothing has to be set up by hand.
package pgserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ErrNoBinaries means no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found (initdb, pg_ctl): install them with `apt-get install -y postgresql`, or set DATABASE_URL to an existing server")

// Server is one local PostgreSQL cluster: a data directory and the unix
// socket directory it listens on. Only unix sockets are used, so two
// clusters never fight over a TCP port and nothing listens on the network.
//
// The cluster is private to the user that runs it and the user that
// started billingd (root, when the server runs as postgres): the socket
// directory is mode 0700 and owned by the server's user, and pg_hba.conf
// admits only those two OS users, by peer authentication (the kernel says
// who is connecting; there is no password to keep). Start rewrites both on
// every start, so a cluster made by an older billingd (trust, a 0755
// socket directory) is upgraded in place, even one left running.
type Server struct {
	DataDir   string
	SocketDir string
	LogFile   string
	Port      int
	// Settings are extra `-c name=value` server settings (e.g. fsync=off for tests).
	Settings []string

	bin     string
	runAs   *syscall.Credential // the server's user when not this process's
	started bool
}

// New describes a server whose data lives in dataDir. The socket directory is
// derived from dataDir's absolute path and kept short, because unix socket
// paths must stay under 107 bytes whatever the data directory is called.
func New(dataDir string) (*Server, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	s := &Server{
		DataDir:   abs,
		SocketDir: filepath.Join(os.TempDir(), "bpg-"+hex.EncodeToString(sum[:5])),
		LogFile:   abs + ".log",
		Port:      5432,
		bin:       bin,
	}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		s.runAs = cred
	}
	return s, nil
}

// FindBinaries returns the directory holding initdb and pg_ctl: PATH first,
// then the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user to run the server (apt-get install -y postgresql creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// URL is the connection string for database name on this server.
func (s *Server) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", dbname, s.SocketDir, s.Port)
}

// Start initialises the cluster if needed and starts it, reusing a server
// that is already running on the same data directory (for example one left
// behind by a process that was killed). Either way the socket directory and
// authentication are made private first (see Server).
func (s *Server) Start(ctx context.Context) error {
	if err := s.prepareDirs(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, "PG_VERSION")); err != nil {
		if err := s.initdb(ctx); err != nil {
			return err
		}
	}
	running := s.Running(ctx)
	if err := s.writeAuth(ctx, running); err != nil {
		return err
	}
	if running {
		// Started with the socket open to all (an older billingd): the
		// server keeps its settings until restarted, the file does not.
		_ = os.Chmod(filepath.Join(s.SocketDir, fmt.Sprintf(".s.PGSQL.%d", s.Port)), 0o700)
		return nil
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s -c unix_socket_permissions=0700 -p %d", s.SocketDir, s.Port)
	for _, kv := range s.Settings {
		opts += " -c " + kv
	}
	out, err := s.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", s.DataDir, "-l", s.LogFile, "-o", opts)
	if err != nil {
		return fmt.Errorf("start postgres in %s: %w: %s%s", s.DataDir, err, out, s.logTail())
	}
	s.started = true
	return nil
}

// Running reports whether a server is running on the data directory.
func (s *Server) Running(ctx context.Context) bool {
	_, err := s.run(ctx, "pg_ctl", "status", "-D", s.DataDir)
	return err == nil
}

// Stop shuts the server down (fast mode: disconnect clients, checkpoint).
func (s *Server) Stop(ctx context.Context) error {
	if !s.Running(ctx) {
		return nil
	}
	if out, err := s.run(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", s.DataDir); err != nil {
		return fmt.Errorf("stop postgres in %s: %w: %s", s.DataDir, err, out)
	}
	// The socket directory is empty once the server is down; Start makes
	// it again. Left behind, one accumulated in /tmp per data directory.
	_ = os.Remove(s.SocketDir)
	return nil
}

func (s *Server) prepareDirs() error {
	parent := filepath.Dir(s.DataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if err := s.prepareSocketDir(); err != nil {
		return err
	}
	// The server log holds statements that failed, with their values:
	// readable by its writer (and root) only.
	if f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		f.Close()
		_ = os.Chmod(s.LogFile, 0o600)
		if s.runAs != nil {
			_ = os.Chown(s.LogFile, int(s.runAs.Uid), int(s.runAs.Gid))
		}
	}
	if s.runAs == nil {
		return nil
	}
	// The server runs as postgres: it must own its data directory and be
	// able to walk every parent of it.
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.DataDir, err)
	}
	if err := os.Chown(s.DataDir, int(s.runAs.Uid), int(s.runAs.Gid)); err != nil {
		return fmt.Errorf("chown %s to postgres: %w", s.DataDir, err)
	}
	for dir := parent; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v): choose a data directory whose parents are world-executable, or set DATABASE_URL", dir, fi.Mode().Perm())
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	return nil
}

// prepareSocketDir makes the socket directory private: mode 0700, owned by
// the server's user (root still reaches it). Its name is predictable (it
// derives from the data directory), so one that someone else created first
// is refused rather than used: whoever owns it could replace the socket
// with one of their own.
func (s *Server) prepareSocketDir() error {
	uid, gid := os.Geteuid(), os.Getegid()
	if s.runAs != nil {
		uid, gid = int(s.runAs.Uid), int(s.runAs.Gid)
	}
	if err := os.Mkdir(s.SocketDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create socket directory %s: %w", s.SocketDir, err)
	}
	fi, err := os.Lstat(s.SocketDir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", s.SocketDir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("socket directory %s is not a directory: remove it, or set DATABASE_URL", s.SocketDir)
	}
	if owner := int(st.Uid); owner != uid && owner != os.Geteuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not the server's user (uid %d): someone else created it; remove it, or set DATABASE_URL", s.SocketDir, owner, uid)
	}
	if err := os.Chmod(s.SocketDir, 0o700); err != nil {
		return fmt.Errorf("chmod socket directory %s: %w", s.SocketDir, err)
	}
	if err := os.Chown(s.SocketDir, uid, gid); err != nil {
		return fmt.Errorf("chown socket directory %s: %w", s.SocketDir, err)
	}
	return nil
}

// authMap names the ident map of pg_hba.conf.
const authMap = "billingd"

// writeAuth makes pg_hba.conf admit only the server's OS user and this
// process's, by peer authentication, both as the postgres role; and
// pg_ident.conf say so. A running server is told to reload when either
// changed, which is how a trust cluster left running is closed.
func (s *Server) writeAuth(ctx context.Context, running bool) error {
	users, err := s.allowedUsers()
	if err != nil {
		return err
	}
	hba := "# Written by billingd (internal/pgserver) at every start: only the OS\n" +
		"# users in pg_ident.conf's \"" + authMap + "\" map connect, over the unix socket.\n" +
		"local all all peer map=" + authMap + "\n"
	ident := "# Written by billingd (internal/pgserver) at every start.\n# MAPNAME SYSTEM-USERNAME PG-USERNAME\n"
	for _, u := range users {
		ident += authMap + " " + u + " postgres\n"
	}
	changed := false
	for name, body := range map[string]string{"pg_hba.conf": hba, "pg_ident.conf": ident} {
		c, err := s.writeConf(name, body)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if running && changed {
		if out, err := s.run(ctx, "pg_ctl", "reload", "-D", s.DataDir); err != nil {
			return fmt.Errorf("reload postgres in %s: %w: %s", s.DataDir, err, out)
		}
	}
	return nil
}

// allowedUsers is the server's OS user and this process's (the same user
// unless billingd runs as root and the server as postgres).
func (s *Server) allowedUsers() ([]string, error) {
	me, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("look up the current OS user: %w", err)
	}
	users := []string{me.Username}
	if s.runAs != nil {
		srv, err := user.LookupId(strconv.Itoa(int(s.runAs.Uid)))
		if err != nil {
			return nil, fmt.Errorf("look up the server's OS user: %w", err)
		}
		users = append([]string{srv.Username}, users...)
	}
	return users, nil
}

// writeConf writes a configuration file of the cluster, owned by the
// server's user and readable by it only; it reports whether it changed.
func (s *Server) writeConf(name, body string) (bool, error) {
	path := filepath.Join(s.DataDir, name)
	if old, err := os.ReadFile(path); err == nil && string(old) == body {
		return false, nil
	}
	tmp := path + ".billingd-tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if s.runAs != nil {
		if err := os.Chown(tmp, int(s.runAs.Uid), int(s.runAs.Gid)); err != nil {
			os.Remove(tmp)
			return false, fmt.Errorf("chown %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

func (s *Server) initdb(ctx context.Context) error {
	if s.runAs == nil {
		if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", s.DataDir, err)
		}
	}
	out, err := s.run(ctx, "initdb", "-D", s.DataDir, "-U", "postgres", "--auth-local=peer", "--auth-host=reject", "-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb %s: %w: %s", s.DataDir, err, out)
	}
	return nil
}

func (s *Server) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	// Own process group: a Ctrl-C in the terminal goes to billingd, which
	// then stops the server itself, cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.runAs}
	cmd.Dir = "/"
	err := cmd.Run()
	return strings.TrimSpace(buf.String()), err
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver log tail:\n" + string(b)
}
