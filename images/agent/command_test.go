package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/agentproto"
)

// openPTY returns a pseudo-terminal's two ends: the terminal a program
// writes to (as the agent writes to the console) and the other end, where
// a test reads what the terminal sent. It skips when the host has no ptys.
func openPTY(t *testing.T) (term, other *os.File) {
	t.Helper()
	// Non-blocking, so that os.File reads honour deadlines.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	other = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { other.Close() })
	if err := unix.IoctlSetPointerInt(int(other.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(other.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { term.Close() })
	return term, other
}

// readAll reads what other has until the terminal has been quiet for a
// moment (a pty's reader never sees EOF while the terminal is open).
func readAll(t *testing.T, other *os.File) string {
	t.Helper()
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		if err := other.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		n, err := other.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestRawOutput(t *testing.T) {
	term, other := openPTY(t)
	restore, err := rawOutput(term)
	if err != nil {
		t.Fatalf("rawOutput() = %v", err)
	}
	if _, err := io.WriteString(term, "a\nb\n"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, other); got != "a\nb\n" {
		t.Errorf("after rawOutput the terminal sent %q, want %q", got, "a\nb\n")
	}
	if err := restore(); err != nil {
		t.Fatalf("restore() = %v", err)
	}
	if _, err := io.WriteString(term, "c\n"); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, other); got != "c\r\n" {
		t.Errorf("after restore the terminal sent %q, want %q", got, "c\r\n")
	}
}

// TestRunCommand runs commands as the agent does, on a pseudo-terminal
// standing in for the console, and reads the console with the host's
// Filter: it must give back exactly the command's bytes and its status.
func TestRunCommand(t *testing.T) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	tests := []struct {
		cmd        string
		wantOut    string
		wantStatus int
	}{
		{"printf 'one\\ntwo\\n'; exit 3", "one\ntwo\n", 3},
		{"printf 'no newline'", "no newline", 0},
		{"echo to stderr >&2; false", "to stderr\n", 1},
		{"read x; echo \"read [$x] $?\"", "read [] 1\n", 0}, // stdin is /dev/null
		{"kill -TERM $$", "", 128 + 15},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			term, other := openPTY(t)
			status := runCommand(agentproto.Config{Cmd: tt.cmd}, term)
			var out bytes.Buffer
			f := agentproto.NewFilter(&out, nil)
			f.Write([]byte(readAll(t, other)))
			if status != tt.wantStatus {
				t.Errorf("runCommand(%q) = %d, want %d", tt.cmd, status, tt.wantStatus)
			}
			if out.String() != tt.wantOut {
				t.Errorf("runCommand(%q) printed %q between the markers, want %q", tt.cmd, out.String(), tt.wantOut)
			}
			if st, ok := f.Status(); !ok || st != tt.wantStatus {
				t.Errorf("runCommand(%q): exit marker status = %d, %v, want %d", tt.cmd, st, ok, tt.wantStatus)
			}
		})
	}
}
