package gdbstub

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTarget is a machine of two vCPUs with 64 KiB of memory, whose runs
// end with the stops the test queues.
type fakeTarget struct {
	mu    sync.Mutex
	regs  [2]Regs
	mem   [0x10000]byte
	bps   map[uint64]bool // address -> hard
	calls []string
	stops chan StopEvent
}

func newFakeTarget() *fakeTarget {
	f := &fakeTarget{bps: map[uint64]bool{}, stops: make(chan StopEvent, 4)}
	f.regs[0].RIP, f.regs[1].RIP = 0x7c00, 0x9000
	f.regs[0].GPR[0] = 0x1122334455667788
	f.regs[0].CR[0] = 0x80000011
	copy(f.mem[0x7c00:], "hello")
	f.stops <- StopEvent{Thread: 0, Signal: SIGINT} // the stop before gdb came
	return f
}

func (f *fakeTarget) call(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeTarget) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func (f *fakeTarget) Threads() int { return 2 }
func (f *fakeTarget) Interrupt() {
	f.call("interrupt")
	f.stops <- StopEvent{Thread: 1, Signal: SIGINT}
}
func (f *fakeTarget) Wait(ctx context.Context) (StopEvent, error) {
	select {
	case s := <-f.stops:
		return s, nil
	case <-ctx.Done():
		return StopEvent{}, ctx.Err()
	}
}
func (f *fakeTarget) Continue(context.Context) error { f.call("continue"); return nil }
func (f *fakeTarget) Step(_ context.Context, id int) error {
	f.call(fmt.Sprintf("step %d", id))
	return nil
}
func (f *fakeTarget) ReadRegs(_ context.Context, id int) (Regs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.regs[id], nil
}
func (f *fakeTarget) WriteRegs(_ context.Context, id int, r Regs) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regs[id] = r
	f.calls = append(f.calls, fmt.Sprintf("write regs %d", id))
	return nil
}
func (f *fakeTarget) ReadMemory(_ context.Context, _ int, addr uint64, p []byte) (int, error) {
	if addr >= uint64(len(f.mem)) {
		return 0, fmt.Errorf("unmapped")
	}
	return copy(p, f.mem[addr:]), nil
}
func (f *fakeTarget) WriteMemory(_ context.Context, _ int, addr uint64, p []byte) (int, error) {
	if addr >= uint64(len(f.mem)) {
		return 0, fmt.Errorf("unmapped")
	}
	return copy(f.mem[addr:], p), nil
}
func (f *fakeTarget) AddBreakpoint(_ context.Context, addr uint64, hard bool) error {
	f.call(fmt.Sprintf("break %#x hard=%v", addr, hard))
	f.bps[addr] = hard
	return nil
}
func (f *fakeTarget) RemoveBreakpoint(_ context.Context, addr uint64, _ bool) error {
	f.call(fmt.Sprintf("unbreak %#x", addr))
	delete(f.bps, addr)
	return nil
}
func (f *fakeTarget) ThreadInfo(id int) string { return fmt.Sprintf("vCPU %d", id) }
func (f *fakeTarget) Kill()                    { f.call("kill") }
func (f *fakeTarget) Detach(context.Context) error {
	f.call("detach")
	return nil
}

// client is the gdb side of a session over a pipe.
type client struct {
	t     *testing.T
	conn  net.Conn
	buf   []byte
	noAck bool
}

// send sends a packet and returns the reply's payload (none for a resume:
// use reply).
func (c *client) send(payload string, wantReply bool) string {
	c.t.Helper()
	if _, err := c.conn.Write(Frame([]byte(payload))); err != nil {
		c.t.Fatal(err)
	}
	if !c.noAck {
		if ev := c.next(); ev.Kind != EventAck {
			c.t.Fatalf("after %q: got %v, want the ack", payload, ev.Kind)
		}
	}
	if !wantReply {
		return ""
	}
	return c.reply()
}

func (c *client) reply() string {
	c.t.Helper()
	ev := c.next()
	if ev.Kind != EventPacket {
		c.t.Fatalf("got %v, want a packet", ev.Kind)
	}
	if !c.noAck {
		if _, err := c.conn.Write([]byte("+")); err != nil {
			c.t.Fatal(err)
		}
	}
	return string(ev.Payload)
}

func (c *client) next() Event {
	c.t.Helper()
	chunk := make([]byte, 4096)
	for {
		ev, n, err := ParseEvent(c.buf)
		c.buf = c.buf[n:]
		if err == nil {
			return ev
		}
		if err := c.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			c.t.Fatal(err)
		}
		m, err := c.conn.Read(chunk)
		if err != nil {
			c.t.Fatalf("reading from the stub: %v", err)
		}
		c.buf = append(c.buf, chunk[:m]...)
	}
}

// startStub serves t on one end of a pipe and returns the other.
func startStub(t *testing.T, target Target) (*client, <-chan error) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- New(target, a, nil).Serve(context.Background()) }()
	t.Cleanup(func() { b.Close() })
	return &client{t: t, conn: b}, done
}

