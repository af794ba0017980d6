package gdbstub

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
)

// Regs is an x86-64 vCPU's registers as gdb sees them.
type Regs struct {
	// GPR in gdb's order: rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8-r15.
	GPR    [16]uint64
	RIP    uint64
	EFLAGS uint32
	// Seg: cs, ss, ds, es, fs, gs selectors.
	Seg [6]uint32
	// The x87 unit: st0-st7 (80 bits each), then fctrl, fstat, ftag,
	// fiseg, fioff, foseg, fooff, fop.
	ST  [8][10]byte
	FPU [8]uint32
	XMM [16][16]byte
	// MXCSR is the SSE control and status register.
	MXCSR          uint32
	FSBase, GSBase uint64
	// Control registers, for learners: cr0, cr2, cr3, cr4, cr8, efer.
	CR [6]uint64
}

// reg is one register of the target description: its name, size in
// bits, gdb type and where it lives in Regs.
type reg struct {
	name    string
	bits    int
	typ     string
	feature int // index into features
	get     func(r *Regs) []byte
	set     func(r *Regs, b []byte)
}

var le = binary.LittleEndian

func u64(p func(r *Regs) *uint64) (func(*Regs) []byte, func(*Regs, []byte)) {
	return func(r *Regs) []byte { return le.AppendUint64(nil, *p(r)) },
		func(r *Regs, b []byte) { *p(r) = le.Uint64(b) }
}

func u32(p func(r *Regs) *uint32) (func(*Regs) []byte, func(*Regs, []byte)) {
	return func(r *Regs) []byte { return le.AppendUint32(nil, *p(r)) },
		func(r *Regs, b []byte) { *p(r) = le.Uint32(b) }
}

func raw(p func(r *Regs) []byte) (func(*Regs) []byte, func(*Regs, []byte)) {
	return func(r *Regs) []byte { return append([]byte(nil), p(r)...) },
		func(r *Regs, b []byte) { copy(p(r), b) }
}

// The target description's features (GDB manual, G.5.1 "i386 Features"):
// core and sse are gdb's own; segments gives fs_base and gs_base; the
// control registers are a feature of govmm's, which gdb shows as it finds
// them ("info registers cr0").
var features = []string{"org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.segments", "org.govmm.x86.control"}

// registers is the target description, in the order of the g packet and
// of register numbers.
var registers = sync.OnceValue(func() []reg {
	var rs []reg
	add := func(name string, bits int, typ string, feature int, get func(*Regs) []byte, set func(*Regs, []byte)) {
		rs = append(rs, reg{name, bits, typ, feature, get, set})
	}
	gprNames := []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}
	for i, n := range gprNames {
		typ := "int64"
		if n == "rbp" || n == "rsp" {
			typ = "data_ptr"
		}
		g, s := u64(func(r *Regs) *uint64 { return &r.GPR[i] })
		add(n, 64, typ, 0, g, s)
	}
	g, s := u64(func(r *Regs) *uint64 { return &r.RIP })
	add("rip", 64, "code_ptr", 0, g, s)
	g, s = u32(func(r *Regs) *uint32 { return &r.EFLAGS })
	add("eflags", 32, "i386_eflags", 0, g, s)
	for i, n := range []string{"cs", "ss", "ds", "es", "fs", "gs"} {
		g, s := u32(func(r *Regs) *uint32 { return &r.Seg[i] })
		add(n, 32, "int32", 0, g, s)
	}
	for i := range 8 {
		g, s := raw(func(r *Regs) []byte { return r.ST[i][:] })
		add(fmt.Sprintf("st%d", i), 80, "i387_ext", 0, g, s)
	}
	for i, n := range []string{"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"} {
		g, s := u32(func(r *Regs) *uint32 { return &r.FPU[i] })
		add(n, 32, "int", 0, g, s)
	}
	for i := range 16 {
		g, s := raw(func(r *Regs) []byte { return r.XMM[i][:] })
		add(fmt.Sprintf("xmm%d", i), 128, "vec128", 1, g, s)
	}
	g, s = u32(func(r *Regs) *uint32 { return &r.MXCSR })
	add("mxcsr", 32, "i386_mxcsr", 1, g, s)
	g, s = u64(func(r *Regs) *uint64 { return &r.FSBase })
	add("fs_base", 64, "int", 2, g, s)
	g, s = u64(func(r *Regs) *uint64 { return &r.GSBase })
	add("gs_base", 64, "int", 2, g, s)
	for i, n := range []string{"cr0", "cr2", "cr3", "cr4", "cr8", "efer"} {
		g, s := u64(func(r *Regs) *uint64 { return &r.CR[i] })
		add(n, 64, "int64", 3, g, s)
	}
	return rs
})

