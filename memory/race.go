//go:build race

package memory

import "sync/atomic"

// The race detector does not see the assembly accessors as
// synchronization; in race builds each atomic store also releases, and
// each atomic load acquires, this variable, which gives it the
// happens-before edges the real memory ordering gives.
var raceSync atomic.Uint64

func raceRelease() { raceSync.Add(1) }
func raceAcquire() { raceSync.Load() }
