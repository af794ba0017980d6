package machine

import (
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
	res, out, err := runUntil(t, Config{Kernel: readFile(t, guests(t).ELF), Cmdline: "mode=powerbutton", MemSize: 64 << 20, CPUs: 2},
		"powerbutton: waiting for the power button", time.Minute, (*Machine).CtrlAltDel)
	if err != nil || res.Reason != vcpu.StopReset {
		t.Errorf("Run() after Ctrl-Alt-Del = %+v, %v, want a reset\nserial:\n%s", res, err, out)
	}
	if !strings.Contains(out, "ctrl-alt-del pressed: reset\n") {
		t.Errorf("the guest did not see the keys:\n%s", out)
	}
}
