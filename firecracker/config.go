package firecracker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// maxConfigFile bounds a configuration file.
const maxConfigFile = 1 << 20

// ParseConfigFile reads a configuration file and returns the requests it
// stands for, in the order Firecracker applies them (logger, metrics,
// machine, boot source, drives, network interfaces), each already checked
// by ParseRequest; InstanceStart is not among them.
func ParseConfigFile(data []byte) ([]ConfigRequest, error) {
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("the configuration file is %d bytes, more than %d", len(data), maxConfigFile)
	}
	var fc FileConfig
	if err := decode(data, &fc); err != nil {
		return nil, fmt.Errorf("the configuration file: %w", err)
	}
	for _, sec := range []struct {
		name, what string
		raw        json.RawMessage
	}{{"mmds-config", "mmds", fc.MMDSConfig}, {"vsock", "vsock", fc.Vsock}, {"balloon", "balloon", fc.Balloon}, {"entropy", "entropy", fc.Entropy}, {"cpu-config", "cpu-config", fc.CPUConfig}} {
		if len(sec.raw) > 0 && string(sec.raw) != "null" {
			return nil, fmt.Errorf("the configuration file's %s: %s", sec.name, notImplemented[sec.what])
		}
	}
	if fc.BootSource == nil {
		return nil, fmt.Errorf("the configuration file has no boot-source: give one with kernel_image_path")
	}
	var reqs []ConfigRequest
	add := func(method, path string, v any) {
		b, _ := json.Marshal(v) // the types are the API's own, which always marshal
		reqs = append(reqs, ConfigRequest{method, path, b})
	}
	if fc.Logger != nil {
		add("PUT", "/logger", fc.Logger)
	}
	if fc.Metrics != nil {
		add("PUT", "/metrics", fc.Metrics)
	}
	if fc.MachineConfig != nil {
		add("PUT", "/machine-config", fc.MachineConfig)
	}
	add("PUT", "/boot-source", fc.BootSource)
	for _, d := range fc.Drives {
		add("PUT", "/drives/"+d.DriveID, d)
	}
	for _, n := range fc.NetworkInterfaces {
		add("PUT", "/network-interfaces/"+n.IfaceID, n)
	}
	for _, r := range reqs {
		if _, err := ParseRequest(r.Method, r.Path, r.Body); err != nil {
			return nil, fmt.Errorf("the configuration file: %s %s: %w", r.Method, r.Path, err)
		}
	}
	return reqs, nil
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
