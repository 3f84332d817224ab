package pgserver_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
	_ "github.com/lib/pq" // driver
)

// needRoot: these tests connect as other OS users, which only root can
// become.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to connect as other OS users (nobody, postgres)")
	}
}

// newServer describes a server in a fresh directory the postgres user can
// enter (t.TempDir is 0700), stopped and removed when t ends.
func newServer(t *testing.T) *pgserver.Server {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := pgserver.New(filepath.Join(dir, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Settings = []string{"fsync=off"}
	t.Cleanup(func() {
		_ = srv.Stop(context.Background())
		os.RemoveAll(dir)
		os.RemoveAll(srv.SocketDir)
	})
	return srv
}

func credential(t *testing.T, name string) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// psqlAs runs `SELECT 1` through psql as the OS user name (as root: "")
// and returns its output and whether it connected.
func psqlAs(t *testing.T, srv *pgserver.Server, name string) (string, bool) {
	t.Helper()
	bin, err := pgserver.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-w", "-X", "-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port),
		"-U", "postgres", "-d", "postgres", "-tA", "-c", "SELECT 1")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if name != "" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(t, name)}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return strings.TrimSpace(out.String()), err == nil && strings.TrimSpace(out.String()) == "1"
}

func connectAsRoot(t *testing.T, srv *pgserver.Server) error {
	t.Helper()
	db, err := sql.Open("postgres", srv.URL("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	var one int
	return db.QueryRow(`SELECT 1`).Scan(&one)
}

// assertPrivate checks the two locks on the embedded database: the socket
// directory only its owner enters, and pg_hba admitting only the server's
// and billingd's OS users. The second is checked with the first opened,
// as if the directory had been left world-readable.
func assertPrivate(t *testing.T, srv *pgserver.Server) {
	t.Helper()
	fi, err := os.Lstat(srv.SocketDir)
	if err != nil {
		t.Fatal(err)
	}
	pg := credential(t, "postgres")
	if st := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || fi.Mode().Perm() != 0o700 || st.Uid != pg.Uid {
		t.Fatalf("socket directory mode %v owner uid %d, want 0700 owned by postgres (uid %d)", fi.Mode().Perm(), st.Uid, pg.Uid)
	}
	if err := connectAsRoot(t, srv); err != nil {
		t.Fatalf("billingd (root) cannot connect: %v", err)
	}
	if out, ok := psqlAs(t, srv, "postgres"); !ok {
		t.Fatalf("the server's own user cannot connect: %s", out)
	}
	out, ok := psqlAs(t, srv, "nobody")
	if ok || !strings.Contains(out, "Permission denied") {
		t.Fatalf("nobody, socket directory closed: connected=%v: %s", ok, out)
	}
	// The socket itself is 0700 too; then authentication still refuses.
	socket := filepath.Join(srv.SocketDir, ".s.PGSQL."+strconv.Itoa(srv.Port))
	if err := os.Chmod(srv.SocketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(srv.SocketDir, 0o700) //nolint:errcheck
	out, ok = psqlAs(t, srv, "nobody")
	if ok || !strings.Contains(out, "Permission denied") {
		t.Fatalf("nobody, socket directory opened: connected=%v: %s", ok, out)
	}
	if err := os.Chmod(socket, 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(socket, 0o700) //nolint:errcheck
	out, ok = psqlAs(t, srv, "nobody")
	if ok || !strings.Contains(out, "Peer authentication failed") {
		t.Fatalf("nobody, socket directory and socket opened: connected=%v: %s", ok, out)
	}
}

// Another local OS user cannot connect to the embedded database; billingd
// (root) and the server's user can.
func TestOtherUserCannotConnect(t *testing.T) {
	needRoot(t)
	t.Parallel()
	srv := newServer(t)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertPrivate(t, srv)
}

// initTrust makes a cluster the way billingd did before: trust for every
// local connection, and a socket directory anyone may enter.
func initTrust(t *testing.T, srv *pgserver.Server) {
	t.Helper()
	bin, err := pgserver.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	pg := credential(t, "postgres")
	for _, d := range []string{srv.DataDir, srv.SocketDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(pg.Uid), int(pg.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(srv.SocketDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(srv.LogFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(srv.LogFile, int(pg.Uid), int(pg.Gid)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", srv.DataDir, "-U", "postgres", "--auth=trust", "--no-sync")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
}

// Data directories made with trust are upgraded in place on the next
// start: when stopped, and when a server was left running with trust.
func TestTrustClusterUpgradedInPlace(t *testing.T) {
	needRoot(t)
	t.Parallel()
	t.Run("Stopped", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t)
		initTrust(t, srv)
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		assertPrivate(t, srv)
	})
	t.Run("LeftRunning", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t)
		initTrust(t, srv)
		bin, _ := pgserver.FindBinaries()
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "start", "-w", "-D", srv.DataDir, "-l", srv.LogFile,
			"-o", "-c listen_addresses='' -c unix_socket_directories="+srv.SocketDir+" -p "+strconv.Itoa(srv.Port))
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: credential(t, "postgres"), Setpgid: true}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl start: %v: %s", err, out)
		}
		if out, ok := psqlAs(t, srv, "nobody"); !ok {
			t.Fatalf("setup: the old cluster should admit nobody: %s", out)
		}
		// The next billingd reuses the running server and closes it.
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// pg_ctl reload only signals the server: wait for it to reread.
		deadline := time.Now().Add(30 * time.Second)
		for {
			os.Chmod(srv.SocketDir, 0o755) //nolint:errcheck
			_, ok := psqlAs(t, srv, "nobody")
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("nobody still connects after the upgrade")
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Chmod(srv.SocketDir, 0o700) //nolint:errcheck
		assertPrivate(t, srv)
	})
}

// A socket directory someone else created first is refused, not used.
func TestForeignSocketDirectoryRefused(t *testing.T) {
	needRoot(t)
	t.Parallel()
	srv := newServer(t)
	if err := os.Mkdir(srv.SocketDir, 0o777); err != nil {
		t.Fatal(err)
	}
	nobody := credential(t, "nobody")
	if err := os.Chown(srv.SocketDir, int(nobody.Uid), int(nobody.Gid)); err != nil {
		t.Fatal(err)
	}
	err := srv.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "someone else created it") {
		t.Fatalf("Start = %v", err)
	}
	if srv.Running(context.Background()) {
		t.Fatal("the server started anyway")
	}
}
