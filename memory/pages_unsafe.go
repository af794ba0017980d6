package memory

import "unsafe"

// hostAddr is the virtual address of the first byte of host, for
// /proc/self/pagemap's index.
func hostAddr(host []byte) uintptr {
	// Safe: only the address is taken, as an integer; nothing is read or
	// written through it.
	return uintptr(unsafe.Pointer(unsafe.SliceData(host)))
}
