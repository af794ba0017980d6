package stepper

import (
	"context"
	"fmt"
	"strings"

	"github.com/govmm/govmm/vcpu"
)

// The commands that show the stopped guest: regs, mem, disas and stats.

// A register as regs shows it: name, value, width in hex digits.
type reg struct {
	name  string
	value uint64
	width int
}

func registers(st *regState) []reg {
	r, sr := &st.regs, &st.sregs
	return []reg{
		{"rax", r.RAX, 16}, {"rbx", r.RBX, 16}, {"rcx", r.RCX, 16}, {"rdx", r.RDX, 16},
		{"rsi", r.RSI, 16}, {"rdi", r.RDI, 16}, {"rbp", r.RBP, 16}, {"rsp", r.RSP, 16},
		{"r8", r.R8, 16}, {"r9", r.R9, 16}, {"r10", r.R10, 16}, {"r11", r.R11, 16},
		{"r12", r.R12, 16}, {"r13", r.R13, 16}, {"r14", r.R14, 16}, {"r15", r.R15, 16},
		{"rip", r.RIP, 16}, {"rflags", r.RFLAGS, 8},
		{"cs", uint64(sr.CS.Selector), 4}, {"ss", uint64(sr.SS.Selector), 4}, {"ds", uint64(sr.DS.Selector), 4},
		{"es", uint64(sr.ES.Selector), 4}, {"fs", uint64(sr.FS.Selector), 4}, {"gs", uint64(sr.GS.Selector), 4},
		{"tr", uint64(sr.TR.Selector), 4},
		{"cr0", sr.CR0, 8}, {"cr2", sr.CR2, 16}, {"cr3", sr.CR3, 16}, {"cr4", sr.CR4, 8}, {"efer", sr.EFER, 8},
		{"gdt", sr.GDT.Base, 8}, {"idt", sr.IDT.Base, 8},
	}
}

// changed names the registers that differ, with their new values. RIP is
// left out: the rip line says where the vCPU is.
func changed(a, b *regState) []string {
	ra, rb := registers(a), registers(b)
	var out []string
	for i := range ra {
		if ra[i].value != rb[i].value && ra[i].name != "rip" {
			out = append(out, fmt.Sprintf("%s=%#x", rb[i].name, rb[i].value))
		}
	}
	return out
}

// rflagsNames are the flags regs spells out (Intel SDM vol. 1, 3.4.3).
var rflagsNames = []struct {
	bit  uint
	name string
}{{0, "CF"}, {2, "PF"}, {4, "AF"}, {6, "ZF"}, {7, "SF"}, {8, "TF"}, {9, "IF"}, {10, "DF"}, {11, "OF"}, {14, "NT"}, {16, "RF"}, {17, "VM"}}

// regs prints every register, marking those changed since the last stop.
func (s *Stepper) regs(ctx context.Context) error {
	st, err := s.state(ctx, s.cur)
	if err != nil {
		return err
	}
	prev := s.last[s.cur]
	var old []reg
	if prev != nil {
		old = registers(prev)
	}
	var b strings.Builder
	for i, r := range registers(st) {
		if r.name == "gdt" || r.name == "idt" {
			continue // the last line says them in full
		}
		mark := " "
		v := fmt.Sprintf("%0*x", r.width, r.value)
		if old != nil && old[i].value != r.value && r.name != "rip" {
			if s.Highlight {
				v = "\x1b[7m" + v + "\x1b[0m"
			} else {
				mark = "*"
			}
		}
		fmt.Fprintf(&b, "%s=%s%s", r.name, v, mark)
		switch r.name {
		case "rdx", "rsp", "r11", "r15", "tr", "efer":
			b.WriteString("\n")
		case "rflags":
			var fl []string
			for _, f := range rflagsNames {
				if r.value&(1<<f.bit) != 0 {
					fl = append(fl, f.name)
				}
			}
			fmt.Fprintf(&b, "[%s]\n", strings.Join(fl, " "))
		default:
			b.WriteString(" ")
		}
	}
	mode := vcpu.ModeOf(&st.sregs, st.regs.RFLAGS)
	fmt.Fprintf(&b, "gdt=%x/%x idt=%x/%x mode %s, cpl %d\n", st.sregs.GDT.Base, st.sregs.GDT.Limit, st.sregs.IDT.Base, st.sregs.IDT.Limit, mode, st.sregs.CS.DPL)
	fmt.Fprint(s.Out, b.String())
	return nil
}

// mem prints memory in hex and ASCII, 16 bytes a line.
func (s *Stepper) mem(ctx context.Context, c Command) error {
	addr, err := s.resolve(ctx, c.Addr)
	if err != nil {
		return err
	}
	buf := make([]byte, c.Len)
	n, rerr := s.Debugger.ReadMemory(ctx, s.cur, addr, buf)
	for off := 0; off < n; off += 16 {
		row := buf[off:min(off+16, n)]
		var hex, text strings.Builder
		for i := range 16 {
			if i < len(row) {
				fmt.Fprintf(&hex, "%02x ", row[i])
				if row[i] >= 0x20 && row[i] < 0x7f {
					text.WriteByte(row[i])
				} else {
					text.WriteByte('.')
				}
			} else {
				hex.WriteString("   ")
			}
			if i == 7 {
				hex.WriteString(" ")
			}
		}
		fmt.Fprintf(s.Out, "%08x  %s %s\n", addr+uint64(off), hex.String(), text.String())
	}
	if rerr != nil {
		return fmt.Errorf("read %d of %d bytes: %w", n, c.Len, rerr)
	}
	return nil
}

// disas prints the instructions at the vCPU's last stops, then n from RIP.
func (s *Stepper) disas(ctx context.Context, n int) error {
	st, err := s.state(ctx, s.cur)
	if err != nil {
		return err
	}
	mode := vcpu.ModeOf(&st.sregs, st.regs.RFLAGS)
	pc := vcpu.LinearPC(&st.sregs, st.regs.RIP)
	base := pc - st.regs.RIP // the code segment's base outside long mode
	line := func(mark string, lin uint64, in vcpu.Instruction) {
		var raw strings.Builder
		for _, b := range in.Raw[:in.Len] {
			fmt.Fprintf(&raw, "%02x", b)
		}
		name := s.Symbols.Name(lin)
		if name != "" {
			name = "    ; " + name
		}
		fmt.Fprintf(s.Out, "%s %#8x  %-20s %s%s\n", mark, lin-base, raw.String(), in.Text, name)
	}
	for _, h := range s.history[s.cur] {
		if h == pc {
			continue
		}
		if in, err := s.insnAt(ctx, s.cur, h, h-base, mode); err == nil {
			line("  ", h, in)
		}
	}
	at := pc
	for i := 0; i < n; i++ {
		in, err := s.insnAt(ctx, s.cur, at, at-base, mode)
		if err != nil {
			fmt.Fprintf(s.Out, "   %#8x  (%v)\n", at-base, err)
			return nil
		}
		mark := "  "
		if i == 0 {
			mark = "=>"
		}
		line(mark, at, in)
		at += uint64(in.Len)
	}
	return nil
}

// stats prints the exits between the last two stops, and the totals.
func (s *Stepper) stats() {
	if s.Stats == nil {
		fmt.Fprintln(s.Out, "no exit statistics in this run")
		return
	}
	fmt.Fprintln(s.Out, "since the previous stop:")
	s.snap.Since(s.before).Table(s.Out, "  ")
	fmt.Fprintln(s.Out, "since the start:")
	s.snap.Table(s.Out, "  ")
}
