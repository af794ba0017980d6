package devices

import (
	"fmt"
	"sort"
)

// Unregister releases the range registered at base with name, as Register
// made it. The PCI model uses it when the guest moves a BAR or turns its
// decoding off. An access already dispatched to the device may still run
// after Unregister returns.
func (b *Bus) Unregister(base uint64, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].Base >= base })
	if i == len(b.ranges) || b.ranges[i].Base != base || b.ranges[i].Name != name {
		return fmt.Errorf("%s %s range at %#x is not registered", name, b.space, base)
	}
	b.ranges = append(b.ranges[:i], b.ranges[i+1:]...)
	return nil
}
