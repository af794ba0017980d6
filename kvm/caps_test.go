package kvm

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeExtensions answers KVM_CHECK_EXTENSION from a table; a capability in
// fail answers with that error.
type fakeExtensions struct {
	caps map[Cap]int
	fail map[Cap]error
}

func (f fakeExtensions) CheckExtension(c Cap) (int, error) {
	if err := f.fail[c]; err != nil {
		return 0, err
	}
	return f.caps[c], nil
}

// fullKVM is what this project's hosts answer (a PVM host: 2 CPUs).
func fullKVM() map[Cap]int {
	return map[Cap]int{CapImmediateExit: 1, CapIRQChip: 1, CapPIT2: 1, CapNrVCPUs: 2, CapMaxVCPUs: 1024}
}

func without(c Cap) map[Cap]int {
	m := fullKVM()
	delete(m, c)
	return m
}

func TestCheckCaps(t *testing.T) {
	tests := []struct {
		name        string
		caps        map[Cap]int
		needs       Needs
		want        VCPULimits
		wantMissing []Cap    // each as a *MissingCapError
		wantText    []string // in the error
	}{
		{"everything", fullKVM(), Needs{VCPUs: 1, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, nil, nil},
		{"more vCPUs than CPUs is allowed", fullKVM(), Needs{VCPUs: 8, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, nil, nil},
		{"at the limit", fullKVM(), Needs{VCPUs: 1024, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, nil, nil},
		{"above the limit", fullKVM(), Needs{VCPUs: 1025, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, nil,
			[]string{"1025 vCPUs requested", "at most 1024", "KVM_CAP_MAX_VCPUS", "ask for 1024 or fewer"}},
		{"no immediate exit", without(CapImmediateExit), Needs{VCPUs: 1, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, []Cap{CapImmediateExit},
			[]string{"KVM_CAP_IMMEDIATE_EXIT", "kick", "Linux 4.11 or newer"}},
		{"no irqchip", without(CapIRQChip), Needs{VCPUs: 1, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, []Cap{CapIRQChip}, []string{"KVM_CAP_IRQCHIP", "PIC"}},
		{"no pit2", without(CapPIT2), Needs{VCPUs: 1, PIT: true}, VCPULimits{Max: 1024, Recommended: 2}, []Cap{CapPIT2}, []string{"KVM_CAP_PIT2"}},
		{"no pit2, none asked for", without(CapPIT2), Needs{VCPUs: 1}, VCPULimits{Max: 1024, Recommended: 2}, nil, nil},
		{"nothing, too many vCPUs", map[Cap]int{}, Needs{VCPUs: 5, PIT: true}, VCPULimits{Max: 4, Recommended: 4}, []Cap{CapImmediateExit, CapIRQChip, CapPIT2},
			[]string{"at most 4"}},
		// KVM's API documentation: without KVM_CAP_MAX_VCPUS the limit is
		// KVM_CAP_NR_VCPUS, and without that, 4.
		{"no max: nr is the limit", without(CapMaxVCPUs), Needs{VCPUs: 3, PIT: true}, VCPULimits{Max: 2, Recommended: 2}, nil, []string{"3 vCPUs requested", "at most 2"}},
		{"neither: 4", map[Cap]int{CapImmediateExit: 1, CapIRQChip: 1, CapPIT2: 1}, Needs{VCPUs: 4, PIT: true}, VCPULimits{Max: 4, Recommended: 4}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckCaps(fakeExtensions{caps: tt.caps}, tt.needs)
			if got != tt.want {
				t.Errorf("CheckCaps(%+v) = %+v, want %+v", tt.needs, got, tt.want)
			}
			if (err != nil) != (len(tt.wantMissing)+len(tt.wantText) > 0) {
				t.Fatalf("CheckCaps(%+v) error = %v, want missing %v and text %q", tt.needs, err, tt.wantMissing, tt.wantText)
			}
			var missing []Cap
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var mc *MissingCapError
					if errors.As(e, &mc) {
						missing = append(missing, mc.Cap)
					}
				}
			}
			if len(missing) != len(tt.wantMissing) {
				t.Errorf("CheckCaps(%+v) names missing %v, want %v", tt.needs, missing, tt.wantMissing)
			}
			for i := range min(len(missing), len(tt.wantMissing)) {
				if missing[i] != tt.wantMissing[i] {
					t.Errorf("CheckCaps(%+v) names missing %v, want %v", tt.needs, missing, tt.wantMissing)
				}
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("CheckCaps(%+v) = %q, want one line", tt.needs, err)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckCaps(%+v) = %q, want it to contain %q", tt.needs, err, w)
				}
			}
		})
	}
	t.Run("KVM_CHECK_EXTENSION fails", func(t *testing.T) {
		_, err := CheckCaps(fakeExtensions{caps: fullKVM(), fail: map[Cap]error{CapPIT2: unix.EBADF}}, Needs{VCPUs: 1, PIT: true})
		if !errors.Is(err, unix.EBADF) {
			t.Errorf("CheckCaps() with a failing ioctl = %v, want it to wrap EBADF", err)
		}
	})
}