// TestStubPackets runs a session through every packet the stub knows,
// against a fake target, as gdb would send them.
func TestStubPackets(t *testing.T) {
	f := newFakeTarget()
	c, done := startStub(t, f)
	if got := c.send("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386", true); !strings.Contains(got, "qXfer:features:read+") || !strings.Contains(got, "PacketSize=4000") {
		t.Errorf("qSupported = %q", got)
	}
	if got := c.send("QStartNoAckMode", true); got != "OK" {
		t.Errorf("QStartNoAckMode = %q", got)
	}
	c.noAck = true
	// The target description, in two pieces.
	first := c.send("qXfer:features:read:target.xml:0,100", true)
	rest := c.send(fmt.Sprintf("qXfer:features:read:target.xml:%x,4000", len(first)-1), true)
	if first[0] != 'm' || rest[0] != 'l' || first[1:]+rest[1:] != targetXML() {
		t.Errorf("qXfer pieces %q... and %q... do not make the target description", first[:10], rest[:min(10, len(rest))])
	}
	tests := []struct{ send, want string }{
		{"qXfer:features:read:other.xml:0,100", "E00"},
		{"?", "T05thread:1;"}, // the first stop is reported as an attach's SIGTRAP
		{"qC", "QC1"},
		{"qfThreadInfo", "m1,2"},
		{"qsThreadInfo", "l"},
		{"qThreadExtraInfo,2", hex.EncodeToString([]byte("vCPU 1"))},
		{"T2", "OK"},
		{"T3", "E01"},
		{"qAttached", "1"},
		{"qSymbol::", "OK"},
		{"vMustReplyEmpty", ""},
		{"qTStatus", ""},
		{"p10", "007c000000000000"},   // rip, register 16
		{"p0", "8877665544332211"},    // rax
		{"p3b", "1100008000000000"},   // cr0: register 59, after mxcsr, fs_base, gs_base
		{"pff", "E00"},                // no such register
		{"P0=0100000000000000", "OK"}, // rax = 1
		{"p0", "0100000000000000"},    //
		{"m7c00,5", hex.EncodeToString([]byte("hello"))},
		{"M7c00,2:4849", "OK"},
		{"m7c00,2", "4849"},
		{"X7c02,2:}!", "OK"}, // binary: 0x7d (escaped on the wire) and '!'
		{"m7c02,2", "7d21"},
		{"m20000,4", "E14"},
		{"Z0,7c22,1", "OK"},
		{"Z1,7c30,1", "OK"},
		{"z0,7c22,1", "OK"},
		{"Z2,8000,4", ""}, // watchpoints are not offered
		{"Hg2", "OK"},
		{"p10", "0090000000000000"}, // vCPU 1's rip
		{"Hg0", "OK"},
		{"Hg7", "E01"},
	}
	for _, tt := range tests {
		if got := c.send(tt.send, true); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.send, got, tt.want)
		}
	}
	g := c.send("g", true)
	if want := encodeRegs(&f.regs[0]); g != string(want) || len(g) != 2*regBytes() {
		t.Errorf("g = %d hex digits, want %d", len(g), 2*regBytes())
	}
	if got := c.send("G"+g, true); got != "OK" {
		t.Errorf("G = %q", got)
	}
	// Resuming: the reply comes when the target stops.
	f.stops <- StopEvent{Thread: 0, Signal: SIGTRAP, HWBreak: true}
	c.send("c", false)
	if got := c.reply(); got != "T05thread:1;hwbreak:;" {
		t.Errorf("stop after c = %q", got)
	}
	f.stops <- StopEvent{Thread: 1, Signal: SIGTRAP}
	c.send("Hc2", true)
	c.send("s", false)
	if got := c.reply(); got != "T05thread:2;" {
		t.Errorf("stop after s = %q", got)
	}
	// Ctrl-C while running.
	c.send("c", false)
	if _, err := c.conn.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
	if got := c.reply(); got != "T02thread:2;" {
		t.Errorf("stop after Ctrl-C = %q", got)
	}
	// The end of the VM.
	f.stops <- StopEvent{Exited: true, Status: 3}
	c.send("c", false)
	if got := c.reply(); got != "W03" {
		t.Errorf("the VM's end = %q, want W03", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve() = %v", err)
	}
	want := "write regs 0; break 0x7c22 hard=false; break 0x7c30 hard=true; unbreak 0x7c22; write regs 0; continue; step 1; continue; interrupt; continue"
	if got := f.log(); got != want {
		t.Errorf("target calls:\n%s\nwant\n%s", got, want)
	}
}

func regBytes() int {
	n := 0
	for _, r := range registers() {
		n += r.bits / 8
	}
	return n
}

// TestStubEnds: D detaches, k kills, a closed connection detaches; each
// ends Serve without an error.
func TestStubEnds(t *testing.T) {
	for _, tt := range []struct {
		name, packet, wantCall string
	}{
		{"detach", "D", "detach"},
		{"kill", "k", "kill"},
		{"hang up", "", "detach"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTarget()
			c, done := startStub(t, f)
			if tt.packet == "" {
				c.conn.Close()
			} else {
				c.send(tt.packet, tt.packet == "D")
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve() = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not end")
			}
			if got := f.log(); got != tt.wantCall {
				t.Errorf("target calls = %q, want %q", got, tt.wantCall)
			}
		})
	}
}

