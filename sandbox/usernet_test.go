package sandbox

import (
	"testing"
)

// TestUserNetworkRules: the extra rules name real calls, none twice or
// already in the base list, each with its reason, and assemble with it.
func TestUserNetworkRules(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules(1) {
		seen[r.Syscall] = true
	}
	for _, r := range UserNetworkRules() {
		if _, ok := syscallNumber(r.Syscall); !ok || seen[r.Syscall] || r.Why == "" {
			t.Errorf("UserNetworkRules: %q is unknown, repeated or without a reason", r.Syscall)
		}
		seen[r.Syscall] = true
	}
	if _, err := Program(append(Rules(1), UserNetworkRules()...), ActionTrap); err != nil {
		t.Fatal(err)
	}
}

// TestUserNetworkWithMobility: a guest with -net user under -api gets
// both extra lists, which name some calls twice (socket, connect, ...):
// the filter still assembles, and allows what either allows.
func TestUserNetworkWithMobility(t *testing.T) {
	if _, err := Program(append(append(Rules(1), UserNetworkRules()...), MobilityRules()...), ActionTrap); err != nil {
		t.Fatalf("Program(base + user network + mobility) = %v", err)
	}
}
