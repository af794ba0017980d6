package agentproto

import (
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// boot is console text as the default guest prints it before the command:
// kernel lines (with the serial driver's \r\n) and the agent's.
const boot = "[    0.000000] Linux version 6.1.0\r\n" +
	"Run /init as init process\r\n" +
	Ready + "\r\n" +
	Module + " virtio_ring ok\r\n"

func TestFilter(t *testing.T) {
	tests := []struct {
		name       string
		console    string
		wantOut    string
		wantPhase  Phase
		wantStatus int
		wantHas    bool
	}{
		{"lines and a status", boot + StartLine() + "one\ntwo\n" + ExitLine(3) + "govmm agent: ending the VM\r\n",
			"one\ntwo\n", Exited, 3, true},
		{"no newline at the end", boot + StartLine() + "hi" + ExitLine(0), "hi", Exited, 0, true},
		{"no output", boot + StartLine() + ExitLine(1), "", Exited, 1, true},
		{"start line with \\r\\n", boot + "\r\n" + Start + "\r\nx\r\n" + ExitLine(0), "x\r\n", Exited, 0, true},
		{"bytes as they are", StartLine() + "\r\x00\x1b[1m\x1e\x1eGOVMM\xff\n" + ExitLine(255),
			"\r\x00\x1b[1m\x1e\x1eGOVMM\xff\n", Exited, 255, true},
		{"a marker lookalike passes", StartLine() + Exit + " 1\n\x1e" + Exit + "x\n" + ExitLine(2),
			Exit + " 1\n\x1e" + Exit + "x\n", Exited, 2, true},
		{"the start marker within a line is not the start", "x" + Start + "\n" + "later\n", "", Booting, 0, false},
		{"a second start line is output", StartLine() + Start + "\n" + ExitLine(0), Start + "\n", Exited, 0, true},
		{"the command never ends", boot + StartLine() + "working\nKernel panic - not syncing\r\n",
			"working\nKernel panic - not syncing\r\n", Running, 0, false},
		{"held lead byte at the end", StartLine() + "a\x1e" + Exit[:3], "a", Running, 0, false},
		{"status too large", StartLine() + ExitLine(256), "", Exited, 0, false},
		{"status not a number", StartLine() + endOfOutput + "x1\n", "", Exited, 0, false},
		{"status line not finished", StartLine() + endOfOutput + "1", "", Exited, 0, false},
		{"status with \\r", StartLine() + endOfOutput + "7\r\n", "", Exited, 7, true},
		{"an exit marker after the status is held back", StartLine() + ExitLine(4) + ExitLine(5) + "x\n", "", Exited, 4, true},
		{"nothing at all", "", "", Booting, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, then a byte at a time as the serial device writes.
			for _, chunk := range []int{len(tt.console) + 1, 1, 7} {
				var out, other bytes.Buffer
				f := NewFilter(&out, &other)
				feed(t, f, []byte(tt.console), chunk)
				if out.String() != tt.wantOut {
					t.Errorf("Filter(%q) in chunks of %d: output = %q, want %q", tt.console, chunk, out.String(), tt.wantOut)
				}
				if got := f.Phase(); got != tt.wantPhase {
					t.Errorf("Filter(%q) in chunks of %d: Phase() = %v, want %v", tt.console, chunk, got, tt.wantPhase)
				}
				if st, ok := f.Status(); st != tt.wantStatus || ok != tt.wantHas {
					t.Errorf("Filter(%q) in chunks of %d: Status() = %d, %v, want %d, %v", tt.console, chunk, st, ok, tt.wantStatus, tt.wantHas)
				}
			}
		})
	}
}

// feed writes console to f in pieces of size n.
func feed(t *testing.T, f *Filter, console []byte, n int) {
	t.Helper()
	for len(console) > 0 {
		k := min(n, len(console))
		if got, err := f.Write(console[:k]); got != k || err != nil {
			t.Fatalf("Filter.Write(%q) = %d, %v, want %d, nil", console[:k], got, err, k)
		}
		console = console[k:]
	}
}

// TestFilterStreams checks output reaches the writer as it comes: each
// byte that cannot begin the exit marker is written by the Write that
// brought it.
func TestFilterStreams(t *testing.T) {
	var out bytes.Buffer
	f := NewFilter(&out, nil)
	feed(t, f, []byte(boot+StartLine()), 1)
	for _, b := range []byte("line\n") {
		feed(t, f, []byte{b}, 1)
		if !strings.HasSuffix(out.String(), string(b)) {
			t.Fatalf("after Write(%q) the output is %q: the byte was held back", b, out.String())
		}
	}
	feed(t, f, []byte("\x1e"), 1)
	if out.String() != "line\n" {
		t.Fatalf("after Write(\"\\x1e\") the output is %q, want the lead byte held back", out.String())
	}
	feed(t, f, []byte("x"), 1)
	if out.String() != "line\n\x1ex" {
		t.Fatalf("after Write(\"x\") the output is %q, want the held lead byte released", out.String())
	}
}

func TestFilterOther(t *testing.T) {
	var out, other bytes.Buffer
	f := NewFilter(&out, &other)
	console := boot + StartLine() + "out\n" + ExitLine(3) + "after\n"
	feed(t, f, []byte(console), 5)
	if want := strings.Replace(console, "out\n", "", 1); other.String() != want {
		t.Errorf("Filter(%q): other = %q, want everything but the output, %q", console, other.String(), want)
	}
}