// targetXML is the target description gdb reads with qXfer (GDB manual,
// appendix G "Target Descriptions"). The sse feature brings the vec128
// and i386_mxcsr types with it; vec128 is declared here as gdb's own
// i386 descriptions declare it.
var targetXML = sync.OnceValue(func() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386:x86-64</architecture>
`)
	for f, name := range features {
		fmt.Fprintf(&b, "<feature name=%q>\n", name)
		if f == 1 {
			b.WriteString(`<vector id="v4f" type="ieee_single" count="4"/>
<vector id="v2d" type="ieee_double" count="2"/>
<vector id="v16i8" type="int8" count="16"/>
<vector id="v8i16" type="int16" count="8"/>
<vector id="v4i32" type="int32" count="4"/>
<vector id="v2i64" type="int64" count="2"/>
<union id="vec128">
<field name="v4_float" type="v4f"/>
<field name="v2_double" type="v2d"/>
<field name="v16_int8" type="v16i8"/>
<field name="v8_int16" type="v8i16"/>
<field name="v4_int32" type="v4i32"/>
<field name="v2_int64" type="v2i64"/>
<field name="uint128" type="uint128"/>
</union>
<flags id="i386_mxcsr" size="4">
<field name="IE" start="0" end="0"/>
<field name="DE" start="1" end="1"/>
<field name="ZE" start="2" end="2"/>
<field name="OE" start="3" end="3"/>
<field name="UE" start="4" end="4"/>
<field name="PE" start="5" end="5"/>
<field name="DAZ" start="6" end="6"/>
<field name="IM" start="7" end="7"/>
<field name="DM" start="8" end="8"/>
<field name="ZM" start="9" end="9"/>
<field name="OM" start="10" end="10"/>
<field name="UM" start="11" end="11"/>
<field name="PM" start="12" end="12"/>
<field name="FZ" start="15" end="15"/>
</flags>
`)
		}
		if f == 0 {
			b.WriteString(`<flags id="i386_eflags" size="4">
<field name="CF" start="0" end="0"/>
<field name="" start="1" end="1"/>
<field name="PF" start="2" end="2"/>
<field name="AF" start="4" end="4"/>
<field name="ZF" start="6" end="6"/>
<field name="SF" start="7" end="7"/>
<field name="TF" start="8" end="8"/>
<field name="IF" start="9" end="9"/>
<field name="DF" start="10" end="10"/>
<field name="OF" start="11" end="11"/>
<field name="NT" start="14" end="14"/>
<field name="RF" start="16" end="16"/>
<field name="VM" start="17" end="17"/>
<field name="AC" start="18" end="18"/>
<field name="VIF" start="19" end="19"/>
<field name="VIP" start="20" end="20"/>
<field name="ID" start="21" end="21"/>
</flags>
`)
		}
		for i, r := range registers() {
			if r.feature != f {
				continue
			}
			group := ""
			switch {
			case f == 1:
				group = ` group="vector"`
			case strings.HasPrefix(r.name, "st") || strings.HasPrefix(r.name, "f") && f == 0:
				group = ` group="float"`
			}
			fmt.Fprintf(&b, "<reg name=%q bitsize=\"%d\" type=%q regnum=\"%d\"%s/>\n", r.name, r.bits, r.typ, i, group)
		}
		b.WriteString("</feature>\n")
	}
	b.WriteString("</target>\n")
	return b.String()
})

// encodeRegs is the g packet's reply: every register in order, each in
// target (little-endian) byte order, two hex digits a byte.
func encodeRegs(r *Regs) []byte {
	var out []byte
	for _, rg := range registers() {
		out = appendHexBytes(out, rg.get(r))
	}
	return out
}

// decodeRegs reads a G packet's data into r.
func decodeRegs(r *Regs, hexdata []byte) error {
	b, err := decodeHex(hexdata)
	if err != nil {
		return err
	}
	for _, rg := range registers() {
		n := rg.bits / 8
		if len(b) < n {
			return fmt.Errorf("register write: %d bytes short of %s", n-len(b), rg.name)
		}
		rg.set(r, b[:n])
		b = b[n:]
	}
	return nil
}

func appendHexBytes(out, b []byte) []byte {
	for _, c := range b {
		out = append(out, hexChars[c>>4], hexChars[c&15])
	}
	return out
}

// decodeHex reads pairs of hex digits.
func decodeHex(h []byte) ([]byte, error) {
	if len(h)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits")
	}
	out := make([]byte, len(h)/2)
	for i := range out {
		v, ok := hexByte(h[2*i], h[2*i+1])
		if !ok {
			return nil, fmt.Errorf("%q is not hex", h[2*i:2*i+2])
		}
		out[i] = v
	}
	return out, nil
}
