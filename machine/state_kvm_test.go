package machine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// fakeQuiescer records its calls.
type fakeQuiescer struct {
	mu    sync.Mutex
	calls []string
}

func (q *fakeQuiescer) Quiesce(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, "quiesce")
	return nil
}

func (q *fakeQuiescer) Resume() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, "resume")
}

// roundWatch is serial output that closes round once the guest has
// finished a round of mode=migrate (printed its first 'B').
type roundWatch struct {
	syncBuffer
	once  sync.Once
	round chan struct{}
}

func (w *roundWatch) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "B") {
		w.once.Do(func() { close(w.round) })
	}
	return w.syncBuffer.Write(p)
}

// spinning starts the test guest's ring-3 loop (mode=migrate, forever,
// 8 MiB) and returns the machine, run in the background until the test
// ends, once the guest has done a round.
func spinning(t *testing.T, c Config) *Machine {
	t.Helper()
	g := guests(t)
	serial := &roundWatch{round: make(chan struct{})}
	if c.Cmdline == "" {
		c.Cmdline = "mode=migrate rounds=0 mb=8"
	}
	c.KVMPath, c.Kernel, c.SerialOut = kvmtest.Path(), readFile(t, g.ELF), serial
	if c.MemSize == 0 {
		c.MemSize, c.CPUs = 64<<20, 1
	}
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v\nserial:\n%s", err, serial.String())
		}
		m.Close()
	})
	select {
	case <-serial.round:
	case <-time.After(time.Minute):
		t.Fatalf("the guest did not finish a round in a minute; serial:\n%s", serial.String())
	}
	return m
}

// TestPauseQuiescesAndKeepsTheClock pauses a running guest: devices are
// quiesced and resumed in turn, SaveState holds every device (an added
// one too), and the kvmclock does not count the paused time.
func TestPauseQuiescesAndKeepsTheClock(t *testing.T) {
	kvmtest.Require(t)
	m := spinning(t, Config{})
	q := &fakeQuiescer{}
	m.addQuiescer(q)
	type extra struct{ N int }
	restored := extra{}
	m.addDevice("extra@00:1f.0", 3, func() (any, error) { return extra{42}, nil }, func(b json.RawMessage) error { return json.Unmarshal(b, &restored) })

	if _, err := m.SaveState(); err == nil {
		t.Errorf("SaveState() on a running guest = nil error, want one saying to pause")
	}
	if err := m.Resume(); !errors.Is(err, ErrNotPaused) {
		t.Errorf("Resume() of a running guest = %v, want ErrNotPaused", err)
	}
	ctx := context.Background()
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Pause(ctx); !errors.Is(err, ErrPaused) {
		t.Errorf("second Pause() = %v, want ErrPaused", err)
	}
	st, err := m.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"serial", "i8042", "rtc", "post", "debug-exit", "acpi-pm", "pci-bus", "extra@00:1f.0"} {
		if _, ok := st.Devices[id]; !ok {
			t.Errorf("SaveState() has no state for %s (it has %d devices)", id, len(st.Devices))
		}
	}
	if d := st.Devices["extra@00:1f.0"]; d.Version != 3 || string(d.State) != `{"N":42}` {
		t.Errorf("the added device's state = %+v, want version 3, {\"N\":42}", d)
	}
	if len(st.VCPUs) != 1 || st.VCPUs[0].Sregs.CS.Selector&3 != 3 && st.VCPUs[0].Sregs.CS.Selector != 0x10 {
		t.Errorf("SaveState() vCPUs = %d, CS %#x", len(st.VCPUs), st.VCPUs[0].Sregs.CS.Selector)
	}
	t0 := m.mob.time
	time.Sleep(100 * time.Millisecond) // paused time
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	// A second pause right away: the guest's two clocks moved together,
	// by nothing much where KVM can set the TSC, by the pause where the
	// TSC is the host's (PVM).
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := m.mob.time
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	khz := st.VCPUs[0].TSCKHz
	if t0.TSCs[0][0].Index != vcpu.MSRTSC || khz == 0 {
		t.Fatalf("the pause kept MSR %#x and a TSC of %d kHz, want the TSC's", t0.TSCs[0][0].Index, khz)
	}
	dTSC := time.Duration((t1.TSCs[0][0].Data - t0.TSCs[0][0].Data) * 1000 / uint64(khz) * uint64(time.Microsecond))
	dClock := time.Duration(t1.Clock - t0.Clock)
	if skew := dTSC - dClock; skew > 10*time.Millisecond || skew < -10*time.Millisecond {
		t.Errorf("over a 100 ms pause the TSC moved %v and the kvmclock %v: they must move together", dTSC, dClock)
	}
	if m.mob.tscFollowsHost {
		if dClock < 100*time.Millisecond {
			t.Errorf("the kvmclock moved %v over a 100 ms pause on a host whose TSC runs on: it must run on too", dClock)
		}
	} else if dClock > 50*time.Millisecond {
		t.Errorf("the guest's clocks moved %v over a 100 ms pause, want them to stand still", dClock)
	}
	t.Logf("TSC follows the host's: %v; over the pause the TSC moved %v, the kvmclock %v", m.mob.tscFollowsHost, dTSC, dClock)
	q.mu.Lock()
	if got := strings.Join(q.calls, ","); got != "quiesce,resume,quiesce,resume" {
		t.Errorf("quiescer calls = %s, want quiesce,resume twice (two pauses)", got)
	}
	q.mu.Unlock()
}

