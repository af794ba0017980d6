// Package machinetest holds what the tests that run guests share across
// packages: a console that records a guest's serial output while it runs
// and wakes a test waiting on it, and a hash of guest RAM to compare two
// machines' memory by.
package machinetest

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"sync"

	"github.com/govmm/govmm/memory"
)

// Console is a guest's serial output (machine.Config.SerialOut, or a
// govmm child's standard output), safe to read while the guest writes it.
type Console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

// NewConsole returns an empty Console.
func NewConsole() *Console { return &Console{more: make(chan struct{}, 1)} }

// Write appends p and wakes a waiter on More.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

// More receives after writes: a waiter checks what it waits for, then
// waits on More again. Writes while nobody waits leave one wake-up.
func (c *Console) More() <-chan struct{} { return c.more }

// String is everything written so far.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Count is how many times s appears in the output.
func (c *Console) Count(s string) int { return strings.Count(c.String(), s) }

// Rounds counts the test guest's mode=migrate rounds, one 'B' each.
func (c *Console) Rounds() int { return c.Count("B") }

// RAMSum is the SHA-256 of all of mem, region by region.
func RAMSum(mem *memory.Memory) [32]byte {
	h := sha256.New()
	for _, r := range mem.Regions() {
		h.Write(r.Host)
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}
