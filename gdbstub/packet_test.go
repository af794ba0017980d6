package gdbstub

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		in       string
		kind     EventKind
		payload  string
		consumed int
		err      error
	}{
		{"+", EventAck, "", 1, nil},
		{"-", EventNack, "", 1, nil},
		{"\x03", EventInterrupt, "", 1, nil},
		{"$g#67", EventPacket, "g", 5, nil},
		{"$#00", EventPacket, "", 4, nil},
		{"$g#67$?#3f", EventPacket, "g", 5, nil},
		{"noise$g#67", EventPacket, "g", 10, nil},
		{"$g#68", EventBadPacket, "", 5, nil},
		{"$g#zz", EventBadPacket, "", 5, nil},
		{"$X0,1:}]#f9", EventPacket, "X0,1:}", 11, nil}, // } escapes ']' (0x5d) to '}' (0x7d)
		{"$g$?#3f", EventBadPacket, "", 2, nil},         // a packet cut off by the next
		{"$g#6", 0, "", 0, ErrNeedMore},
		{"$g", 0, "", 0, ErrNeedMore},
		{"$ab}", 0, "", 0, ErrNeedMore},
		{"xyz", 0, "", 3, ErrNeedMore},
	}
	for _, tt := range tests {
		ev, n, err := ParseEvent([]byte(tt.in))
		if ev.Kind != tt.kind || string(ev.Payload) != tt.payload || n != tt.consumed || !errors.Is(err, tt.err) {
			t.Errorf("ParseEvent(%q) = %v %q, %d, %v, want %v %q, %d, %v", tt.in, ev.Kind, ev.Payload, n, err, tt.kind, tt.payload, tt.consumed, tt.err)
		}
	}
}

func TestFrame(t *testing.T) {
	tests := []struct{ payload, want string }{
		{"OK", "$OK#9a"},
		{"", "$#00"},
		{"a#b", "$a}\x03b#43"},
		{"$}*", "$}\x04}]}\x0a#e2"},
	}
	for _, tt := range tests {
		got := Frame([]byte(tt.payload))
		if string(got) != tt.want {
			t.Errorf("Frame(%q) = %q, want %q", tt.payload, got, tt.want)
		}
		ev, n, err := ParseEvent(got)
		if err != nil || ev.Kind != EventPacket || string(ev.Payload) != tt.payload || n != len(got) {
			t.Errorf("ParseEvent(Frame(%q)) = %v %q, %d, %v", tt.payload, ev.Kind, ev.Payload, n, err)
		}
	}
}

// checksumOK recomputes a raw packet's checksum: the sum of the bytes
// between $ and #, escapes as they were sent.
func checksumOK(raw []byte) bool {
	start := bytes.IndexByte(raw, '$')
	end := bytes.LastIndexByte(raw, '#')
	if start < 0 || end < start || end+3 != len(raw) {
		return false
	}
	var sum byte
	for _, c := range raw[start+1 : end] {
		sum += c
	}
	want, ok := hexByte(raw[end+1], raw[end+2])
	return ok && want == sum
}

// FuzzParseEvent holds the packet reader to the protocol on any bytes:
// it never takes more than it was given, a packet it accepts had a
// correct checksum over exactly the bytes it took, and its payload decodes
// (or is refused) without a panic.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{"+$qSupported:multiprocess+;swbreak+#c9", "$m7c00,10#c7", "$X7c00,2:}]}\x03#00", "\x03", "$g#67-", "$Z0,7c22,1#xx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for rest := b; len(rest) > 0; {
			ev, n, err := ParseEvent(rest)
			if n < 0 || n > len(rest) {
				t.Fatalf("ParseEvent took %d of %d bytes", n, len(rest))
			}
			if ev.Kind == EventPacket {
				raw := rest[:n]
				if !checksumOK(raw[bytes.IndexByte(raw, '$'):]) {
					t.Fatalf("accepted %q, whose checksum is wrong", raw)
				}
				c, derr := Decode(ev.Payload)
				if derr == nil && c.Kind == CmdReadMem && c.Len > maxMem {
					t.Fatalf("Decode(%q) asks for %d bytes", ev.Payload, c.Len)
				}
			}
			if errors.Is(err, ErrNeedMore) && n == 0 {
				break
			}
			if n == 0 {
				t.Fatalf("ParseEvent(%q) took nothing without asking for more", rest)
			}
			rest = rest[n:]
		}
	})
}
