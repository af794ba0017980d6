package firecracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind is what a request asks for.
type Kind int

// The requests govmm answers.
const (
	GetInstanceInfo Kind = iota + 1
	GetVersion
	GetMachineConfig
	GetVMConfig
	PutMachineConfig
	PatchMachineConfig
	PutBootSource
	PutDrive
	PatchDrive
	PutNetworkInterface
	PatchNetworkInterface
	PutLogger
	PutMetrics
	PutAction
	PatchVM
	PutSnapshotCreate
	PutSnapshotLoad
)

// Request is one parsed and checked API request: Kind says which of the
// other fields holds its body.
type Request struct {
	Kind           Kind
	MachineConfig  machineConfigBody
	BootSource     BootSource
	Drive          Drive
	PartialDrive   PartialDrive
	Net            NetworkInterface
	PartialNet     PartialNetworkInterface
	Logger         Logger
	Metrics        Metrics
	Action         InstanceAction
	VM             VM
	SnapshotCreate SnapshotCreate
	SnapshotLoad   SnapshotLoad
}

// Error is a request refused: the server answers 400 with Message as the
// fault_message.
type Error struct{ Message string }

func (e *Error) Error() string { return e.Message }

func faultf(format string, a ...any) error { return &Error{fmt.Sprintf(format, a...)} }

// Messages Firecracker gives, which clients match on.
const (
	msgPreBoot    = "The requested operation is not supported before starting the microVM."
	msgPostBoot   = "The requested operation is not supported after starting the microVM."
	msgIDMismatch = "The id from the path does not match the id from the body!"
	msgIDChars    = "API Resource IDs can only contain alphanumeric characters and underscores."
	msgEmptyID    = "The ID cannot be empty."
)

// notImplemented names the parts of Firecracker's API govmm does not have.
var notImplemented = map[string]string{
	"mmds":       "MMDS (the microVM metadata service) is not implemented in govmm: leave out /mmds, --metadata and mmds-config, and give the guest its metadata another way (kernel command line, a drive)",
	"vsock":      "vsock is not implemented in govmm: leave out /vsock; reach the guest over a network interface or its serial console",
	"balloon":    "the balloon device is not implemented in govmm: leave out /balloon",
	"entropy":    "the entropy device is not configurable through this API in govmm: leave out /entropy",
	"cpu-config": "custom CPU templates are not implemented in govmm: leave out /cpu-config",
}

