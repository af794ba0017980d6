package testvm

import (
	"bytes"
	"io"
	"regexp"
	"strings"
)

// exitScanner reads the guest's serial output: it drops what comes before
// the start marker (firmware and boot noise), passes what follows to out
// until the exit marker, which it removes together with everything after it,
// and keeps the status word that follows the exit marker. Output that might
// begin a marker is held back until the next write shows it does not. Every
// line, passed on or not, is kept in tail for error messages.
type exitScanner struct {
	out      io.Writer
	start    []byte
	marker   []byte
	started  bool   // start marker seen: output goes to out
	skipLine bool   // drop output up to the end of the start marker's line
	held     []byte // a possible start of the marker
	found    bool   // marker seen; collecting the status
	status   []byte
	done     bool // status line complete
	err      error
	tail     tailLines
}

func newExitScanner(out io.Writer, start, marker string) *exitScanner {
	return &exitScanner{out: out, start: []byte(start), marker: []byte(marker), tail: tailLines{max: 30}}
}

// Write never fails, so that QEMU's output keeps draining; an error from
// out is kept for err.
func (s *exitScanner) Write(p []byte) (int, error) {
	s.scan(p)
	return len(p), nil
}

func (s *exitScanner) scan(p []byte) {
	if s.done {
		return
	}
	if s.found {
		line, _, complete := bytes.Cut(p, []byte("\n"))
		if len(s.status)+len(line) <= 64 {
			s.status = append(s.status, line...)
		}
		s.done = complete
		return
	}
	if s.skipLine { // the rest of the start marker's line
		_, rest, complete := bytes.Cut(p, []byte("\n"))
		if !complete {
			return
		}
		s.skipLine = false
		p = rest
	}
	buf := append(s.held, p...)
	s.held = nil
	iStart, iExit := -1, bytes.Index(buf, s.marker)
	if !s.started {
		iStart = bytes.Index(buf, s.start)
	}
	switch {
	case iStart >= 0 && (iExit < 0 || iStart < iExit):
		s.emit(buf[:iStart])
		s.started, s.skipLine = true, true
		s.tail.add([]byte("\n"))
		s.scan(buf[iStart+len(s.start):])
		return
	case iExit >= 0:
		s.emit(buf[:iExit])
		s.found = true
		s.scan(buf[iExit+len(s.marker):])
		return
	}
	keep := overlap(buf, s.marker)
	if !s.started {
		keep = max(keep, overlap(buf, s.start))
	}
	s.emit(buf[:len(buf)-keep])
	s.held = append([]byte(nil), buf[len(buf)-keep:]...)
}

// flush passes on held output: call it when the stream ends.
func (s *exitScanner) flush() {
	s.emit(s.held)
	s.held = nil
}

func (s *exitScanner) emit(p []byte) {
	if len(p) == 0 {
		return
	}
	s.tail.add(p)
	if s.started && s.err == nil {
		_, s.err = s.out.Write(p)
	}
}

// result returns the word after the marker, and whether the marker was seen.
func (s *exitScanner) result() (string, bool) {
	return strings.TrimSpace(string(s.status)), s.found
}

// overlap returns the length of the longest suffix of b that is a proper
// prefix of marker.
func overlap(b, marker []byte) int {
	n := min(len(b), len(marker)-1)
	for ; n > 0; n-- {
		if bytes.HasSuffix(b, marker[:n]) {
			return n
		}
	}
	return 0
}

// tailLines keeps the last max lines written to it, for error messages.
type tailLines struct {
	max   int
	lines []string
	part  []byte
}

func (t *tailLines) add(p []byte) {
	for len(p) > 0 {
		line, rest, complete := bytes.Cut(p, []byte("\n"))
		if !complete {
			if len(t.part) < 4096 {
				t.part = append(t.part, line...)
			}
			return
		}
		t.lines = append(t.lines, printable(string(t.part)+string(line)))
		t.part = t.part[:0]
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
		p = rest
	}
}

func (t *tailLines) String() string {
	all := t.lines
	if len(t.part) > 0 {
		all = append(append([]string{}, all...), printable(string(t.part)))
	}
	return strings.Join(all, "\n")
}

// terminalEscape matches an ANSI escape sequence: a control sequence
// (ESC [ ... final byte) or ESC and one more byte. The firmware clears the
// screen with some ("ESC c" resets a terminal), and an error message that
// quotes the guest's lines must not.
var terminalEscape = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|.?)`)

// printable returns line without terminal escapes and control characters
// other than tabs.
func printable(line string) string {
	line = terminalEscape.ReplaceAllString(line, "")
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, line)
}