// TestRestoreRefuses checks what a restore into a machine of another
// shape, with other devices, or on a CPU without the saved features says.
func TestRestoreRefuses(t *testing.T) {
	kvmtest.Require(t)
	m := spinning(t, Config{})
	var st *State
	err := m.WithPause(context.Background(), func() (err error) {
		st, err = m.SaveState()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*State, *Config)
		want   string
	}{
		{"another vCPU count", func(s *State, c *Config) { c.CPUs = 2 }, "vCPUs: 2 here, 1 in the saved guest"},
		{"a device it lacks", func(s *State, c *Config) { delete(s.Devices, "rtc") }, "it has no state for rtc"},
		{"a device this machine lacks", func(s *State, c *Config) {
			s.Devices["virtio-blk@00:03.0"] = DeviceState{Version: 1, State: json.RawMessage("{}")}
		}, "it has state for virtio-blk@00:03.0, which this machine lacks"},
		{"another layout version", func(s *State, c *Config) {
			d := s.Devices["serial"]
			d.Version = 9
			s.Devices["serial"] = d
		}, "device serial's state has layout version 9, this govmm reads version 1"},
		{"a CPU feature this host lacks", func(s *State, c *Config) {
			v := &s.VCPUs[0]
			for i := range v.CPUID {
				if e := &v.CPUID[i]; e.Function == 0x80000001 {
					e.EDX |= 1 << 29 // long mode: here, of course, so also...
					e.ECX |= 1 << 30 // ...a bit no x86 CPU sets (reserved)
				}
			}
		}, "lacks 1 feature(s) the saved guest saw and may use: leaf 0x80000001.0 ecx bit 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var saved State
			b, _ := json.Marshal(st)
			if err := json.Unmarshal(b, &saved); err != nil {
				t.Fatal(err)
			}
			mem, err := memory.New(st.Config.MemSize)
			if err != nil {
				t.Fatal(err)
			}
			c := Config{KVMPath: kvmtest.Path(), SerialOut: &syncBuffer{}, Restore: &Restore{State: &saved, Memory: mem}}
			c.ApplySaved(saved.Config)
			tt.change(&saved, &c)
			got, err := New(c)
			if err == nil {
				got.Close()
				t.Fatalf("New(restore) = nil error, want one saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(restore) = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestDirtyLog checks that a dirty log sees the guest's writes (its
// ring-3 rounds over 8 MiB from 4 MiB) and the VMM's own, and nothing
// once logging is off.
func TestDirtyLog(t *testing.T) {
	kvmtest.Require(t)
	m := spinning(t, Config{})
	l, err := m.StartDirtyLog()
	if err != nil {
		t.Fatal(err)
	}
	first, ok := m.mem.PageIndex(0x400000)
	if !ok {
		t.Fatal("no page at 4 MiB")
	}
	if err := m.mem.WriteAt([]byte{1}, 0x3000); err != nil { // the VMM's own write
		t.Fatal(err)
	}
	b := m.mem.NewBitmap()
	for try := 0; try < 100000 && !(b.Get(first) && b.Get(first+2047)); try++ {
		got, err := l.Collect()
		if err != nil {
			t.Fatal(err)
		}
		b.Or(got)
	}
	if !b.Get(first) || !b.Get(first+2047) {
		t.Errorf("Collect() never saw the guest write the first and last pages of its range (%d pages set)", b.Count())
	}
	vmm, _ := m.mem.PageIndex(0x3000)
	l2, err := m.StartDirtyLog()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.mem.WriteAt([]byte{1}, 0x3000); err != nil {
		t.Fatal(err)
	}
	b1, err := l.Collect()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := l2.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !b1.Get(vmm) || !b2.Get(vmm) {
		t.Errorf("a VMM write at 0x3000 seen by the logs: %v, %v; want both", b1.Get(vmm), b2.Get(vmm))
	}
	if err := errors.Join(l.Close(), l2.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Collect(); err == nil {
		t.Errorf("Collect() after Close = nil error")
	}
}
