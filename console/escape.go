package console

// Escape decodes the console's escape key, as QEMU's character multiplexer
// does: Ctrl-A followed by a command key. Everything else passes through.
//
//	Ctrl-A x        quit the VM
//	Ctrl-A h        print help
//	Ctrl-A Ctrl-A   send one Ctrl-A to the guest
//	Ctrl-A other    send both bytes to the guest
//
// Escape is a plain value with no I/O, so it is tested without a terminal.
// The zero value is ready to use.
type Escape struct {
	armed bool // the last byte was an unanswered Ctrl-A
}

// EscapeKey is Ctrl-A.
const EscapeKey = 0x01

// Command is what an escape sequence asks for.
type Command int

const (
	None Command = iota // no command: keep going
	Quit                // Ctrl-A x
	Help                // Ctrl-A h
)

func (c Command) String() string {
	switch c {
	case Quit:
		return "quit"
	case Help:
		return "help"
	}
	return "none"
}

// Decode appends the bytes of in that are meant for the guest to out. It
// stops after the first command: n is how many bytes of in it consumed, and
// the caller acts on cmd before decoding in[n:]. A Ctrl-A at the end of in
// is remembered for the next call.
func (e *Escape) Decode(out, in []byte) (_ []byte, cmd Command, n int) {
	for i, b := range in {
		if !e.armed {
			if b == EscapeKey {
				e.armed = true
			} else {
				out = append(out, b)
			}
			continue
		}
		e.armed = false
		switch b {
		case 'x', 'X':
			return out, Quit, i + 1
		case 'h', 'H', '?':
			return out, Help, i + 1
		case EscapeKey:
			out = append(out, EscapeKey)
		default:
			out = append(out, EscapeKey, b)
		}
	}
	return out, None, len(in)
}

// HelpText is printed for Ctrl-A h. Lines end in CR LF because the terminal
// is in raw mode.
const HelpText = "\r\n" +
	"govmm console escape keys:\r\n" +
	"  Ctrl-A x       quit the VM\r\n" +
	"  Ctrl-A h       show this help\r\n" +
	"  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n"
