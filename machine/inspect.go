package machine

import (
	"errors"

	"github.com/govmm/govmm/kvm"
)

// KVMStats opens the binary statistics of every vCPU (KVM_GET_STATS_FD),
// boot vCPU first, for the exit statistics: KVM's counters include the
// exits it handled in the kernel, which no observer sees. It returns nil
// and no error on a host whose KVM has none. Open them before Run, whose
// seccomp filter allows reading them but not the ioctl; the caller closes
// them.
func (m *Machine) KVMStats() ([]*kvm.Stats, error) {
	if n, err := m.sys.CheckExtension(kvm.CapBinaryStatsFD); err != nil || n == 0 {
		return nil, err
	}
	var out []*kvm.Stats
	for _, hw := range m.hw {
		s, err := hw.StatsFD()
		if err != nil {
			for _, o := range out {
				err = errors.Join(err, o.Close())
			}
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// CheckExtension asks the machine's KVM about a capability.
func (m *Machine) CheckExtension(c kvm.Cap) (int, error) { return m.sys.CheckExtension(c) }
