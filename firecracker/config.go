package firecracker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// FileConfig is Firecracker's configuration file (--config-file), with
// its kebab-case section names, and GET /vm/config's answer.
type FileConfig struct {
	BootSource        *BootSource        `json:"boot-source,omitempty"`
	Drives            []Drive            `json:"drives"`
	MachineConfig     *machineConfigBody `json:"machine-config,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"network-interfaces"`
	Logger            *Logger            `json:"logger,omitempty"`
	Metrics           *Metrics           `json:"metrics,omitempty"`
	MMDSConfig        json.RawMessage    `json:"mmds-config,omitempty"`
	Vsock             json.RawMessage    `json:"vsock,omitempty"`
	Balloon           json.RawMessage    `json:"balloon,omitempty"`
	Entropy           json.RawMessage    `json:"entropy,omitempty"`
	CPUConfig         json.RawMessage    `json:"cpu-config,omitempty"`
}

// ConfigRequest is one request a configuration file stands for.
type ConfigRequest struct {
	Method, Path string
	Body         []byte
}

// ConfigFile is a configuration file read: the requests it stands for,
// and the top-level sections it has that Firecracker does not know,
// which Firecracker ignores (flintlock writes "MmdsConfig") and so does
// govmm, saying so.
type ConfigFile struct {
	Requests []ConfigRequest
	Ignored  []string
}

// maxConfigFile bounds a configuration file.
const maxConfigFile = 1 << 20

// ParseConfigFile reads a configuration file: the requests it stands
// for, in the order Firecracker applies them (logger, metrics, machine,
// boot source, drives, network interfaces), each already checked by
// ParseRequest (InstanceStart is not among them), and the sections it
// ignores. Inside a section, as in a request, unknown fields are refused.
func ParseConfigFile(data []byte) (ConfigFile, error) {
	if len(data) > maxConfigFile {
		return ConfigFile{}, fmt.Errorf("the configuration file is %d bytes, more than %d", len(data), maxConfigFile)
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(data, &sections); err != nil {
		return ConfigFile{}, fmt.Errorf("the configuration file: %w", err)
	}
	var out ConfigFile
	for name := range sections {
		if !knownSections[name] {
			out.Ignored = append(out.Ignored, name)
		}
	}
	slices.Sort(out.Ignored)
	present := func(name string) bool { raw, ok := sections[name]; return ok && string(raw) != "null" }
	for _, sec := range []struct{ name, what string }{{"mmds-config", "mmds"}, {"vsock", "vsock"}, {"balloon", "balloon"}, {"entropy", "entropy"}, {"cpu-config", "cpu-config"}} {
		if present(sec.name) {
			return ConfigFile{}, fmt.Errorf("the configuration file's %s: %s", sec.name, notImplemented[sec.what])
		}
	}
	if !present("boot-source") {
		return ConfigFile{}, fmt.Errorf("the configuration file has no boot-source: give one with kernel_image_path")
	}
	// Each section goes to ParseRequest as the body it is, so that its
	// fields are checked as a request's are.
	var reqs []ConfigRequest
	for _, sec := range []struct{ name, path string }{{"logger", "/logger"}, {"metrics", "/metrics"}, {"machine-config", "/machine-config"}, {"boot-source", "/boot-source"}} {
		if present(sec.name) {
			reqs = append(reqs, ConfigRequest{"PUT", sec.path, sections[sec.name]})
		}
	}
	for _, sec := range []struct{ name, path, id string }{{"drives", "/drives/", "drive_id"}, {"network-interfaces", "/network-interfaces/", "iface_id"}} {
		if !present(sec.name) {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(sections[sec.name], &items); err != nil {
			return ConfigFile{}, fmt.Errorf("the configuration file's %s: give a list: %w", sec.name, err)
		}
		for i, item := range items {
			var ids map[string]json.RawMessage
			var id string
			if err := json.Unmarshal(item, &ids); err != nil || json.Unmarshal(ids[sec.id], &id) != nil {
				return ConfigFile{}, fmt.Errorf("the configuration file's %s[%d]: give an object with %s, a string", sec.name, i, sec.id)
			}
			reqs = append(reqs, ConfigRequest{"PUT", sec.path + id, item})
		}
	}
	for _, r := range reqs {
		if _, err := ParseRequest(r.Method, r.Path, r.Body); err != nil {
			return ConfigFile{}, fmt.Errorf("the configuration file: %s %s: %w", r.Method, r.Path, err)
		}
	}
	out.Requests = reqs
	return out, nil
}

// knownSections are the configuration file's sections, as Firecracker
// v1.4's VmmConfig names them.
var knownSections = map[string]bool{
	"boot-source": true, "drives": true, "machine-config": true, "network-interfaces": true, "logger": true,
	"metrics": true, "mmds-config": true, "vsock": true, "balloon": true, "entropy": true, "cpu-config": true,
}

// Apply makes the requests of a configuration file and then starts the
// microVM, as Firecracker does with --config-file.
func (s *Server) Apply(ctx context.Context, reqs []ConfigRequest) error {
	for _, r := range append(reqs, ConfigRequest{"PUT", "/actions", []byte(`{"action_type":"InstanceStart"}`)}) {
		if status, out := s.Handle(ctx, r.Method, r.Path, r.Body); status != http.StatusNoContent {
			var f Fault
			if json.Unmarshal(out, &f) != nil {
				f.FaultMessage = string(out)
			}
			return fmt.Errorf("the configuration file: %s %s: %s", r.Method, r.Path, f.FaultMessage)
		}
	}
	return nil
}

// fileConfigLocked is the configuration now, as GET /vm/config gives it.
func (s *Server) fileConfigLocked() FileConfig {
	m := s.cfg.Machine
	fc := FileConfig{
		BootSource:        s.cfg.BootSource,
		Drives:            append([]Drive{}, s.cfg.Drives...),
		MachineConfig:     &machineConfigBody{VCPUCount: &m.VCPUCount, MemSizeMiB: &m.MemSizeMiB, SMT: &m.SMT, TrackDirtyPages: &m.TrackDirtyPages},
		NetworkInterfaces: append([]NetworkInterface{}, s.cfg.Nets...),
	}
	return fc
}