func TestFilterTail(t *testing.T) {
	var console strings.Builder
	for i := range 30 {
		console.WriteString("line " + strconv.Itoa(i) + "\r\n")
	}
	console.WriteString(strings.Repeat("x", 2*maxLine))
	f := NewFilter(&bytes.Buffer{}, nil)
	feed(t, f, []byte(console.String()), 3)
	got := f.Tail(3)
	want := []string{"line 28", "line 29", strings.Repeat("x", maxLine)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tail(3) = %q, want %q", got, want)
	}
	if got := f.Tail(100); len(got) != TailLines || got[0] != "line 11" {
		t.Errorf("Tail(100) = %d lines from %q, want %d from \"line 11\"", len(got), got[0], TailLines)
	}
	if got := NewFilter(&bytes.Buffer{}, nil).Tail(5); len(got) != 0 {
		t.Errorf("Tail(5) of a silent console = %q, want none", got)
	}
}

func TestFilterPanic(t *testing.T) {
	tests := []struct{ console, want string }{
		{boot + StartLine() + "[   11.2] sysrq: Trigger a crash\r\n[   11.3] Kernel panic - not syncing: sysrq triggered crash\r\n[   11.4] CPU: 0 PID: 1\r\n",
			"Kernel panic - not syncing: sysrq triggered crash"},
		{"[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n---[ end Kernel panic - not syncing: VFS ]---\r\n",
			"Kernel panic - not syncing: VFS: Unable to mount root fs"},
		{boot + StartLine() + "no panic here\n" + ExitLine(0), ""},
		{"Kernel panic - not syncing: unfinished line", ""},
	}
	for _, tt := range tests {
		f := NewFilter(&bytes.Buffer{}, nil)
		feed(t, f, []byte(tt.console), 4)
		if got := f.Panic(); got != tt.want {
			t.Errorf("Filter(%q).Panic() = %q, want %q", tt.console, got, tt.want)
		}
	}
}

// reference is what a Filter must make of a whole console, found the
// simple way: the output runs from just after the first line that is
// exactly Start (a trailing \r allowed) to the first end-of-output marker
// after it, or, with no marker, to the end less a trailing start of the
// marker, which the Filter holds back until it knows more.
func reference(console []byte) (out, other []byte, phase Phase, status int, hasStatus bool) {
	i, lineStart := -1, 0
	for j, b := range console {
		if b != '\n' {
			continue
		}
		if string(bytes.TrimSuffix(console[lineStart:j], []byte("\r"))) == Start {
			i = j + 1
			break
		}
		lineStart = j + 1
	}
	if i < 0 {
		return nil, console, Booting, 0, false
	}
	rest := console[i:]
	end := bytes.Index(rest, []byte(endOfOutput))
	if end < 0 {
		held := 0
		for k := 1; k < len(endOfOutput) && k <= len(rest); k++ {
			if bytes.HasSuffix(rest, []byte(endOfOutput[:k])) {
				held = k
			}
		}
		return rest[:len(rest)-held], console[:i], Running, 0, false
	}
	after := rest[end+len(endOfOutput):]
	if nl := bytes.IndexByte(after, '\n'); nl >= 0 {
		s := strings.TrimSuffix(string(after[:nl]), "\r")
		if n, err := strconv.Atoi(s); err == nil && len(s) <= 3 && s[0] != '+' && s[0] != '-' && n <= 255 {
			status, hasStatus = n, true
		}
	}
	other = append(append([]byte(nil), console[:i]...), rest[end:]...)
	return rest[:end], other, Exited, status, hasStatus
}

// FuzzFilter compares the streaming Filter, fed the console in pieces
// whose sizes come from cuts, with reference, which sees it whole: the
// output, the held-back rest, the phase and the status must agree.
func FuzzFilter(f *testing.F) {
	f.Add([]byte(boot+StartLine()+"one\ntwo\n"+ExitLine(3)+"govmm agent: ending the VM\r\n"), []byte{1})
	f.Add([]byte(StartLine()+"hi"+ExitLine(0)), []byte{0, 5, 200})
	f.Add([]byte(StartLine()+"\x1e\x1eGOVMM-AGENT-EXI\x1e"+ExitLine(255)+ExitLine(1)), []byte{3, 1, 4, 1, 5})
	f.Add([]byte("x"+Start+"\n"+Start+"\r\n\x1e"+Exit+" 07\r\n"), []byte{2})
	f.Add([]byte(boot+StartLine()+"Kernel panic - not syncing\r\n"), []byte{})
	f.Fuzz(func(t *testing.T, console, cuts []byte) {
		var out, other bytes.Buffer
		fl := NewFilter(&out, &other)
		rest := console
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, int(cuts[i%len(cuts)])%16+1)
			}
			if got, err := fl.Write(rest[:n]); got != n || err != nil {
				t.Fatalf("Write(%q) = %d, %v, want %d, nil", rest[:n], got, err, n)
			}
			rest = rest[n:]
		}
		wantOut, wantOther, wantPhase, wantStatus, wantHas := reference(console)
		if !bytes.Equal(out.Bytes(), wantOut) {
			t.Errorf("Filter(%q) output = %q, want %q", console, out.Bytes(), wantOut)
		}
		if !bytes.Equal(other.Bytes(), wantOther) {
			t.Errorf("Filter(%q) other = %q, want %q", console, other.Bytes(), wantOther)
		}
		if got := fl.Phase(); got != wantPhase {
			t.Errorf("Filter(%q) Phase() = %v, want %v", console, got, wantPhase)
		}
		if st, ok := fl.Status(); st != wantStatus || ok != wantHas {
			t.Errorf("Filter(%q) Status() = %d, %v, want %d, %v", console, st, ok, wantStatus, wantHas)
		}
	})
}