// ParseRequest reads one request: its method, its path (with the leading
// slash, no query) and its body. It checks everything that does not
// depend on the microVM's state: the path, the IDs, the body's fields and
// their words. Every error is an *Error.
func ParseRequest(method, path string, body []byte) (Request, error) {
	if len(body) > MaxPayload {
		return Request{}, faultf("The request body is %d bytes, more than the %d bytes allowed.", len(body), MaxPayload)
	}
	if !strings.HasPrefix(path, "/") {
		return Request{}, invalidPath(method, path)
	}
	tokens := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(tokens) > 1 && tokens[len(tokens)-1] == "" {
		tokens = tokens[:len(tokens)-1] // a trailing slash
	}
	switch method {
	case "GET":
		if len(bytes.TrimSpace(body)) > 0 {
			return Request{}, faultf("GET request cannot have a body.")
		}
	case "PUT", "PATCH":
		if len(bytes.TrimSpace(body)) == 0 {
			return Request{}, faultf("Empty %s request.", method)
		}
	default:
		return Request{}, invalidPath(method, path)
	}
	if msg, ok := notImplemented[tokens[0]]; ok {
		return Request{}, &Error{msg}
	}
	var r Request
	var err error
	one := len(tokens) == 1
	switch {
	case method == "GET" && path == "/":
		r.Kind = GetInstanceInfo
	case method == "GET" && tokens[0] == "version" && one:
		r.Kind = GetVersion
	case method == "GET" && tokens[0] == "machine-config" && one:
		r.Kind = GetMachineConfig
	case method == "GET" && tokens[0] == "vm" && len(tokens) == 2 && tokens[1] == "config":
		r.Kind = GetVMConfig
	case method == "PUT" && tokens[0] == "machine-config" && one:
		r.Kind, err = PutMachineConfig, parseMachineConfig(body, &r.MachineConfig, true)
	case method == "PATCH" && tokens[0] == "machine-config" && one:
		r.Kind, err = PatchMachineConfig, parseMachineConfig(body, &r.MachineConfig, false)
	case method == "PUT" && tokens[0] == "boot-source" && one:
		r.Kind, err = PutBootSource, parseBootSource(body, &r.BootSource)
	case method == "PUT" && tokens[0] == "drives":
		r.Kind, err = PutDrive, parseDrive(body, tokens, &r.Drive)
	case method == "PATCH" && tokens[0] == "drives":
		r.Kind, err = PatchDrive, parsePartialDrive(body, tokens, &r.PartialDrive)
	case method == "PUT" && tokens[0] == "network-interfaces":
		r.Kind, err = PutNetworkInterface, parseNet(body, tokens, &r.Net)
	case method == "PATCH" && tokens[0] == "network-interfaces":
		r.Kind, err = PatchNetworkInterface, parsePartialNet(body, tokens, &r.PartialNet)
	case method == "PUT" && tokens[0] == "logger" && one:
		r.Kind, err = PutLogger, parseLogger(body, &r.Logger)
	case method == "PUT" && tokens[0] == "metrics" && one:
		r.Kind, err = PutMetrics, decodeRequired(body, &r.Metrics, "metrics_path")
	case method == "PUT" && tokens[0] == "actions" && one:
		r.Kind, err = PutAction, parseAction(body, &r.Action)
	case method == "PATCH" && tokens[0] == "vm" && one:
		r.Kind, err = PatchVM, parseVM(body, &r.VM)
	case method == "PUT" && tokens[0] == "snapshot" && len(tokens) == 2 && tokens[1] == "create":
		r.Kind, err = PutSnapshotCreate, parseSnapshotCreate(body, &r.SnapshotCreate)
	case method == "PUT" && tokens[0] == "snapshot" && len(tokens) == 2 && tokens[1] == "load":
		r.Kind, err = PutSnapshotLoad, parseSnapshotLoad(body, &r.SnapshotLoad)
	default:
		return Request{}, invalidPath(method, path)
	}
	if err != nil {
		return Request{}, err
	}
	return r, nil
}

func invalidPath(method, path string) error {
	return faultf("Invalid request method and/or path: %s %s.", method, path)
}

// decode reads body, one JSON object and nothing after it, into v,
// refusing fields v does not have.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return faultf("An error occurred when deserializing the json body of a request: %v.", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return faultf("An error occurred when deserializing the json body of a request: more than one JSON value.")
	}
	return nil
}

// decodeRequired decodes body into v after checking that the fields
// named are there and not null.
func decodeRequired(body []byte, v any, required ...string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return faultf("An error occurred when deserializing the json body of a request: %v.", err)
	}
	for _, f := range required {
		if raw, ok := fields[f]; !ok || string(raw) == "null" {
			return faultf("An error occurred when deserializing the json body of a request: missing field `%s`.", f)
		}
	}
	return decode(body, v)
}

// checkID checks a path's resource ID and that the body names the same.
func checkID(tokens []string, bodyID string) error {
	if len(tokens) < 2 || tokens[1] == "" {
		return &Error{msgEmptyID}
	}
	if len(tokens) > 2 || !validID(tokens[1]) {
		return &Error{msgIDChars}
	}
	if tokens[1] != bodyID {
		return &Error{msgIDMismatch}
	}
	return nil
}

// validID says whether id matches [A-Za-z0-9_]+.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// MaxVCPUs is the most vCPUs Firecracker allows.
const MaxVCPUs = 32

