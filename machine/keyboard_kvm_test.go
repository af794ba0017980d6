package machine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// TestCtrlAltDel types Ctrl-Alt-Del on the i8042's keyboard while the test
// guest waits with IRQ 1 routed through the I/O APIC: the guest reads the
// scan codes (set 1, translated by the controller) from its interrupt
// handler, sees the keys and resets through the i8042, which ends the run.
func TestCtrlAltDel(t *testing.T) {
	kvmtest.Require(t)
	w := newWatcher("powerbutton: waiting for the power button")
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), Cmdline: "mode=powerbutton", MemSize: 64 << 20, CPUs: 2, SerialOut: w})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := m.Run(ctx)
		done <- outcome{res, err}
	}()
	select {
	case <-w.seen("powerbutton: waiting for the power button"):
	case o := <-done:
		t.Fatalf("Run() = %+v, %v before the guest waited:\n%s", o.res, o.err, w.String())
	case <-ctx.Done():
		t.Fatalf("the guest did not get to wait:\n%s", w.String())
	}
	if err := m.CtrlAltDel(); err != nil {
		t.Fatalf("CtrlAltDel: %v", err)
	}
	o := <-done
	if o.err != nil || o.res.Reason != vcpu.StopReset {
		t.Errorf("Run() after Ctrl-Alt-Del = %+v, %v, want a reset\nserial:\n%s", o.res, o.err, w.String())
	}
	if !strings.Contains(w.String(), "ctrl-alt-del pressed: reset\n") {
		t.Errorf("the guest did not see the keys:\n%s", w.String())
	}
}
