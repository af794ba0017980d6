package machine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// stopAfterExitWrite is a vCPU observer that stops the run right after the
// guest's write to the debug-exit port has been handled (the loop checks
// for a stop before the next KVM_RUN).
type stopAfterExitWrite struct {
	cancel context.CancelFunc
	seen   bool
}

func (s *stopAfterExitWrite) Exit(ev *vcpu.Event) vcpu.Action {
	if io, ok := ev.Exit.(*kvm.IOExit); ok && io.Out && io.Port == devices.PortDebugExit+devices.DebugExitStatus {
		s.seen = true
		s.cancel()
	}
	return vcpu.Continue
}

func (s *stopAfterExitWrite) Handled(*vcpu.Event) {}

// TestNoDebugDevices: with Config.NoDebugDevices a guest cannot choose the
// VMM's exit status: the test guest's failed check writes its status to the
// debug-exit port, which nobody claims, and the run ends only when the VMM
// stops it.
func TestNoDebugDevices(t *testing.T) {
	kvmtest.Require(t)
	g := guests(t)
	tests := []struct {
		name     string
		off      bool
		want     vcpu.StopReason
		wantStat int
	}{
		{"on: the guest's status ends the VM", false, vcpu.StopPowerOff, testguest.ExitCheckFailed},
		{"off: the write goes nowhere", true, vcpu.StopCanceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var serial, log syncBuffer
			m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, g.ELF), Cmdline: "mode=check expect_mem=1234",
				MemSize: 64 << 20, CPUs: 1, SerialOut: &serial, Log: &log, NoDebugDevices: tt.off})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			obs := &stopAfterExitWrite{cancel: cancel}
			m.VCPUs()[0].SetObserver(obs)
			res, err := m.Run(ctx)
			if err != nil || res.Reason != tt.want || res.Status != tt.wantStat || !obs.seen {
				t.Fatalf("Run() = %+v, %v (exit write seen: %v), want %v with status %d\nserial:\n%s", res, err, obs.seen, tt.want, tt.wantStat, serial.String())
			}
			if got, want := m.plat.io.Unclaimed.Load() > 0, tt.off; got != want {
				t.Errorf("unclaimed port accesses > 0 = %v, want %v", got, want)
			}
			if got, want := strings.Contains(log.String(), "boot-timer: mark"), !tt.off; got != want {
				t.Errorf("boot-timer mark in the log = %v, want %v; log:\n%s", got, want, log.String())
			}
		})
	}
}
