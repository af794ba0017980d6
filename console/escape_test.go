package console

import (
	"bytes"
	"testing"
)

func TestEscapeDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantOut string
		wantCmd Command
		wantN   int
	}{
		{"plain", "ls -l\r", "ls -l\r", None, 6},
		{"empty", "", "", None, 0},
		{"quit", "ab\x01xcd", "ab", Quit, 4},
		{"quit upper", "\x01X", "", Quit, 2},
		{"help", "\x01h", "", Help, 2},
		{"literal Ctrl-A", "a\x01\x01b", "a\x01b", None, 4},
		{"unknown key", "\x01z", "\x01z", None, 2},
		{"Ctrl-C passes", "\x03", "\x03", None, 1},
		{"trailing Ctrl-A held", "a\x01", "a", None, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Escape
			out, cmd, n := e.Decode(nil, []byte(tt.in))
			if string(out) != tt.wantOut || cmd != tt.wantCmd || n != tt.wantN {
				t.Errorf("Decode(%q) = %q, %v, %d, want %q, %v, %d", tt.in, out, cmd, n, tt.wantOut, tt.wantCmd, tt.wantN)
			}
		})
	}
}

func TestEscapeAcrossReads(t *testing.T) {
	tests := []struct {
		name    string
		chunks  []string
		wantOut string
		wantCmd Command
	}{
		{"quit split", []string{"a\x01", "x"}, "a", Quit},
		{"literal split", []string{"\x01", "\x01", "b"}, "\x01b", None},
		{"other split", []string{"\x01", "q"}, "\x01q", None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Escape
			var out []byte
			cmd := None
			for _, c := range tt.chunks {
				out, cmd, _ = e.Decode(out, []byte(c))
			}
			if !bytes.Equal(out, []byte(tt.wantOut)) || cmd != tt.wantCmd {
				t.Errorf("Decode(%q) = %q, %v, want %q, %v", tt.chunks, out, cmd, tt.wantOut, tt.wantCmd)
			}
		})
	}
}
