package agentproto

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Phase is how far the agent got, as the console shows it.
type Phase int

const (
	// Booting: no Start line yet (kernel, init, modules).
	Booting Phase = iota
	// Running: after the Start line; the command's output is passing.
	Running
	// Exited: the Exit marker has ended the command's output.
	Exited
)

func (p Phase) String() string {
	switch p {
	case Booting:
		return "booting"
	case Running:
		return "running the command"
	case Exited:
		return "the command had ended"
	}
	return "Phase(" + strconv.Itoa(int(p)) + ")"
}

// Filter is the host's reader of a guest console that runs a command for
// `govmm exec`. Everything before the Start line and from the Exit marker
// on is held back (or given, as it comes, to a second writer); the bytes in
// between, the command's output, go to the output writer as they come, as
// they are. Filter keeps the console's last lines for error reports.
//
// The only bytes of the output it holds back are a trailing part of the
// Exit marker's lead ("\x1eGOVMM-AGENT-EXIT "), until the next byte shows
// whether the marker follows. A command that prints that exact sequence
// ends its output there.
//
// Filter is safe for concurrent use.
type Filter struct {
	mu    sync.Mutex
	out   io.Writer // the command's output
	other io.Writer // the rest; nil discards it
	phase Phase
	line  []byte // Booting and Exited: the line so far, capped at maxLine
	match int    // Running: bytes of endOfOutput seen and held back
	pass  []byte // Running: output gathered in one Write

	statusRead bool // Exited: the status line is complete
	status     int
	hasStatus  bool
	err        error // the first failed write

	tail    [TailLines]string // the console's last lines, a ring
	tailN   int               // lines ever completed
	tailCur []byte            // the line being received
	panic   string            // the first line that says the kernel panicked
}

// panicMark starts what Linux prints when it panics (kernel/panic.c).
const panicMark = "Kernel panic - not syncing"

// TailLines is how many of the console's last lines a Filter keeps.
const TailLines = 20

// maxLine caps what a Filter keeps of one line; a longer line is cut.
const maxLine = 512

// NewFilter returns a Filter that writes the command's output to out and
// everything else, as it arrives, to other (nil: nowhere).
func NewFilter(out, other io.Writer) *Filter {
	return &Filter{out: out, other: other}
}

// Write takes console bytes. It always consumes all of p; a failure to
// write the output is kept for Err, so the guest is never held up.
func (f *Filter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(p)
	rest := p
	for len(rest) > 0 {
		switch f.phase {
		case Booting:
			rest = f.booting(rest)
		case Running:
			rest = f.running(rest)
		default:
			rest = f.exited(rest)
		}
	}
	return len(p), nil
}

// booting holds back whole lines until the Start line, and returns what
// follows it.
func (f *Filter) booting(p []byte) []byte {
	for i, b := range p {
		if b != '\n' {
			if len(f.line) < maxLine {
				f.line = append(f.line, b)
			}
			continue
		}
		if string(bytes.TrimSuffix(f.line, []byte("\r"))) == Start {
			f.line = f.line[:0]
			f.toOther(p[:i+1])
			f.phase = Running
			return p[i+1:]
		}
		f.line = f.line[:0]
	}
	f.toOther(p)
	return nil
}

// running passes the command's output and returns what follows the end of
// it.
func (f *Filter) running(p []byte) []byte {
	f.pass = f.pass[:0]
	defer func() { f.toOut(f.pass) }()
	for i, b := range p {
		if b == endOfOutput[f.match] {
			f.match++
			if f.match == len(endOfOutput) {
				f.match = 0
				f.phase = Exited
				f.toOther([]byte(endOfOutput))
				return p[i+1:]
			}
			continue
		}
		// Not the marker after all: what was held is output. The lead
		// byte appears in endOfOutput only at its start, so the only
		// place a new match can begin is b itself.
		f.pass = append(f.pass, endOfOutput[:f.match]...)
		f.match = 0
		if b == endOfOutput[0] {
			f.match = 1
			continue
		}
		f.pass = append(f.pass, b)
	}
	return nil
}

// exited reads the status on the Exit marker's line and holds back the
// rest.
func (f *Filter) exited(p []byte) []byte {
	f.toOther(p)
	for _, b := range p {
		if f.statusRead {
			break
		}
		if b != '\n' {
			if len(f.line) < maxLine {
				f.line = append(f.line, b)
			}
			continue
		}
		f.status, f.hasStatus = parseStatus(bytes.TrimSuffix(f.line, []byte("\r")))
		f.statusRead = true
	}
	return nil
}

// parseStatus reads an exit status: 1 to 3 decimal digits, at most 255.
func parseStatus(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 255 {
		return 0, false
	}
	return n, true
}

func (f *Filter) toOut(b []byte) {
	if len(b) == 0 {
		return
	}
	if _, err := f.out.Write(b); err != nil && f.err == nil {
		f.err = fmt.Errorf("writing the command's output: %w", err)
	}
}

func (f *Filter) toOther(b []byte) {
	if len(b) == 0 || f.other == nil {
		return
	}
	if _, err := f.other.Write(b); err != nil && f.err == nil {
		f.err = fmt.Errorf("writing the guest's console: %w", err)
	}
}

// record keeps the console's last lines, carriage returns dropped.
func (f *Filter) record(p []byte) {
	for _, b := range p {
		switch {
		case b == '\n':
			if f.panic == "" && bytes.Contains(f.tailCur, []byte(panicMark)) {
				f.panic = string(f.tailCur[bytes.Index(f.tailCur, []byte(panicMark)):])
			}
			f.tail[f.tailN%TailLines] = string(f.tailCur)
			f.tailN++
			f.tailCur = f.tailCur[:0]
		case b == '\r':
		case len(f.tailCur) < maxLine:
			f.tailCur = append(f.tailCur, b)
		}
	}
}

// Phase says how far the agent got.
func (f *Filter) Phase() Phase {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.phase
}

// Status returns the status the Exit marker gave, if a well-formed one
// has arrived.
func (f *Filter) Status() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.hasStatus
}

// Err is the first error writing to out or other.
func (f *Filter) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Panic returns the kernel's panic line ("Kernel panic - not syncing:
// ...") if the console showed one, else "".
func (f *Filter) Panic() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.panic
}

// Tail returns up to n of the console's last lines, oldest first, the
// unfinished last line included. n is at most TailLines.
func (f *Filter) Tail(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n = max(0, min(n, TailLines))
	var lines []string
	if len(f.tailCur) > 0 && n > 0 {
		lines = append(lines, string(f.tailCur))
		n--
	}
	for i := 0; i < n && i < f.tailN; i++ {
		lines = append(lines, f.tail[(f.tailN-1-i)%TailLines])
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines
}
