package stepper

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/govmm/govmm/debugger"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/trace"
	"github.com/govmm/govmm/vcpu"
)

// Config is what a Stepper works with.
type Config struct {
	Debugger *debugger.Debugger
	Out      io.Writer
	// Prompt says the input is a terminal: print a prompt before each
	// command. From a pipe the stepper echoes each command instead, so
	// its output reads as a session.
	Prompt bool
	// Highlight marks changed registers in reverse video (a terminal);
	// otherwise with a *.
	Highlight bool
	Symbols   *Symbols
	// Stats returns the exit statistics so far; nil when there are none.
	Stats func() trace.Snapshot
	// Quit ends the VM.
	Quit func()
}

// Stepper runs the command loop.
type Stepper struct {
	Config
	cur      int               // the vCPU commands act on
	last     map[int]*regState // registers at each vCPU's last report
	history  map[int][]uint64  // each vCPU's PCs at its last stops, oldest first
	snap     trace.Snapshot    // statistics at the last stop
	before   trace.Snapshot    // statistics at the stop before it
	prev     Command           // for an empty line
	havePrev bool
}

type regState struct {
	regs  kvm.Regs
	sregs kvm.Sregs
}

// historyLen is how many earlier stops disas shows.
const historyLen = 3

// New makes a stepper.
func New(c Config) *Stepper {
	return &Stepper{Config: c, last: map[int]*regState{}, history: map[int][]uint64{}}
}

// Run reports the first stop (the machine must be stopped or stopping,
// see debugger.StopAll), then reads commands from in until quit, the end
// of in (which quits too) or the guest's end.
func (s *Stepper) Run(ctx context.Context, in io.Reader) error {
	d := s.Debugger
	stop, err := d.Wait(ctx)
	if errors.Is(err, debugger.ErrEnded) {
		fmt.Fprintln(s.Out, "the guest ended before it could be stopped")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(s.Out, "govmm step: the guest is stopped before its first instruction; help lists the commands")
	s.takeStats()
	if err := s.report(ctx, stop, true); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for {
		if s.Prompt {
			fmt.Fprint(s.Out, "(step) ")
		}
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, "end of input: quitting")
			s.quit()
			return nil
		}
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // a comment in a script
		}
		if !s.Prompt {
			fmt.Fprintf(s.Out, "(step) %s\n", line)
		}
		var c Command
		if line == "" {
			if !s.havePrev {
				continue
			}
			c = s.prev
		} else if c, err = Parse(line); err != nil {
			fmt.Fprintf(s.Out, "%v\n", err)
			continue
		}
		s.prev, s.havePrev = c, true
		ended, err := s.do(ctx, c)
		if ended {
			fmt.Fprintln(s.Out, "the guest has ended")
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%v\n", err)
		}
		if c.Op == OpQuit {
			return nil
		}
	}
}

func (s *Stepper) quit() {
	if s.Quit != nil {
		s.Quit()
	}
}

// do runs one command. ended says the guest is gone.
func (s *Stepper) do(ctx context.Context, c Command) (bool, error) {
	d := s.Debugger
	switch c.Op {
	case OpStep:
		for i := 0; i < c.N; i++ {
			if err := d.Step(ctx, s.cur); err != nil {
				return false, err
			}
			stop, ended, err := s.wait(ctx)
			if ended || err != nil {
				return ended, err
			}
			if err := s.report(ctx, stop, false); err != nil {
				return false, err
			}
			if stop.Why != debugger.Stepped {
				break
			}
		}
		return false, nil
	case OpNext, OpCont:
		run := d.Continue
		if c.Op == OpNext {
			run = d.RunToExit
		}
		if err := run(ctx); err != nil {
			return false, err
		}
		stop, ended, err := s.wait(ctx)
		if ended || err != nil {
			return ended, err
		}
		return false, s.report(ctx, stop, false)
	case OpBreak:
		return false, s.doBreak(ctx, c)
	case OpRegs:
		return false, s.regs(ctx)
	case OpMem:
		return false, s.mem(ctx, c)
	case OpDisas:
		return false, s.disas(ctx, c.N)
	case OpStats:
		s.stats()
		return false, nil
	case OpVCPU:
		if c.N >= d.VCPUs() {
			return false, fmt.Errorf("no vCPU %d: the machine has %d", c.N, d.VCPUs())
		}
		s.cur = c.N
		fmt.Fprintf(s.Out, "vCPU %d\n", c.N)
		return false, nil
	case OpHelp:
		fmt.Fprint(s.Out, Help)
		return false, nil
	case OpQuit:
		s.quit()
		return false, nil
	}
	return false, fmt.Errorf("command %v not done", c.Op)
}

