package testvm

import (
	"strings"
	"testing"
)

func TestBeatScanner(t *testing.T) {
	long := strings.Repeat("x", 2*maxBeatLine)
	tests := []struct {
		name      string
		stream    string
		wantBeats int
		wantLast  string
	}{
		{"beats", "testvm-beat 1.52\ntestvm-beat 3.61\n", 2, "3.61"},
		{"carriage returns", "testvm-beat 1.52\r\ntestvm-beat 3.61\r\n", 2, "3.61"},
		{"partial last line waits for its end", "testvm-beat 1.52\ntestvm-beat 3.6", 1, "1.52"},
		{"noise is no beat", "\x00\xff\ngarbage\ntestvm-beat\ntestvm-beat \ntestvm-beat x\ntestvm-beat -1\nTESTVM-BEAT 2\n", 0, ""},
		{"a long line is dropped whole", long + "testvm-beat 9\ntestvm-beat 10\n", 1, "10"},
		{"an overlong beat is none", "testvm-beat 1\ntestvm-beat " + strings.Repeat("9", maxBeatLine) + "\n", 1, "1"},
		{"empty", "", 0, ""},
	}
	for _, tt := range tests {
		// Every way of cutting the stream into writes must give the same.
		for chunk := 1; chunk <= max(len(tt.stream), 1); chunk++ {
			calls := 0
			s := &beatScanner{alive: func() { calls++ }}
			for i := 0; i < len(tt.stream); i += chunk {
				p := tt.stream[i:min(i+chunk, len(tt.stream))]
				if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
					t.Fatalf("%s: Write(%q) = %d, %v, want all of it", tt.name, p, n, err)
				}
			}
			if s.beats != tt.wantBeats || calls != tt.wantBeats || s.last != tt.wantLast {
				t.Errorf("%s in %d-byte writes: %d beats (%d alive calls), last %q; want %d, last %q",
					tt.name, chunk, s.beats, calls, s.last, tt.wantBeats, tt.wantLast)
			}
		}
	}
}
