package gdbstub

import (
	"bytes"
	"fmt"
)

// CmdKind is a packet the stub understands (E.2 "Packets", E.4 "General
// Query Packets").
type CmdKind int

// Packets. The zero value is none; CmdUnsupported gets the empty reply
// that tells gdb the stub does not know the packet.
const (
	_                   CmdKind = iota
	CmdUnsupported              // anything else
	CmdSupported                // qSupported: features both sides have
	CmdNoAck                    // QStartNoAckMode
	CmdXferFeatures             // qXfer:features:read:ANNEX:OFF,LEN
	CmdHaltReason               // ?
	CmdSetThread                // Hg TID, Hc TID
	CmdCurrentThread            // qC
	CmdThreadInfoFirst          // qfThreadInfo
	CmdThreadInfoNext           // qsThreadInfo
	CmdThreadExtra              // qThreadExtraInfo,TID
	CmdThreadAlive              // T TID
	CmdAttached                 // qAttached
	CmdSymbol                   // qSymbol::
	CmdReadRegs                 // g
	CmdWriteRegs                // G DATA
	CmdReadReg                  // p N
	CmdWriteReg                 // P N=DATA
	CmdReadMem                  // m ADDR,LEN
	CmdWriteMem                 // M ADDR,LEN:HEX
	CmdWriteMemBinary           // X ADDR,LEN:BINARY
	CmdContinue                 // c [ADDR], C SIG[;ADDR]
	CmdStep                     // s [ADDR], S SIG[;ADDR]
	CmdBreakpoint               // Z TYPE,ADDR,KIND
	CmdRemoveBreakpoint         // z TYPE,ADDR,KIND
	CmdKill                     // k
	CmdDetach                   // D, D;PID
)

// Command is a decoded packet.
type Command struct {
	Kind    CmdKind
	Op      byte   // H's g or c
	Thread  int64  // a thread id: -1 all, 0 any, else 1..N
	Addr    uint64 // memory, breakpoint, resume or xfer offset
	Len     uint64
	HasAddr bool // c and s gave an address to resume at
	Reg     int
	Type    int    // Z's breakpoint type: 0 software, 1 hardware, 2-4 watchpoints
	Data    []byte // G's, P's and M's hex, X's bytes
	Annex   string // qXfer's
}

// maxMem is the most memory one m packet may ask for: its reply, two hex
// digits a byte, must fit in a packet.
const maxMem = maxPacket / 2

