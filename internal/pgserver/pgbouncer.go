package pgserver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PgBouncer is a pgbouncer in transaction pool mode in front of one
// PostgreSQL server: the pooling of most managed PostgreSQL offerings,
// where a client's server connection is its own for one transaction only.
// Tests and the bench run billingd through it to prove, and measure, that
// nothing it does on its main pool needs a session.
type PgBouncer struct {
	// Addr is where it listens (127.0.0.1, a free port).
	Addr string
	// Log is its log file.
	Log string

	dir  string
	cmd  *exec.Cmd
	done chan error
}

// PgBouncerBinary finds pgbouncer: PATH, then /usr/sbin (Debian's package
// puts it there, off most users' PATH). scripts/install-deps.sh installs
// it when missing.
func PgBouncerBinary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", fmt.Errorf("pgbouncer not found: apt-get install -y pgbouncer (scripts/install-deps.sh does)")
}

// StartPgBouncer starts pgbouncer in transaction mode in front of the
// server that serverURL names (any database on it, as URL writes them: a
// unix socket directory and port), keeping its files in a new directory
// under parent. poolSize is the server connections per database and user
// (0: 10), small so that clients really share them. As root it runs as
// the postgres user (pgbouncer refuses root), which passes the server's
// peer authentication. Stop it with Stop.
func StartPgBouncer(ctx context.Context, serverURL, parent string, poolSize int) (*PgBouncer, error) {
	bin, err := PgBouncerBinary()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: server URL: %w", err)
	}
	host, port := u.Query().Get("host"), u.Query().Get("port")
	if host == "" {
		host, port = u.Hostname(), u.Port()
	}
	if port == "" {
		port = "5432"
	}
	if poolSize <= 0 {
		poolSize = 10
	}
	dir, err := os.MkdirTemp(parent, "pgbouncer-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeLocalAddr()
	if err != nil {
		return nil, err
	}
	_, listenPort, _ := net.SplitHostPort(addr)
	b := &PgBouncer{Addr: addr, Log: filepath.Join(dir, "pgbouncer.log"), dir: dir, done: make(chan error, 1)}
	conf := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%s", host, port),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		"listen_port = " + listenPort,
		"unix_socket_dir =",
		"auth_type = trust",
		"auth_file = " + filepath.Join(dir, "users.txt"),
		"pool_mode = transaction",
		"max_client_conn = 4000",
		fmt.Sprintf("default_pool_size = %d", poolSize),
		"server_login_retry = 1",
		"query_wait_timeout = 60",
		// lib/pq sends it at start-up; pgbouncer does not pass it on.
		"ignore_startup_parameters = extra_float_digits",
		"logfile = " + b.Log,
		"pidfile = " + filepath.Join(dir, "pgbouncer.pid"),
		"",
	}, "\n")
	ini := filepath.Join(dir, "pgbouncer.ini")
	users := filepath.Join(dir, "users.txt")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = postgresCredential(); err != nil {
			return nil, err
		}
	}
	for path, body := range map[string]string{ini: conf, users: `"postgres" ""` + "\n"} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	if cred != nil {
		for _, p := range []string{dir, ini, users} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	b.cmd = exec.Command(bin, ini)
	b.cmd.Dir = dir
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return b, nil
		}
		select {
		case err := <-b.done:
			log, _ := os.ReadFile(b.Log)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgbouncer exited: %v: %s", err, log)
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("pgbouncer did not listen on %s", addr)
		}
	}
}

// URL is the database that directURL names, reached through the pooler.
func (b *PgBouncer) URL(directURL string) string {
	u, err := url.Parse(directURL)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("postgres://postgres@%s%s?sslmode=disable", b.Addr, u.Path)
}

// Stop shuts pgbouncer down at once and removes its files.
func (b *PgBouncer) Stop() {
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	os.RemoveAll(b.dir)
}

func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
