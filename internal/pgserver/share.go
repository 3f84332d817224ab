package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Several processes may use one embedded server at once: `billingd serve`
// twice on one data directory, or a one-shot command next to a running
// serve. Each holds a shared lock on the users file for as long as it
// uses the server; the one that ends last (it can take that lock
// exclusively) is the one that may stop it. Starting and stopping happen
// under the control lock, so a process never starts using a server that
// another one is stopping. The kernel drops a killed process's locks, so
// a crash never leaves the server counted as in use.

// Use is one process's use of a shared embedded server.
type Use struct {
	srv     *Server
	users   *os.File
	started bool
}

// Use starts the server if it is not running (see Start) and registers this
// process as one of its users until Release.
func (s *Server) Use(ctx context.Context) (*Use, error) {
	if err := os.MkdirAll(filepath.Dir(s.DataDir), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(s.DataDir), err)
	}
	control, err := lockFile(ctx, s.DataDir+".lock", syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer control.Close()
	// Never blocks for long: only a stopper holds it exclusively, and a
	// stopper holds the control lock too.
	users, err := lockFile(ctx, s.DataDir+".users", syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		users.Close()
		return nil, err
	}
	return &Use{srv: s, users: users, started: s.started}, nil
}

// Started reports whether this process started the server (it was not
// running when Use was called).
func (u *Use) Started() bool { return u.started }

// Release ends this process's use. When stop is true and no other process
// uses the server any more, it stops the server and reports so; while
// another one does, the server keeps running whatever stop says.
func (u *Use) Release(ctx context.Context, stop bool) (stopped bool, err error) {
	if u.users == nil {
		return false, nil
	}
	control, err := lockFile(ctx, u.srv.DataDir+".lock", syscall.LOCK_EX)
	if err != nil {
		u.users.Close()
		u.users = nil
		return false, err
	}
	defer control.Close()
	last, err := u.lastUser(stop)
	if err != nil || last == nil {
		return false, err
	}
	defer last.Close()
	if err := u.srv.Stop(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// lastUser drops this process's shared lock and, when stop is set,
// returns the users file locked exclusively if no other process uses the
// server (nil if one does).
//
// A child that another goroutine is forking holds copies of this
// process's descriptors, the shared lock among them, until it execs: the
// exclusive test would take it for another user and leave the server
// running (a test suite forks often). syscall.ForkLock keeps forks out
// while the lock is dropped and tested; Go holds it across fork and exec.
func (u *Use) lastUser(stop bool) (*os.File, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	u.users.Close() // drops this process's shared lock
	u.users = nil
	if !stop {
		return nil, nil
	}
	last, err := os.OpenFile(u.srv.DataDir+".users", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s.users: %w", u.srv.DataDir, err)
	}
	if err := syscall.Flock(int(last.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		last.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil // another process still uses it
		}
		return nil, fmt.Errorf("lock %s.users: %w", u.srv.DataDir, err)
	}
	return last, nil
}

// lockFile opens path (creating it, mode 0600) and takes a flock on it,
// waiting until ctx ends; closing the file releases the lock.
func lockFile(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another billingd is starting or stopping the embedded PostgreSQL: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
