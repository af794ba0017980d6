package api

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Listen makes the API's Unix socket at path, owner-only (mode 0600) from
// the moment it exists: the mode is set on the socket before bind, which
// creates the file with it (umask aside), so no other user can connect
// in between. A socket left by a govmm that is gone is replaced; one that
// still answers, or a path that is not a socket, is an error.
func Listen(path string) (net.Listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("-api %s: socket: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // FileListener holds its own copy
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return nil, fmt.Errorf("-api %s: fchmod: %w", path, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, fmt.Errorf("-api %s: bind: %w (is its folder there and writable?)", path, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("-api %s: listen: %w", path, err)
	}
	// Mode 0600 as the socket had it, whatever the umask took away.
	if err := os.Chmod(path, 0o600); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("-api %s: %w", path, err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("-api %s: %w", path, err)
	}
	return &unixListener{ln.(*net.UnixListener), path}, nil
}

// unixListener removes its socket file when closed.
type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// removeStale removes a socket at path that nothing listens on.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-api %s: %w", path, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("-api %s: the path exists and is not a socket: give another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("-api %s: another govmm answers on it: give another path", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("-api %s: removing the stale socket: %w", path, err)
	}
	return nil
}
