package gdbstub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Target is what the stub debugs: a machine with vCPUs numbered from 0
// (gdb's threads 1 to Threads()), stopped by the stub or running.
type Target interface {
	// Threads is how many vCPUs there are.
	Threads() int
	// Interrupt stops every vCPU; Wait then reports it. It returns at once.
	Interrupt()
	// Wait waits for the machine's next stop, or its end.
	Wait(ctx context.Context) (StopEvent, error)
	// Continue runs every vCPU; Step runs one instruction on vCPU id while
	// the others stay stopped.
	Continue(ctx context.Context) error
	Step(ctx context.Context, id int) error
	ReadRegs(ctx context.Context, id int) (Regs, error)
	// WriteRegs sets the general-purpose registers, RIP and EFLAGS from
	// r; the rest of r is ignored.
	WriteRegs(ctx context.Context, id int, r Regs) error
	// ReadMemory and WriteMemory work on virtual (linear) addresses as
	// vCPU id translates them.
	ReadMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error)
	WriteMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error)
	// AddBreakpoint and RemoveBreakpoint set and clear a breakpoint at
	// addr; hard asks for a debug register (Z1) rather than any kind (Z0).
	AddBreakpoint(ctx context.Context, addr uint64, hard bool) error
	RemoveBreakpoint(ctx context.Context, addr uint64, hard bool) error
	// ThreadInfo describes vCPU id for gdb's "info threads".
	ThreadInfo(id int) string
	// Kill ends the VM. Detach clears every breakpoint and lets the
	// machine run on without the stub.
	Kill()
	Detach(ctx context.Context) error
}

// StopEvent is why the target stopped, or how it ended.
type StopEvent struct {
	Thread int // the vCPU that stopped
	// Signal is the signal gdb is told: SIGTRAP for steps and breakpoints,
	// SIGINT for an interrupt.
	Signal int
	// SWBreak and HWBreak say a breakpoint of that kind was hit (the
	// swbreak and hwbreak stop reasons, when gdb supports them).
	SWBreak, HWBreak bool
	// Exited says the VM has ended; Status is then the guest's exit
	// status (gdb's W) unless Killed says it ended with Signal (X).
	Exited bool
	Status int
	Killed bool
}

// Signals, as gdb numbers them (include/gdb/signals.def).
const (
	SIGINT  = 2
	SIGTRAP = 5
	SIGKILL = 9
	SIGSEGV = 11
)

// Stub serves one gdb connection.
type Stub struct {
	t   Target
	rw  io.ReadWriter
	log io.Writer // nil: quiet

	noAck    bool
	swbreak  bool // gdb understands the swbreak stop reason
	hwbreak  bool
	gThread  int // Hg: the vCPU register and memory packets use
	cThread  int // Hc: the vCPU s and c act on (-1: all)
	lastStop StopEvent
}

// New returns a stub that debugs t for the gdb on rw. The target must be
// stopping or stopped: Serve waits for that stop first. log, if not nil,
// gets every packet.
func New(t Target, rw io.ReadWriter, log io.Writer) *Stub {
	return &Stub{t: t, rw: rw, log: log, lastStop: StopEvent{Signal: SIGTRAP}}
}

// errDone ends Serve without an error: detach, kill, the VM's end.
var errDone = errors.New("session over")

