package testvm

import (
	"bytes"
	"strconv"
	"strings"
)

// The heartbeat: from early in /init until power-off, a background loop
// writes beatPrefix and the machine's uptime (from /proc/uptime) on a line
// to COM2 (/dev/ttyS1) every beatSeconds. QEMU passes COM2 to Run through a
// pipe, apart from the console, so the beats say the machine runs even
// while the program prints nothing, as an idle interactive shell does.
const (
	beatPrefix  = "testvm-beat "
	beatSeconds = 2
	beatDevice  = "/dev/ttyS1"
)

// maxBeatLine bounds the partial line beatScanner keeps: a heartbeat is
// short, and anything longer is not one.
const maxBeatLine = 64

// beatScanner reads the heartbeat stream. Each complete heartbeat line
// calls alive; other bytes are dropped. Write never fails, so the pipe
// keeps draining and QEMU never blocks on it. Read beats and last after the
// stream has ended.
type beatScanner struct {
	alive func()
	part  []byte
	long  bool   // the current line outgrew maxBeatLine
	beats int    // heartbeats seen
	last  string // the uptime in the last one
}

func (s *beatScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line, rest, complete := bytes.Cut(p, []byte("\n"))
		if len(s.part)+len(line) > maxBeatLine {
			s.long, s.part = true, s.part[:0]
		} else if !s.long {
			s.part = append(s.part, line...)
		}
		if !complete {
			break
		}
		if !s.long {
			s.line(string(s.part))
		}
		s.part, s.long = s.part[:0], false
		p = rest
	}
	return n, nil
}

// line takes one line: a heartbeat is beatPrefix and an uptime in seconds.
func (s *beatScanner) line(l string) {
	up, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), beatPrefix)
	if !ok {
		return
	}
	if f, err := strconv.ParseFloat(up, 64); err != nil || f < 0 {
		return
	}
	s.beats++
	s.last = up
	if s.alive != nil {
		s.alive()
	}
}