// wait waits for the machine's next stop.
func (s *Stepper) wait(ctx context.Context) (debugger.Stop, bool, error) {
	stop, err := s.Debugger.Wait(ctx)
	if errors.Is(err, debugger.ErrEnded) {
		return stop, true, nil
	}
	s.takeStats()
	return stop, false, err
}

func (s *Stepper) takeStats() {
	if s.Stats != nil {
		s.before, s.snap = s.snap, s.Stats()
	}
}

// state reads vCPU id's registers.
func (s *Stepper) state(ctx context.Context, id int) (*regState, error) {
	st := &regState{}
	err := s.Debugger.Do(ctx, id, func(h *vcpu.Handle) error {
		r, err := h.Regs()
		if err != nil {
			return err
		}
		sr, err := h.Sregs()
		if err != nil {
			return err
		}
		st.regs, st.sregs = *r, *sr
		return nil
	})
	return st, err
}

// insnAt decodes the instruction at linear address pc as vCPU id sees it.
func (s *Stepper) insnAt(ctx context.Context, id int, pc, rip uint64, mode vcpu.Mode) (vcpu.Instruction, error) {
	var buf [15]byte
	n, err := s.Debugger.ReadMemory(ctx, id, pc, buf[:])
	if n == 0 {
		return vcpu.Instruction{}, err
	}
	return vcpu.Decode(buf[:n], mode, rip)
}

// report prints a stop: the rip line first, then why, the mode and the
// registers that changed.
func (s *Stepper) report(ctx context.Context, stop debugger.Stop, first bool) error {
	id := stop.VCPU
	s.cur = id
	st, err := s.state(ctx, id)
	if err != nil {
		return err
	}
	mode := vcpu.ModeOf(&st.sregs, st.regs.RFLAGS)
	pc := vcpu.LinearPC(&st.sregs, st.regs.RIP)
	at, atPC := st.regs.RIP, pc
	var text string
	if stop.HaveCulprit && (stop.Why == debugger.AtExit || stop.Why == debugger.GuestExit) {
		at, atPC, text = stop.Culprit.RIP, stop.Culprit.Linear, stop.Culprit.Insn.Text
	} else if in, err := s.insnAt(ctx, id, pc, st.regs.RIP, mode); err == nil {
		text = in.Text
	} else {
		text = fmt.Sprintf("(cannot read the instruction: %v)", err)
	}
	line := fmt.Sprintf("rip=%#x %s", at, text)
	if name := s.Symbols.Name(atPC); name != "" {
		line += "    ; " + name
	}
	fmt.Fprintln(s.Out, line)
	for _, e := range stop.During {
		fmt.Fprintf(s.Out, "  exit during the step: %s\n", e)
	}
	switch stop.Why {
	case debugger.Interrupted:
		if !first {
			fmt.Fprintln(s.Out, "  stopped")
		}
	case debugger.Stepped:
	case debugger.AtBreakpoint:
		fmt.Fprintf(s.Out, "  breakpoint at %#x%s\n", stop.Addr, s.named(stop.Addr))
	case debugger.AtExit, debugger.GuestExit:
		// A read's data is not there yet: govmm has not handled it.
		fmt.Fprintf(s.Out, "  exit: %s\n", trace.GoldenLine(&stop.Exit))
		if stop.Why == debugger.GuestExit {
			fmt.Fprintf(s.Out, "  the guest asks govmm to end the VM with status %d: it ends when you go on\n", stop.Exit.Value(0))
		} else if stop.Break >= 0 {
			bs := s.Debugger.ExitBreaks()
			if stop.Break < len(bs) {
				fmt.Fprintf(s.Out, "  (break on %s)\n", bs[stop.Break])
			}
		}
		if stop.HaveCulprit && stop.Culprit.Done {
			fmt.Fprintf(s.Out, "  KVM already finished this instruction; the guest goes on at %#x once govmm has handled the exit\n", stop.Culprit.Next)
		} else if stop.Exit.Access() {
			fmt.Fprintln(s.Out, "  the instruction completes once govmm has handled the exit")
		}
	case debugger.Trap:
		fmt.Fprintf(s.Out, "  the guest's own int3 at %#x\n", stop.Addr)
	}
	cs := ""
	if mode == vcpu.ModeReal || mode == vcpu.ModeVM86 {
		cs = fmt.Sprintf(", cs:ip %04x:%04x", st.sregs.CS.Selector, at&0xffff)
	}
	vc := ""
	if s.Debugger.VCPUs() > 1 {
		vc = fmt.Sprintf(", vCPU %d", id)
	}
	fmt.Fprintf(s.Out, "  mode %s%s, cpl %d%s\n", mode, cs, st.sregs.CS.DPL, vc)
	if prev := s.last[id]; prev != nil {
		if ch := changed(prev, st); len(ch) > 0 {
			fmt.Fprintf(s.Out, "  changed: %s\n", strings.Join(ch, " "))
		}
	}
	s.last[id] = st
	h := append(s.history[id], pc)
	if len(h) > historyLen+1 {
		h = h[len(h)-historyLen-1:]
	}
	s.history[id] = h
	return nil
}

