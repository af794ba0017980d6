package machine

import (
	"errors"
	"testing"
	"time"
)

// TestStartupClock: steps are recorded in the order they end; a step run
// alongside is recorded when it is waited for, once however often, with
// its error; the format is what make bench -v parses.
func TestStartupClock(t *testing.T) {
	c := startClock()
	boom := errors.New("boom")
	release := make(chan struct{})
	wait := c.alongside("ram", func() error { <-release; return boom })
	c.mark("setup")
	close(release)
	for range 2 {
		if err := wait(); err != boom {
			t.Fatalf("alongside's wait() = %v, want %v", err, boom)
		}
	}
	c.mark("ram-wait")
	var names []string
	for _, p := range c.phases {
		names = append(names, p.Name)
		if p.Took < 0 {
			t.Errorf("phase %s took %v, want >= 0", p.Name, p.Took)
		}
	}
	if got, want := len(names), 3; got != want || names[0] != "setup" || names[1] != "ram" || names[2] != "ram-wait" || !c.phases[1].Alongside {
		t.Fatalf("phases = %+v, want setup, ram (alongside), ram-wait", c.phases)
	}
	phases := []Phase{{"kvm", 1234567 * time.Nanosecond, false}, {"ram", 6 * time.Millisecond, true}}
	if got, want := FormatPhases(phases), "kvm=1.235ms ram=6.000ms(alongside)"; got != want {
		t.Errorf("FormatPhases = %q, want %q", got, want)
	}
}

// TestStartupClockWaitedElsewhere: a step run alongside may be waited for
// by another step run alongside (as New's vCPUs wait for the supported
// CPUID) while New goes on marking its own: each is recorded once. Run
// with -race, this is what keeps the clock's record consistent.
func TestStartupClockWaitedElsewhere(t *testing.T) {
	c := startClock()
	waitCPUID := c.alongside("cpuid", func() error { return nil })
	waitVCPUs := c.alongside("vcpus", waitCPUID)
	for _, name := range []string{"kvm", "setup", "state"} {
		c.mark(name)
	}
	if err := waitVCPUs(); err != nil {
		t.Fatal(err)
	}
	if err := waitCPUID(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range c.phases {
		seen[p.Name]++
	}
	for _, name := range []string{"cpuid", "vcpus", "kvm", "setup", "state"} {
		if seen[name] != 1 {
			t.Errorf("phase %s recorded %d times, want once: %+v", name, seen[name], c.phases)
		}
	}
}
