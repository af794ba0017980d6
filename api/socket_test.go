package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListen checks the socket's mode, that a stale socket is replaced,
// and that a live one or another file is refused.
func TestListen(t *testing.T) {
	old := syscall.Umask(0) // the mode must not depend on the umask
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "api.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("Listen(%s) made %v, want a socket with mode 0600", path, st.Mode())
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another govmm answers on it") {
		t.Errorf("Listen on a live socket = %v, want an error saying another govmm answers", err)
	}
	// A socket nobody listens on any more: a govmm that died.
	stale := filepath.Join(dir, "stale.sock")
	l2, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l2.(*net.UnixListener).SetUnlinkOnClose(false)
	l2.Close()
	ln3, err := Listen(stale)
	if err != nil {
		t.Errorf("Listen on a stale socket = %v, want it replaced", err)
	} else {
		ln3.Close()
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a plain file = %v, want an error saying it is not a socket", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after Close: %v", err)
	}
}

// TestClientErrors checks the client's errors: no govmm there, and an
// error answer's message and status.
func TestClientErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	_, err := NewClient(path).Info(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is govmm running with -api "+path) {
		t.Errorf("Info() with no server = %v, want it to ask whether govmm runs with -api", err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusConflict, errors.New("the guest is already paused"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	_, err = NewClient(path).Pause(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Message != "the guest is already paused" {
		t.Errorf("Pause() = %v, want an *APIError 409 with the server's message", err)
	}
}

func TestParseTCP(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"tcp:127.0.0.1:4444", "127.0.0.1:4444", true},
		{"tcp:[::1]:1", "[::1]:1", true},
		{"tcp:host.example:80", "host.example:80", true},
		{"127.0.0.1:4444", "", false},
		{"tcp:nohost", "", false},
		{"unix:/tmp/x", "", false},
	}
	for _, tt := range tests {
		got, err := ParseTCP(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseTCP(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
