// Package firecracker is a Firecracker-compatible API for govmm: the
// HTTP-over-Unix-socket API and the configuration file that orchestrators
// (firectl, firecracker-containerd, Kata Containers, flintlock, the Go
// SDK) use to drive Firecracker, answered by a govmm machine. It follows
// Firecracker's API v1.4.1 (src/api_server/swagger/firecracker.yaml at
// that tag), the subset those tools call.
//
// The package parses and checks requests (parse.go), keeps the microVM's
// configuration and state and answers as Firecracker does (server.go):
// writes 204 with no body, reads 200 with JSON, every error 400 with
// {"fault_message": "..."}. What runs the guest is a VMM given to the
// server; cmd/govmm implements it with package machine.
package firecracker

// Version is the Firecracker release whose API this package follows; GET
// /version and --version report it.
const Version = "1.4.1"

// AppName is what GET / names the program.
const AppName = "Firecracker"

// DefaultID is the instance ID without --id, as Firecracker names it.
const DefaultID = "anonymous-instance"

// MaxPayload is the largest request body accepted, Firecracker's default
// (--http-api-max-payload-size).
const MaxPayload = 51200

// State is the microVM's state as GET / reports it.
type State string

// The states.
const (
	NotStarted State = "Not started"
	Running    State = "Running"
	Paused     State = "Paused"
)

// InstanceInfo is GET /'s answer. Started is not in Firecracker v1.4's
// answer: it is the field Firecracker before v1.0 gave instead of State,
// which Kata's bundled client still polls for (vmRunning in
// src/runtime/virtcontainers/fc.go).
type InstanceInfo struct {
	AppName    string `json:"app_name"`
	ID         string `json:"id"`
	State      State  `json:"state"`
	Started    bool   `json:"started"`
	VMMVersion string `json:"vmm_version"`
}

// VersionInfo is GET /version's answer.
type VersionInfo struct {
	FirecrackerVersion string `json:"firecracker_version"`
}

// Fault is the body of every error answer.
type Fault struct {
	FaultMessage string `json:"fault_message"`
}

// MachineConfig is /machine-config's body and answer.
type MachineConfig struct {
	VCPUCount       int    `json:"vcpu_count"`
	MemSizeMiB      int    `json:"mem_size_mib"`
	SMT             bool   `json:"smt"`
	CPUTemplate     string `json:"cpu_template,omitempty"`
	TrackDirtyPages bool   `json:"track_dirty_pages"`
}

// machineConfigBody is what PUT and PATCH /machine-config may carry:
// pointers, to tell a field left out from a zero. ht_enabled is the name
// older clients (Firecracker before v0.25) gave smt.
type machineConfigBody struct {
	VCPUCount       *int    `json:"vcpu_count"`
	MemSizeMiB      *int    `json:"mem_size_mib"`
	SMT             *bool   `json:"smt"`
	HTEnabled       *bool   `json:"ht_enabled"`
	CPUTemplate     *string `json:"cpu_template"`
	TrackDirtyPages *bool   `json:"track_dirty_pages"`
}

// BootSource is PUT /boot-source's body.
type BootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	BootArgs        string `json:"boot_args,omitempty"`
	InitrdPath      string `json:"initrd_path,omitempty"`
}

// RateLimiter is accepted only empty: govmm does not limit I/O rates.
type RateLimiter struct {
	Bandwidth *TokenBucket `json:"bandwidth,omitempty"`
	Ops       *TokenBucket `json:"ops,omitempty"`
}

// TokenBucket is a rate limiter's bucket.
type TokenBucket struct {
	Size         int64 `json:"size"`
	OneTimeBurst int64 `json:"one_time_burst,omitempty"`
	RefillTime   int64 `json:"refill_time"`
}