// Decode parses a packet's payload. An unknown packet is CmdUnsupported;
// a known one with bad arguments is an error.
func Decode(p []byte) (Command, error) {
	if len(p) == 0 {
		return Command{Kind: CmdUnsupported}, nil // an empty packet (found by FuzzParseEvent)
	}
	str := string(p)
	has := func(prefix string) bool { return bytes.HasPrefix(p, []byte(prefix)) }
	switch {
	case str == "?":
		return Command{Kind: CmdHaltReason}, nil
	case str == "g":
		return Command{Kind: CmdReadRegs}, nil
	case str == "k":
		return Command{Kind: CmdKill}, nil
	case str == "D" || has("D;"):
		return Command{Kind: CmdDetach}, nil
	case str == "qC":
		return Command{Kind: CmdCurrentThread}, nil
	case str == "qfThreadInfo":
		return Command{Kind: CmdThreadInfoFirst}, nil
	case str == "qsThreadInfo":
		return Command{Kind: CmdThreadInfoNext}, nil
	case str == "qAttached" || has("qAttached:"):
		return Command{Kind: CmdAttached}, nil
	case str == "qSymbol::":
		return Command{Kind: CmdSymbol}, nil
	case str == "QStartNoAckMode":
		return Command{Kind: CmdNoAck}, nil
	case has("qSupported"):
		return Command{Kind: CmdSupported}, nil
	case has("qXfer:features:read:"):
		return decodeXfer(p[len("qXfer:features:read:"):])
	case has("qThreadExtraInfo,"):
		t, err := parseThread(p[len("qThreadExtraInfo,"):])
		return Command{Kind: CmdThreadExtra, Thread: t}, err
	}
	switch p[0] {
	case 'H':
		if len(p) < 3 || p[1] != 'g' && p[1] != 'c' {
			return Command{Kind: CmdUnsupported}, nil
		}
		t, err := parseThread(p[2:])
		return Command{Kind: CmdSetThread, Op: p[1], Thread: t}, err
	case 'T':
		t, err := parseThread(p[1:])
		return Command{Kind: CmdThreadAlive, Thread: t}, err
	case 'G':
		return Command{Kind: CmdWriteRegs, Data: p[1:]}, nil
	case 'p':
		n, err := parseHex(p[1:])
		if err != nil || n > 0xffff {
			return Command{}, fmt.Errorf("register read %q: bad register number", p)
		}
		return Command{Kind: CmdReadReg, Reg: int(n)}, nil
	case 'P':
		num, val, ok := bytes.Cut(p[1:], []byte("="))
		n, err := parseHex(num)
		if !ok || err != nil || n > 0xffff {
			return Command{}, fmt.Errorf("register write %q: want PN=VALUE", p)
		}
		return Command{Kind: CmdWriteReg, Reg: int(n), Data: val}, nil
	case 'm':
		addr, n, err := addrLen(p[1:])
		if err != nil {
			return Command{}, err
		}
		if n > maxMem {
			return Command{}, fmt.Errorf("m: %d bytes asked, at most %d", n, maxMem)
		}
		return Command{Kind: CmdReadMem, Addr: addr, Len: n}, nil
	case 'M', 'X':
		head, data, ok := bytes.Cut(p[1:], []byte(":"))
		if !ok {
			return Command{}, fmt.Errorf("%c: want ADDR,LEN:DATA", p[0])
		}
		addr, n, err := addrLen(head)
		if err != nil {
			return Command{}, err
		}
		if n > maxPacket {
			return Command{}, fmt.Errorf("%c: %d bytes", p[0], n)
		}
		kind := CmdWriteMem
		if p[0] == 'X' {
			kind = CmdWriteMemBinary
		}
		return Command{Kind: kind, Addr: addr, Len: n, Data: data}, nil
	case 'c', 's', 'C', 'S':
		kind := CmdContinue
		if p[0] == 's' || p[0] == 'S' {
			kind = CmdStep
		}
		rest := p[1:]
		if p[0] == 'C' || p[0] == 'S' {
			// A signal to deliver, which a VM has no use for; then ;ADDR.
			sig, addr, _ := bytes.Cut(rest, []byte(";"))
			if _, err := parseHex(sig); err != nil {
				return Command{}, fmt.Errorf("%c: bad signal %q", p[0], sig)
			}
			rest = addr
		}
		c := Command{Kind: kind}
		if len(rest) > 0 {
			a, err := parseHex(rest)
			if err != nil {
				return Command{}, err
			}
			c.Addr, c.HasAddr = a, true
		}
		return c, nil
	case 'Z', 'z':
		f := bytes.Split(p[1:], []byte(","))
		if len(f) < 3 {
			return Command{}, fmt.Errorf("%c: want TYPE,ADDR,KIND", p[0])
		}
		typ, err := parseHex(f[0])
		if err != nil || typ > 4 {
			return Command{}, fmt.Errorf("%c: bad type %q", p[0], f[0])
		}
		addr, err := parseHex(f[1])
		if err != nil {
			return Command{}, err
		}
		// KIND (the breakpoint's size) may carry ;conditions after it.
		kindField, _, _ := bytes.Cut(f[2], []byte(";"))
		if _, err := parseHex(kindField); err != nil {
			return Command{}, fmt.Errorf("%c: bad kind %q", p[0], f[2])
		}
		kind := CmdBreakpoint
		if p[0] == 'z' {
			kind = CmdRemoveBreakpoint
		}
		return Command{Kind: kind, Type: int(typ), Addr: addr}, nil
	}
	return Command{Kind: CmdUnsupported}, nil
}

// addrLen reads ADDR,LEN.
func addrLen(b []byte) (uint64, uint64, error) {
	a, l, ok := bytes.Cut(b, []byte(","))
	if !ok {
		return 0, 0, fmt.Errorf("%q: want ADDR,LEN", b)
	}
	addr, err := parseHex(a)
	if err != nil {
		return 0, 0, err
	}
	n, err := parseHex(l)
	if err != nil {
		return 0, 0, err
	}
	return addr, n, nil
}

// parseThread reads a thread id: hex, or -1 for all.
func parseThread(b []byte) (int64, error) {
	if string(b) == "-1" {
		return -1, nil
	}
	v, err := parseHex(b)
	if err != nil || v > 1<<31 {
		return 0, fmt.Errorf("bad thread id %q", b)
	}
	return int64(v), nil
}

// decodeXfer reads ANNEX:OFF,LEN.
func decodeXfer(b []byte) (Command, error) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 {
		return Command{}, fmt.Errorf("qXfer: want ANNEX:OFF,LEN")
	}
	off, n, err := addrLen(b[i+1:])
	if err != nil {
		return Command{}, err
	}
	return Command{Kind: CmdXferFeatures, Annex: string(b[:i]), Addr: off, Len: min(n, maxPacket-1)}, nil
}