// TestStubAcks: a corrupted packet is answered with -, and gdb's resend
// then works.
func TestStubAcks(t *testing.T) {
	f := newFakeTarget()
	c, _ := startStub(t, f)
	if _, err := c.conn.Write([]byte("$g#00")); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); ev.Kind != EventNack {
		t.Fatalf("after a bad checksum: %v, want -", ev.Kind)
	}
	if got := c.send("qC", true); got != "QC1" {
		t.Errorf("qC after the resend = %q", got)
	}
}

// TestTargetXML: the description names gdb's core registers in amd64
// order, which gdb requires, and numbers every register as the g packet
// orders them.
func TestTargetXML(t *testing.T) {
	core := "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs st0 st1 st2 st3 st4 st5 st6 st7 fctrl fstat ftag fiseg fioff foseg fooff fop"
	for i, name := range strings.Fields(core) {
		want := fmt.Sprintf("<reg name=%q bitsize=", name)
		at := strings.Index(targetXML(), want)
		if at < 0 || !strings.Contains(targetXML()[at:at+120], fmt.Sprintf("regnum=\"%d\"", i)) {
			t.Errorf("target.xml lacks %s as register %d", name, i)
		}
	}
	for _, s := range []string{"<architecture>i386:x86-64</architecture>", `name="org.gnu.gdb.i386.core"`, `name="org.gnu.gdb.i386.sse"`, `name="xmm15"`, `name="fs_base"`, `name="cr3"`, `id="i386_eflags"`} {
		if !strings.Contains(targetXML(), s) {
			t.Errorf("target.xml lacks %s", s)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want Command
	}{
		{"m7c00,10", Command{Kind: CmdReadMem, Addr: 0x7c00, Len: 16}},
		{"M10,2:abcd", Command{Kind: CmdWriteMem, Addr: 0x10, Len: 2, Data: []byte("abcd")}},
		{"c", Command{Kind: CmdContinue}},
		{"c7c00", Command{Kind: CmdContinue, Addr: 0x7c00, HasAddr: true}},
		{"C05;7c00", Command{Kind: CmdContinue, Addr: 0x7c00, HasAddr: true}},
		{"S05", Command{Kind: CmdStep}},
		{"Z1,7c22,1", Command{Kind: CmdBreakpoint, Type: 1, Addr: 0x7c22}},
		{"z0,ffffffff81000000,1;X1,0", Command{Kind: CmdRemoveBreakpoint, Type: 0, Addr: 0xffffffff81000000}},
		{"Hc-1", Command{Kind: CmdSetThread, Op: 'c', Thread: -1}},
		{"Hg2", Command{Kind: CmdSetThread, Op: 'g', Thread: 2}},
		{"P10=0000", Command{Kind: CmdWriteReg, Reg: 16, Data: []byte("0000")}},
		{"D;1", Command{Kind: CmdDetach}},
		{"qAttached:1", Command{Kind: CmdAttached}},
		{"vCont?", Command{Kind: CmdUnsupported}},
		{"Hx", Command{Kind: CmdUnsupported}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in))
		if err != nil || got.Kind != tt.want.Kind || got.Addr != tt.want.Addr || got.Len != tt.want.Len || got.HasAddr != tt.want.HasAddr ||
			got.Type != tt.want.Type || got.Thread != tt.want.Thread || got.Op != tt.want.Op || got.Reg != tt.want.Reg || !bytes.Equal(got.Data, tt.want.Data) {
			t.Errorf("Decode(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"m7c00", "m0,ffffff", "mzz,1", "M1,1", "Z9,0,1", "Z0,1", "pzz", "P1", "Hgzz", "C", "cxyz", "qXfer:features:read:target.xml", "m11111111111111111,1"} {
		if c, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = %+v, want an error", bad, c)
		}
	}
}

// FuzzDecode: any payload decodes or is refused, and what decodes keeps
// its bounds.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"m7c00,10", "M10,2:abcd", "X10,2:ab", "Z0,7c22,1", "qXfer:features:read:target.xml:0,fff", "P10=00", "Hc-1", "C05;7c00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := Decode(p)
		if err != nil {
			return
		}
		switch c.Kind {
		case CmdReadMem:
			if c.Len > maxMem {
				t.Fatalf("Decode(%q) reads %d bytes", p, c.Len)
			}
		case CmdXferFeatures:
			if c.Len >= maxPacket {
				t.Fatalf("Decode(%q) transfers %d bytes", p, c.Len)
			}
		case CmdBreakpoint, CmdRemoveBreakpoint:
			if c.Type < 0 || c.Type > 4 {
				t.Fatalf("Decode(%q) gives breakpoint type %d", p, c.Type)
			}
		}
	})
}