func parseMachineConfig(body []byte, m *machineConfigBody, put bool) error {
	var err error
	if put {
		err = decodeRequired(body, m, "vcpu_count", "mem_size_mib")
	} else {
		err = decode(body, m)
	}
	if err != nil {
		return err
	}
	if *m == (machineConfigBody{}) {
		return faultf("Empty PATCH request.")
	}
	if m.HTEnabled != nil {
		if m.SMT != nil && *m.SMT != *m.HTEnabled {
			return faultf("ht_enabled and smt disagree: give smt only (ht_enabled is its old name)")
		}
		m.SMT, m.HTEnabled = m.HTEnabled, nil
	}
	if m.VCPUCount != nil && (*m.VCPUCount < 1 || *m.VCPUCount > MaxVCPUs) {
		return faultf("The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled; it must be between 1 and %d.", MaxVCPUs)
	}
	if m.MemSizeMiB != nil && *m.MemSizeMiB < 1 {
		return faultf("The memory size (MiB) is invalid: give at least 1.")
	}
	if m.CPUTemplate != nil && *m.CPUTemplate != "" && *m.CPUTemplate != "None" {
		return faultf("cpu_template %q: CPU templates are not implemented in govmm; leave it out or give None", *m.CPUTemplate)
	}
	return nil
}

func parseBootSource(body []byte, b *BootSource) error {
	if err := decodeRequired(body, b, "kernel_image_path"); err != nil {
		return err
	}
	if b.KernelImagePath == "" {
		return faultf("kernel_image_path is empty: give the path of the guest's kernel")
	}
	return nil
}

// noRateLimiter refuses a rate limiter with buckets.
func noRateLimiter(what string, r *RateLimiter) error {
	if r != nil && (r.Bandwidth != nil || r.Ops != nil) {
		return faultf("%s: rate limiters are not implemented in govmm; leave it out", what)
	}
	return nil
}

func parseDrive(body []byte, tokens []string, d *Drive) error {
	if err := decodeRequired(body, d, "drive_id", "path_on_host", "is_root_device"); err != nil {
		return err
	}
	if err := checkID(tokens, d.DriveID); err != nil {
		return err
	}
	if d.PathOnHost == "" {
		return faultf("path_on_host is empty: give the drive's backing file")
	}
	switch d.CacheType {
	case "", "Unsafe", "Writeback":
	default:
		return faultf("cache_type %q: give Unsafe or Writeback", d.CacheType)
	}
	switch d.IOEngine {
	case "", "Sync", "Async":
	default:
		return faultf("io_engine %q: give Sync or Async", d.IOEngine)
	}
	if d.PartUUID != "" && !d.IsRootDevice {
		return faultf("partuuid is for the root device: set is_root_device too, or leave partuuid out")
	}
	return noRateLimiter("rate_limiter", d.RateLimiter)
}

func parsePartialDrive(body []byte, tokens []string, d *PartialDrive) error {
	if err := decodeRequired(body, d, "drive_id"); err != nil {
		return err
	}
	if err := checkID(tokens, d.DriveID); err != nil {
		return err
	}
	if d.PathOnHost == "" && d.RateLimiter == nil {
		return faultf("PATCH /drives/%s changes nothing: give path_on_host", d.DriveID)
	}
	return noRateLimiter("rate_limiter", d.RateLimiter)
}

func parseNet(body []byte, tokens []string, n *NetworkInterface) error {
	if err := decodeRequired(body, n, "iface_id", "host_dev_name"); err != nil {
		return err
	}
	if err := checkID(tokens, n.IfaceID); err != nil {
		return err
	}
	if n.HostDevName == "" || len(n.HostDevName) > 15 || strings.ContainsAny(n.HostDevName, "/ ,") {
		return faultf("host_dev_name %q: give the name of a TAP device, 1 to 15 bytes", n.HostDevName)
	}
	if n.GuestMAC != "" && !validMAC(n.GuestMAC) {
		return faultf("guest_mac %q: give a unicast MAC address like 06:00:AC:10:00:02", n.GuestMAC)
	}
	if n.AllowMMDSRequests {
		return &Error{notImplemented["mmds"]}
	}
	if err := noRateLimiter("rx_rate_limiter", n.RxRateLimiter); err != nil {
		return err
	}
	return noRateLimiter("tx_rate_limiter", n.TxRateLimiter)
}

