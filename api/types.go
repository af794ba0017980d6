// Package api is govmm's control API: REST over a Unix socket (govmm
// -api PATH), JSON in and out, versioned paths under /v1/. The server
// drives one machine: info, pause and resume, snapshots, the ACPI power
// button, stop, live migration and metrics. Client is its Go client,
// which govmm ctl uses.
//
//	GET  /v1/info          the guest's state and shape                -> Info
//	POST /v1/pause                                                    -> Info
//	POST /v1/resume                                                   -> Info
//	POST /v1/snapshot      SnapshotRequest                            -> SnapshotResult
//	POST /v1/power-button  presses the ACPI power button              -> Info
//	POST /v1/stop          ends the guest at once                     -> Info
//	POST /v1/migrate       MigrateRequest -> a stream of MigrateEvent, one JSON object a line
//	GET  /v1/metrics                                                  -> Metrics
//
// An error is a JSON Error with a status: 400 for a request that cannot
// be done as asked, 409 when the guest's state forbids it now (already
// paused, a migration under way), 404 for another path or method, 500
// when the VMM failed, 502 when a migration's destination cannot be
// reached.
package api

import "time"

// Version is the API's path prefix.
const Version = "/v1"

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// Guest states in Info.
const (
	StateRunning  = "running"
	StatePaused   = "paused"
	StateStopping = "stopping" // stop asked, or migrated away
)

// Info describes the guest.
type Info struct {
	State       string   `json:"state"`
	VCPUs       int      `json:"vcpus"`
	MemoryBytes uint64   `json:"memory_bytes"`
	Devices     []string `json:"devices,omitempty"`
	// Host is the kind of KVM host: hardware, pvm.
	Host   string `json:"host"`
	Govmm  string `json:"govmm"`
	Uptime string `json:"uptime"`
	// Restored names the snapshot or migration source the guest came
	// from, empty for a guest that booted here.
	Restored string `json:"restored,omitempty"`
	// Migrating is set while a migration is under way.
	Migrating bool `json:"migrating,omitempty"`
}

// SnapshotRequest asks for a snapshot into Dir (an absolute path; it must
// lie in one of the folders govmm was given with -snapshot-dir).
type SnapshotRequest struct {
	Dir string `json:"dir"`
	// Diff writes only the pages written since the last snapshot taken
	// with Track, which becomes its base.
	Diff bool `json:"diff,omitempty"`
	// Track counts written pages from this snapshot on, for a diff.
	Track bool `json:"track,omitempty"`
}

// SnapshotResult says what a snapshot took.
type SnapshotResult struct {
	Dir         string        `json:"dir"`
	Pages       int           `json:"pages"`
	MemoryBytes uint64        `json:"memory_bytes"`
	StateBytes  int           `json:"state_bytes"`
	Paused      time.Duration `json:"paused_ns"`
	Base        string        `json:"base,omitempty"`
}

// MigrateRequest asks for a live migration to a govmm waiting with
// -incoming on URI ("tcp:HOST:PORT").
type MigrateRequest struct {
	URI string `json:"uri"`
	// Downtime is the target the rounds aim under (default 300 ms).
	Downtime time.Duration `json:"downtime_ns,omitempty"`
	// Bandwidth caps the sending rate in bytes per second (0: none).
	Bandwidth int64 `json:"bandwidth,omitempty"`
	// MaxRounds and MaxTime bound the live rounds (defaults 30, 5 min);
	// OnLimit is what happens then: "finish" (pause and send the rest,
	// the default) or "cancel" (give up; the guest goes on here).
	MaxRounds int           `json:"max_rounds,omitempty"`
	MaxTime   time.Duration `json:"max_time_ns,omitempty"`
	OnLimit   string        `json:"on_limit,omitempty"`
}

// MigrateEvent is one line of /v1/migrate's answer: progress after each
// round and phase, then a last line with Result or Error.
type MigrateEvent struct {
	Progress *MigrateProgress `json:"progress,omitempty"`
	Result   *MigrateResult   `json:"result,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// MigrateProgress is the migration after a round or phase.
type MigrateProgress struct {
	Phase     string        `json:"phase"`
	Round     int           `json:"round"`
	SentBytes int64         `json:"sent_bytes"`
	Pages     int64         `json:"pages"`
	Dirty     int           `json:"dirty_pages"`
	DirtyRate float64       `json:"dirty_bytes_per_s"`
	Bandwidth float64       `json:"bandwidth_bytes_per_s"`
	Downtime  time.Duration `json:"downtime_ns"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// MigrateResult is a finished migration: the guest runs on the
// destination, and this govmm exits.
type MigrateResult struct {
	Rounds    int           `json:"rounds"`
	Total     time.Duration `json:"total_ns"`
	Downtime  time.Duration `json:"downtime_ns"`
	SentBytes int64         `json:"sent_bytes"`
	Pages     int64         `json:"pages"`
	Converged bool          `json:"converged"`
}

// Metrics are the VMM's counters: per vCPU, per device, and the exits.
type Metrics struct {
	// Machine is machine.Metrics: fixups per vCPU, unclaimed accesses,
	// device counters.
	Machine any `json:"machine"`
	// Exits are the exit statistics by reason and device (package
	// trace), when govmm keeps them.
	Exits any `json:"exits,omitempty"`
	// Cgroup is the usage of the cgroup govmm jail put govmm in
	// (jail.Usage: memory, CPU time and throttling, tasks), when it runs
	// in one.
	Cgroup any `json:"cgroup,omitempty"`
}