func (s *Stepper) named(addr uint64) string {
	if n := s.Symbols.Name(addr); n != "" {
		return " (" + n + ")"
	}
	return ""
}

// resolve turns an address expression into a number: a number (C
// syntax), a register of the current vCPU, a symbol, and +/- an offset.
func (s *Stepper) resolve(ctx context.Context, expr string) (uint64, error) {
	base, off, sign := expr, "", uint64(1)
	if i := strings.LastIndexAny(expr, "+-"); i > 0 {
		base, off = expr[:i], expr[i+1:]
		if expr[i] == '-' {
			sign = ^uint64(0) // -1
		}
	}
	var v uint64
	if n, err := strconv.ParseUint(base, 0, 64); err == nil {
		v = n
	} else if a, ok := s.Symbols.Lookup(base); ok {
		v = a
	} else {
		st, err := s.state(ctx, s.cur)
		if err != nil {
			return 0, err
		}
		found := false
		for _, r := range registers(st) {
			if r.name == strings.ToLower(base) {
				v, found = r.value, true
			}
		}
		if strings.ToLower(base) == "pc" {
			v, found = vcpu.LinearPC(&st.sregs, st.regs.RIP), true
		}
		if !found {
			return 0, fmt.Errorf("%q is not a number, a register or a symbol", base)
		}
	}
	if off != "" {
		n, err := strconv.ParseUint(off, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("offset %q: want a number", off)
		}
		v += sign * n
	}
	return v, nil
}

// doBreak carries out a break command.
func (s *Stepper) doBreak(ctx context.Context, c Command) error {
	d := s.Debugger
	switch c.Break {
	case BreakList:
		bs, es := d.Breakpoints(), d.ExitBreaks()
		if len(bs)+len(es) == 0 {
			fmt.Fprintln(s.Out, "no breaks")
		}
		for _, b := range bs {
			kind := "debug register"
			if !b.Hard {
				kind = "int3"
			}
			fmt.Fprintf(s.Out, "breakpoint at %#x%s (%s)\n", b.Addr, s.named(b.Addr), kind)
		}
		for _, e := range es {
			fmt.Fprintf(s.Out, "break on %s\n", e)
		}
		return nil
	case BreakClear:
		if err := d.ClearBreaks(ctx); err != nil {
			return err
		}
		fmt.Fprintln(s.Out, "every break removed")
		return nil
	case BreakAddr, BreakDelete:
		a, err := s.resolve(ctx, c.Addr)
		if err != nil {
			return err
		}
		if c.Break == BreakDelete {
			if err := d.RemoveBreakpoint(ctx, a); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "breakpoint at %#x removed\n", a)
			return nil
		}
		b, err := d.AddBreakpoint(ctx, a, false)
		if err != nil {
			return err
		}
		kind := "in a debug register"
		if !b.Hard {
			kind = "as an int3 in guest memory (the four debug registers are taken)"
		}
		fmt.Fprintf(s.Out, "breakpoint at %#x%s, %s\n", a, s.named(a), kind)
		return nil
	case BreakExit:
		e := debugger.ExitBreak{Reason: c.Reason}
		d.AddExitBreak(e)
		fmt.Fprintf(s.Out, "break on %s\n", e)
		return nil
	case BreakPort, BreakMMIO:
		e := debugger.ExitBreak{HasRange: true, Space: spaceOf(c.Break), Lo: c.Lo, Hi: c.Hi}
		d.AddExitBreak(e)
		fmt.Fprintf(s.Out, "break on %s\n", e)
		return nil
	}
	return fmt.Errorf("break: nothing to do")
}