// validMAC checks six colon-separated hex octets, unicast.
func validMAC(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return false
	}
	for i, p := range parts {
		if len(p) != 2 || !isHex(p[0]) || !isHex(p[1]) {
			return false
		}
		if i == 0 && hexVal(p[1])&1 != 0 {
			return false // multicast
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func parsePartialNet(body []byte, tokens []string, n *PartialNetworkInterface) error {
	if err := decodeRequired(body, n, "iface_id"); err != nil {
		return err
	}
	if err := checkID(tokens, n.IfaceID); err != nil {
		return err
	}
	if err := noRateLimiter("rx_rate_limiter", n.RxRateLimiter); err != nil {
		return err
	}
	return noRateLimiter("tx_rate_limiter", n.TxRateLimiter)
}

// logLevels are the logger's levels, by their lower-case names.
var logLevels = map[string]int{"off": 0, "error": 1, "warning": 2, "warn": 2, "info": 3, "debug": 4, "trace": 5}

func parseLogger(body []byte, l *Logger) error {
	if err := decodeRequired(body, l, "log_path"); err != nil {
		return err
	}
	if l.LogPath == "" {
		return faultf("log_path is empty: give a file or a FIFO")
	}
	if _, ok := logLevels[strings.ToLower(l.Level)]; l.Level != "" && !ok {
		return faultf("level %q: give Error, Warning, Info, Debug, Trace or Off", l.Level)
	}
	return nil
}

func parseAction(body []byte, a *InstanceAction) error {
	if err := decodeRequired(body, a, "action_type"); err != nil {
		return err
	}
	switch a.ActionType {
	case ActionInstanceStart, ActionSendCtrlAltDel, ActionFlushMetrics:
		return nil
	}
	return faultf("action_type %q: give InstanceStart, SendCtrlAltDel or FlushMetrics", a.ActionType)
}

func parseVM(body []byte, v *VM) error {
	if err := decodeRequired(body, v, "state"); err != nil {
		return err
	}
	switch v.State {
	case VMPaused, VMResumed:
		return nil
	}
	return faultf("state %q: give Paused or Resumed", v.State)
}

func parseSnapshotCreate(body []byte, s *SnapshotCreate) error {
	if err := decodeRequired(body, s, "snapshot_path", "mem_file_path"); err != nil {
		return err
	}
	switch s.SnapshotType {
	case "", "Full":
	case "Diff":
		return faultf("Diff snapshots are not implemented in govmm's Firecracker API: give snapshot_type Full")
	default:
		return faultf("snapshot_type %q: give Full", s.SnapshotType)
	}
	if s.SnapshotPath == "" || s.MemFilePath == "" {
		return faultf("snapshot_path and mem_file_path must both name files")
	}
	if s.SnapshotPath == s.MemFilePath {
		return faultf("snapshot_path and mem_file_path are the same file: give two")
	}
	return nil
}

func parseSnapshotLoad(body []byte, s *SnapshotLoad) error {
	if err := decodeRequired(body, s, "snapshot_path"); err != nil {
		return err
	}
	switch {
	case s.MemBackend != nil && s.MemFilePath != "":
		return faultf("give the memory file as mem_backend or as mem_file_path, not both")
	case s.MemBackend == nil && s.MemFilePath == "":
		return faultf("give the memory file: mem_backend {\"backend_type\": \"File\", \"backend_path\": PATH}, or mem_file_path")
	case s.MemBackend != nil && s.MemBackend.BackendType == "Uffd":
		return faultf("mem_backend Uffd is not implemented in govmm: give backend_type File")
	case s.MemBackend != nil && s.MemBackend.BackendType != "File":
		return faultf("backend_type %q: give File", s.MemBackend.BackendType)
	case s.MemPath() == "":
		return faultf("the memory file's path is empty")
	case s.SnapshotPath == "":
		return faultf("snapshot_path is empty: give the snapshot's state file")
	}
	if s.EnableDiffSnapshots {
		return faultf("enable_diff_snapshots: diff snapshots are not implemented in govmm's Firecracker API; leave it out")
	}
	return nil
}
