package testvm

import (
	"bytes"
	"strings"
	"testing"
)

func TestExitScanner(t *testing.T) {
	const start, exit = "S-42", "E-42="
	tests := []struct {
		name       string
		stream     string
		wantOut    string
		wantStatus string
		wantFound  bool
	}{
		{"plain", "bios\x1bc noise\nS-42\nok\nPASS\nE-42=0\n[ 3.1] reboot: Power down\n", "ok\nPASS\n", "0", true},
		{"status after a line without newline", "S-42\nno newline" + "E-42=7\n", "no newline", "7", true},
		{"word status", "S-42\nE-42=nokvm\n", "", "nokvm", true},
		{"exit before start", "dmesg says\nE-42=nokvm\n", "", "nokvm", true},
		{"marker look-alikes pass", "S-42\nS-4 E-4 E-42 E-42x\n", "S-4 E-4 E-42 E-42x\n", "", false},
		{"crash without marker", "S-42\ntest output\nKernel panic\n", "test output\nKernel panic\n", "", false},
		{"never started", "SeaBIOS\nKernel panic\n", "", "", false},
		{"held prefix flushed at the end", "S-42\nout E-4", "out E-4", "", false},
	}
	for _, tt := range tests {
		// Every way of cutting the stream into writes must give the same.
		for chunk := 1; chunk <= len(tt.stream); chunk++ {
			var out bytes.Buffer
			s := newExitScanner(&out, start, exit)
			for i := 0; i < len(tt.stream); i += chunk {
				if n, err := s.Write([]byte(tt.stream[i:min(i+chunk, len(tt.stream))])); err != nil || n != min(chunk, len(tt.stream)-i) {
					t.Fatalf("%s: Write = %d, %v", tt.name, n, err)
				}
			}
			s.flush()
			status, found := s.result()
			if out.String() != tt.wantOut || status != tt.wantStatus || found != tt.wantFound {
				t.Errorf("%s in %d-byte writes: out %q, status %q, found %v; want %q, %q, %v",
					tt.name, chunk, out.String(), status, found, tt.wantOut, tt.wantStatus, tt.wantFound)
			}
			if !strings.Contains(s.tail.String(), "anic") && strings.Contains(tt.stream, "Kernel panic") {
				t.Errorf("%s: tail %q lacks the panic line", tt.name, s.tail.String())
			}
		}
	}
}

func TestTailLines(t *testing.T) {
	tl := tailLines{max: 2}
	tl.add([]byte("one\ntwo\r\nthr"))
	tl.add([]byte("ee\nfour"))
	if got, want := tl.String(), "two\nthree\nfour"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)", "SeaBIOS (version 1.16.2)"},
		{"ok\tcolumns\r", "ok\tcolumns"},
		{"\x1b[1;31mred\x1b[0m and \x07bell", "red and bell"},
		{"\x1eGOVMM-TESTVM-x", "GOVMM-TESTVM-x"},
		{"ends in ESC\x1b", "ends in ESC"},
		{"ünïcode stays", "ünïcode stays"},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
