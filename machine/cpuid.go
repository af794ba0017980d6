package machine

import (
	"fmt"
	"io"
	"strings"

	"github.com/govmm/govmm/vcpu"
)

// reportVisible says in the verbose log which CPU features govmm hid that
// the guest will see anyway, as KVM_GET_CPUID2 tells.
func reportVisible(log io.Writer, id int, visible []vcpu.CPUIDBit, hidden int) {
	if hidden == 0 {
		return
	}
	if len(visible) == 0 {
		fmt.Fprintf(log, "govmm: vcpu %d: KVM keeps all %d hidden CPUID features hidden\n", id, hidden)
		return
	}
	names := make([]string, len(visible))
	for i, b := range visible {
		names[i] = b.Name
	}
	fmt.Fprintf(log, "govmm: vcpu %d: KVM shows %d of the %d hidden CPUID features anyway: %s\n", id, len(visible), hidden, strings.Join(names, ","))
}

// sameBits reports whether two lists name the same bits in the same order.
func sameBits(a, b []vcpu.CPUIDBit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
