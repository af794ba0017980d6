package kvm

import (
	"sync"
	"testing"
)

// TestSetImmediateExit checks that the flag lands in kvm_run.immediate_exit
// and leaves its neighbours alone, from many goroutines at once.
func TestSetImmediateExit(t *testing.T) {
	run := make([]byte, testRunSize)
	run[0] = 0x5a // request_interrupt_window
	run[2], run[3] = 0x77, 0x88
	v := newVCPU(0, nil, run)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { v.SetImmediateExit(true) })
	}
	wg.Wait()
	if run[runImmediateExit] != 1 {
		t.Errorf("SetImmediateExit(true): immediate_exit = %d, want 1", run[runImmediateExit])
	}
	v.SetImmediateExit(false)
	if run[runImmediateExit] != 0 {
		t.Errorf("SetImmediateExit(false): immediate_exit = %d, want 0", run[runImmediateExit])
	}
	if run[0] != 0x5a || run[2] != 0x77 || run[3] != 0x88 {
		t.Errorf("SetImmediateExit changed its neighbours: % x, want 5a 00 77 88", run[:4])
	}
}
