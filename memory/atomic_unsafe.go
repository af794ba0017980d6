package memory

import (
	"sync/atomic"
	"unsafe"
)

// This file and atomic_amd64.s are memory's only unsafe code: atomic
// loads and stores need a pointer, and guest RAM is a byte slice.

// Safe: b is a Slice of 2 bytes at an address aligned to 2 (aligned
// checked it), and host mappings are page aligned, so the pointer is
// aligned and points at 2 bytes of live, mapped memory.
func load16(b []byte) uint16 { return asmLoad16((*uint16)(unsafe.Pointer(&b[0]))) }

// Safe: as load16.
func store16(b []byte, v uint16) { asmStore16((*uint16)(unsafe.Pointer(&b[0])), v) }

// Safe: b is 4 bytes at a 4-byte aligned address of a page-aligned
// mapping, so the *uint32 is aligned and in bounds.
func load32(b []byte) uint32 { return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0]))) }

// Safe: as load32.
func store32(b []byte, v uint32) { atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[0])), v) }

// In atomic_amd64.s; Go's sync/atomic has no 16-bit operations.
func asmLoad16(p *uint16) uint16
func asmStore16(p *uint16, v uint16)
func fence()