// Drive is PUT /drives/{drive_id}'s body.
type Drive struct {
	DriveID      string       `json:"drive_id"`
	PathOnHost   string       `json:"path_on_host"`
	IsRootDevice bool         `json:"is_root_device"`
	IsReadOnly   bool         `json:"is_read_only"`
	PartUUID     string       `json:"partuuid,omitempty"`
	CacheType    string       `json:"cache_type,omitempty"` // Unsafe (default) or Writeback
	IOEngine     string       `json:"io_engine,omitempty"`  // Sync (default) or Async
	RateLimiter  *RateLimiter `json:"rate_limiter,omitempty"`
}

// PartialDrive is PATCH /drives/{drive_id}'s body.
type PartialDrive struct {
	DriveID     string       `json:"drive_id"`
	PathOnHost  string       `json:"path_on_host,omitempty"`
	RateLimiter *RateLimiter `json:"rate_limiter,omitempty"`
}

// NetworkInterface is PUT /network-interfaces/{iface_id}'s body.
type NetworkInterface struct {
	IfaceID           string       `json:"iface_id"`
	HostDevName       string       `json:"host_dev_name"`
	GuestMAC          string       `json:"guest_mac,omitempty"`
	RxRateLimiter     *RateLimiter `json:"rx_rate_limiter,omitempty"`
	TxRateLimiter     *RateLimiter `json:"tx_rate_limiter,omitempty"`
	AllowMMDSRequests bool         `json:"allow_mmds_requests,omitempty"` // older clients; must be false
}

// PartialNetworkInterface is PATCH /network-interfaces/{iface_id}'s body.
type PartialNetworkInterface struct {
	IfaceID       string       `json:"iface_id"`
	RxRateLimiter *RateLimiter `json:"rx_rate_limiter,omitempty"`
	TxRateLimiter *RateLimiter `json:"tx_rate_limiter,omitempty"`
}

// Logger is PUT /logger's body.
type Logger struct {
	LogPath       string `json:"log_path"`
	Level         string `json:"level,omitempty"`
	ShowLevel     bool   `json:"show_level,omitempty"`
	ShowLogOrigin bool   `json:"show_log_origin,omitempty"`
}

// Metrics is PUT /metrics's body.
type Metrics struct {
	MetricsPath string `json:"metrics_path"`
}

// Action types of PUT /actions.
const (
	ActionInstanceStart  = "InstanceStart"
	ActionSendCtrlAltDel = "SendCtrlAltDel"
	ActionFlushMetrics   = "FlushMetrics"
)

// InstanceAction is PUT /actions's body.
type InstanceAction struct {
	ActionType string `json:"action_type"`
}

// VM states of PATCH /vm.
const (
	VMPaused  = "Paused"
	VMResumed = "Resumed"
)

// VM is PATCH /vm's body.
type VM struct {
	State string `json:"state"`
}

// SnapshotCreate is PUT /snapshot/create's body.
type SnapshotCreate struct {
	SnapshotType string `json:"snapshot_type,omitempty"` // Full (default) or Diff
	SnapshotPath string `json:"snapshot_path"`
	MemFilePath  string `json:"mem_file_path"`
	Version      string `json:"version,omitempty"`
}

// MemBackend is where a snapshot's guest memory comes from.
type MemBackend struct {
	BackendType string `json:"backend_type"` // File (Uffd is refused)
	BackendPath string `json:"backend_path"`
}

// SnapshotLoad is PUT /snapshot/load's body: the memory file given as
// mem_file_path (older clients) or mem_backend, not both.
type SnapshotLoad struct {
	SnapshotPath        string      `json:"snapshot_path"`
	MemFilePath         string      `json:"mem_file_path,omitempty"`
	MemBackend          *MemBackend `json:"mem_backend,omitempty"`
	EnableDiffSnapshots bool        `json:"enable_diff_snapshots,omitempty"`
	ResumeVM            bool        `json:"resume_vm,omitempty"`
}

// MemPath is the memory file the request names.
func (l SnapshotLoad) MemPath() string {
	if l.MemBackend != nil {
		return l.MemBackend.BackendPath
	}
	return l.MemFilePath
}