// Serve runs the session until gdb detaches or kills the VM, the VM ends,
// the connection closes (then the machine runs on, as after detach) or
// ctx is done.
func (s *Stub) Serve(ctx context.Context) error {
	// The target was stopped for gdb before it came: take that stop, as
	// the reply to gdb's first question (?), a SIGTRAP as after an attach.
	first, err := s.t.Wait(ctx)
	if err != nil {
		return err
	}
	first.Signal = SIGTRAP
	s.lastStop, s.gThread = first, first.Thread
	events := make(chan Event)
	readErr := make(chan error, 1)
	go s.readLoop(events, readErr)
	for {
		select {
		case ev := <-events:
			err := s.event(ctx, ev, events, readErr)
			if errors.Is(err, errDone) {
				return nil
			}
			if err != nil {
				return err
			}
		case err := <-readErr:
			// gdb went away: let the guest run on without it.
			derr := s.t.Detach(ctx)
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return errors.Join(err, derr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readLoop turns the byte stream into events.
func (s *Stub) readLoop(events chan<- Event, readErr chan<- error) {
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		for {
			ev, n, err := ParseEvent(buf)
			buf = buf[n:]
			if errors.Is(err, ErrNeedMore) {
				break
			}
			if err != nil {
				ev = Event{Kind: EventBadPacket}
			}
			events <- ev
		}
		n, err := s.rw.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			readErr <- err
			return
		}
	}
}

// event handles one thing from gdb while the target is stopped.
func (s *Stub) event(ctx context.Context, ev Event, events <-chan Event, readErr <-chan error) error {
	switch ev.Kind {
	case EventAck, EventNack, EventInterrupt:
		// A nack of our last reply would ask for it again: gdb does so
		// only on a corrupted line. An interrupt while stopped is moot.
		return nil
	case EventBadPacket:
		if !s.noAck {
			return s.write([]byte("-"))
		}
		return nil
	}
	if s.log != nil {
		fmt.Fprintf(s.log, "gdb <- %s\n", ev.Payload)
	}
	if !s.noAck {
		if err := s.write([]byte("+")); err != nil {
			return err
		}
	}
	reply, resume, err := s.command(ctx, ev.Payload)
	if err != nil && !errors.Is(err, errDone) {
		reply = []byte(fmt.Sprintf("E%02x", 1))
		if s.log != nil {
			fmt.Fprintf(s.log, "gdb: %v\n", err)
		}
	}
	if reply != nil {
		if werr := s.send(reply); werr != nil {
			return werr
		}
	}
	if errors.Is(err, errDone) {
		return err
	}
	if resume {
		return s.running(ctx, events, readErr)
	}
	return nil
}

// running waits for the target to stop, passing Ctrl-C on, then sends
// the stop reply.
func (s *Stub) running(ctx context.Context, events <-chan Event, readErr <-chan error) error {
	type result struct {
		st  StopEvent
		err error
	}
	stopped := make(chan result, 1)
	go func() {
		st, err := s.t.Wait(ctx)
		stopped <- result{st, err}
	}()
	for {
		select {
		case ev := <-events:
			if ev.Kind == EventInterrupt {
				s.t.Interrupt()
			}
		case r := <-stopped:
			if r.err != nil {
				return r.err
			}
			s.lastStop = r.st
			if err := s.send(s.stopReply(r.st)); err != nil {
				return err
			}
			if r.st.Exited {
				return errDone
			}
			s.gThread = r.st.Thread
			return nil
		case err := <-readErr:
			s.t.Interrupt()
			<-stopped
			return errors.Join(err, s.t.Detach(ctx))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopReply is the T, W or X packet for a stop (E.3 "Stop Reply Packets").
func (s *Stub) stopReply(st StopEvent) []byte {
	switch {
	case st.Exited && st.Killed:
		return []byte(fmt.Sprintf("X%02x", st.Signal))
	case st.Exited:
		return []byte(fmt.Sprintf("W%02x", st.Status&0xff))
	}
	r := fmt.Sprintf("T%02xthread:%x;", st.Signal, st.Thread+1)
	if st.SWBreak && s.swbreak {
		r += "swbreak:;"
	}
	if st.HWBreak && s.hwbreak {
		r += "hwbreak:;"
	}
	return []byte(r)
}

func (s *Stub) send(payload []byte) error {
	if s.log != nil {
		fmt.Fprintf(s.log, "gdb -> %s\n", payload)
	}
	return s.write(Frame(payload))
}

func (s *Stub) write(b []byte) error {
	_, err := s.rw.Write(b)
	return err
}

// thread turns gdb's thread id into a vCPU: 0 (any) and -1 (all) are
// the given default; others count from 1.
func (s *Stub) thread(id int64, def int) (int, error) {
	switch {
	case id == 0 || id == -1:
		return def, nil
	case id < 1 || id > int64(s.t.Threads()):
		return 0, fmt.Errorf("no thread %d", id)
	}
	return int(id - 1), nil
}

// command carries out one packet. It returns the reply (nil for none),
// and whether the target now runs (the reply then comes when it stops).
func (s *Stub) command(ctx context.Context, p []byte) ([]byte, bool, error) {
	if len(p) == 0 {
		return []byte{}, false, nil
	}
	c, err := Decode(p)
	if err != nil {
		return nil, false, err
	}
	ok := []byte("OK")
	switch c.Kind {
	case CmdUnsupported:
		return []byte{}, false, nil
	case CmdSupported:
		s.swbreak = bytes.Contains(p, []byte("swbreak+"))
		s.hwbreak = bytes.Contains(p, []byte("hwbreak+"))
		return []byte(fmt.Sprintf("PacketSize=%x;qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+", maxPacket)), false, nil
	case CmdNoAck:
		s.noAck = true // from after the OK (the OK is still acked)
		return ok, false, nil
	case CmdXferFeatures:
		if c.Annex != "target.xml" {
			return []byte("E00"), false, nil
		}
		return xfer(targetXML(), c.Addr, c.Len), false, nil
	case CmdHaltReason:
		return s.stopReply(s.lastStop), false, nil
	case CmdSetThread:
		id, err := s.thread(c.Thread, 0)
		if err != nil {
			return nil, false, err
		}
		if c.Op == 'g' {
			s.gThread = id
		} else {
			s.cThread = id
			if c.Thread == -1 || c.Thread == 0 {
				s.cThread = -1
			}
		}
		return ok, false, nil
	case CmdCurrentThread:
		return []byte(fmt.Sprintf("QC%x", s.lastStop.Thread+1)), false, nil
	case CmdThreadInfoFirst, CmdThreadInfoNext:
		if c.Kind == CmdThreadInfoFirst {
			var b strings.Builder
			b.WriteString("m")
			for i := range s.t.Threads() {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "%x", i+1)
			}
			return []byte(b.String()), false, nil
		}
		return []byte("l"), false, nil
	case CmdThreadExtra:
		id, err := s.thread(c.Thread, 0)
		if err != nil {
			return nil, false, err
		}
		return appendHexBytes(nil, []byte(s.t.ThreadInfo(id))), false, nil
	case CmdThreadAlive:
		if _, err := s.thread(c.Thread, 0); err != nil {
			return []byte("E01"), false, nil
		}
		return ok, false, nil
	case CmdAttached:
		return []byte("1"), false, nil
	case CmdSymbol:
		return ok, false, nil
	case CmdReadRegs:
		r, err := s.t.ReadRegs(ctx, s.gThread)
		if err != nil {
			return nil, false, err
		}
		return encodeRegs(&r), false, nil
	case CmdWriteRegs:
		r, err := s.t.ReadRegs(ctx, s.gThread)
		if err != nil {
			return nil, false, err
		}
		if err := decodeRegs(&r, c.Data); err != nil {
			return nil, false, err
		}
		return ok, false, s.t.WriteRegs(ctx, s.gThread, r)
	case CmdReadReg, CmdWriteReg:
		if c.Reg < 0 || c.Reg >= len(registers()) {
			return []byte("E00"), false, nil
		}
		r, err := s.t.ReadRegs(ctx, s.gThread)
		if err != nil {
			return nil, false, err
		}
		rg := registers()[c.Reg]
		if c.Kind == CmdReadReg {
			return appendHexBytes(nil, rg.get(&r)), false, nil
		}
		b, err := decodeHex(c.Data)
		if err != nil || len(b) != rg.bits/8 {
			return []byte("E00"), false, nil
		}
		rg.set(&r, b)
		return ok, false, s.t.WriteRegs(ctx, s.gThread, r)
	case CmdReadMem:
		buf := make([]byte, c.Len)
		n, err := s.t.ReadMemory(ctx, s.gThread, c.Addr, buf)
		if n == 0 && err != nil {
			return []byte("E14"), false, nil // EFAULT
		}
		return appendHexBytes(nil, buf[:n]), false, nil
	case CmdWriteMem, CmdWriteMemBinary:
		data := c.Data
		if c.Kind == CmdWriteMem {
			if data, err = decodeHex(c.Data); err != nil {
				return nil, false, err
			}
		}
		if len(data) != int(c.Len) {
			return []byte("E00"), false, nil
		}
		if n, err := s.t.WriteMemory(ctx, s.gThread, c.Addr, data); err != nil || n != len(data) {
			return []byte("E14"), false, nil
		}
		return ok, false, nil
	case CmdContinue, CmdStep:
		id := s.cThread
		if id < 0 {
			id = s.lastStop.Thread
		}
		if c.HasAddr {
			r, err := s.t.ReadRegs(ctx, id)
			if err != nil {
				return nil, false, err
			}
			r.RIP = c.Addr
			if err := s.t.WriteRegs(ctx, id, r); err != nil {
				return nil, false, err
			}
		}
		if c.Kind == CmdStep {
			return nil, true, s.t.Step(ctx, id)
		}
		return nil, true, s.t.Continue(ctx)
	case CmdBreakpoint, CmdRemoveBreakpoint:
		if c.Type > 1 {
			return []byte{}, false, nil // watchpoints: not offered
		}
		var err error
		if c.Kind == CmdBreakpoint {
			err = s.t.AddBreakpoint(ctx, c.Addr, c.Type == 1)
		} else {
			err = s.t.RemoveBreakpoint(ctx, c.Addr, c.Type == 1)
		}
		if err != nil {
			return []byte("E0e"), false, nil
		}
		return ok, false, nil
	case CmdKill:
		s.t.Kill()
		return nil, false, errDone
	case CmdDetach:
		return ok, false, errors.Join(s.t.Detach(ctx), errDone)
	}
	return []byte{}, false, nil
}

// xfer is one piece of a qXfer read: m and more to come, l and the last.
func xfer(doc string, off uint64, n uint64) []byte {
	if off >= uint64(len(doc)) {
		return []byte("l")
	}
	end := min(off+n, uint64(len(doc)))
	kind := byte('m')
	if end == uint64(len(doc)) {
		kind = 'l'
	}
	return append([]byte{kind}, doc[off:end]...)
}

// parseHex reads a hex number.
func parseHex(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 16 {
		return 0, fmt.Errorf("%q: want 1 to 16 hex digits", b)
	}
	return strconv.ParseUint(string(b), 16, 64)
}
