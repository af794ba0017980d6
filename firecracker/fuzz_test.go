package firecracker

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// body is the part of a parsed request its Kind says holds the body.
func (r Request) body() any {
	switch r.Kind {
	case PutMachineConfig, PatchMachineConfig:
		return r.MachineConfig
	case PutBootSource:
		return r.BootSource
	case PutDrive:
		return r.Drive
	case PatchDrive:
		return r.PartialDrive
	case PutNetworkInterface:
		return r.Net
	case PatchNetworkInterface:
		return r.PartialNet
	case PutLogger:
		return r.Logger
	case PutMetrics:
		return r.Metrics
	case PutAction:
		return r.Action
	case PatchVM:
		return r.VM
	case PutSnapshotCreate:
		return r.SnapshotCreate
	case PutSnapshotLoad:
		return r.SnapshotLoad
	}
	return nil
}

// FuzzParseRequest holds ParseRequest to its contract: every error is an
// *Error with a message, a request accepted names valid IDs that equal
// the body's, and what it accepted, written back as JSON, is accepted
// again as the same request (the parser's checks hold for what it lets
// through, and nothing it keeps depends on how the JSON was spelled).
func FuzzParseRequest(f *testing.F) {
	for _, seq := range sequences {
		for _, st := range seq {
			f.Add(st.method, st.path, []byte(strings.ReplaceAll(st.body, "$D", "/srv")))
		}
	}
	f.Add("PUT", "/drives/a", []byte(`{"drive_id":"a","path_on_host":"x","is_root_device":true,"partuuid":"p","cache_type":"Writeback","io_engine":"Async"}`))
	f.Add("PATCH", "/machine-config", []byte(`{"ht_enabled":true,"smt":false}`))
	f.Add("PUT", "/snapshot/load", []byte(`{"snapshot_path":"s","mem_backend":{"backend_type":"File","backend_path":"m"},"resume_vm":true}`))
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		r, err := ParseRequest(method, path, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("ParseRequest(%q, %q) error %v is not an *Error with a message", method, path, err)
			}
			return
		}
		if len(body) > MaxPayload {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		var id string
		switch r.Kind {
		case PutDrive:
			id = r.Drive.DriveID
		case PatchDrive:
			id = r.PartialDrive.DriveID
		case PutNetworkInterface:
			id = r.Net.IfaceID
		case PatchNetworkInterface:
			id = r.PartialNet.IfaceID
		}
		if id != "" || strings.Contains(path[1:], "/") && (r.Kind == PutDrive || r.Kind == PatchDrive || r.Kind == PutNetworkInterface || r.Kind == PatchNetworkInterface) {
			if !validID(id) || !strings.HasSuffix(strings.TrimSuffix(path, "/"), "/"+id) {
				t.Fatalf("accepted %s %s with body ID %q", method, path, id)
			}
		}
		b := r.body()
		if b == nil {
			return
		}
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal %+v: %v", b, err)
		}
		r2, err := ParseRequest(method, path, again)
		if err != nil {
			t.Fatalf("accepted %s %s %q, but not its own rewrite %s: %v", method, path, body, again, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("%s %s: %+v, rewritten %s parsed as %+v", method, path, r, again, r2)
		}
	})
}

// FuzzParseConfigFile: any file accepted stands for requests that each
// parse, starting with the boot source.
func FuzzParseConfigFile(f *testing.F) {
	f.Add([]byte(`{"boot-source":{"kernel_image_path":"/k","boot_args":"console=ttyS0"},"drives":[{"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":false}],"machine-config":{"vcpu_count":2,"mem_size_mib":1024},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"AA:FC:00:00:00:01"}],"logger":{"log_path":"/l","level":"Info"},"metrics":{"metrics_path":"/m"}}`))
	f.Add([]byte(`{"boot-source":{"kernel_image_path":"/k"},"mmds-config":{"network_interfaces":["eth0"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := ParseConfigFile(data)
		if err != nil {
			return
		}
		seen := false
		for _, name := range cf.Ignored {
			if knownSections[name] {
				t.Fatalf("the file %q: known section %s ignored", data, name)
			}
		}
		for _, r := range cf.Requests {
			if _, err := ParseRequest(r.Method, r.Path, r.Body); err != nil {
				t.Fatalf("the file %q stands for %s %s %s, refused: %v", data, r.Method, r.Path, r.Body, err)
			}
			seen = seen || r.Path == "/boot-source"
		}
		if !seen {
			t.Fatalf("the file %q was accepted without a boot source", data)
		}
	})
}

func TestParseConfigFile(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		paths      []string
		ignored    []string
		err        string
	}{
		// flintlock (infrastructure/firecracker/config.go, types.go):
		// its MMDS section is named MmdsConfig, which Firecracker
		// ignores as an unknown section.
		{"flintlock", `{"drives":[{"drive_id":"root","path_on_host":"/r","is_root_device":true,"is_read_only":false,"cache_type":"Unsafe"}],"boot-source":{"kernel_image_path":"/k/vmlinux","boot_args":"console=ttyS0 reboot=k panic=1 i8042.noaux network-config=dmVyc2lvbjogMgo="},"logger":{"log_path":"/s/firecracker.log","level":"Debug","show_level":true,"show_log_origin":true},"machine-config":{"vcpu_count":2,"mem_size_mib":2048,"smt":false,"track_dirty_pages":false},"metrics":{"metrics_path":"/s/firecracker.metrics"},"MmdsConfig":{"network_interfaces":["eth0"],"version":"V1"},"network-interfaces":[{"iface_id":"eth0","host_dev_name":"fltap0","guest_mac":"AA:FF:00:00:00:01"}]}`,
			[]string{"/logger", "/metrics", "/machine-config", "/boot-source", "/drives/root", "/network-interfaces/eth0"}, []string{"MmdsConfig"}, ""},
		{"kata", `{"boot-source":{"kernel_image_path":"/k","initrd_path":"/i"},"drives":[],"machine-config":{"vcpu_count":1,"mem_size_mib":2048,"ht_enabled":false},"network-interfaces":[]}`,
			[]string{"/machine-config", "/boot-source"}, nil, ""},
		{"no boot source", `{"drives":[]}`, nil, nil, "no boot-source"},
		{"mmds", `{"boot-source":{"kernel_image_path":"/k"},"mmds-config":{"network_interfaces":["eth0"]}}`, nil, nil, "MMDS"},
		{"vsock", `{"boot-source":{"kernel_image_path":"/k"},"vsock":{"guest_cid":3,"uds_path":"/v"}}`, nil, nil, "vsock is not implemented"},
		{"unknown section in a section", `{"boot-source":{"kernel_image_path":"/k","gpu":{}}}`, nil, nil, `unknown field "gpu"`},
		{"bad drive", `{"boot-source":{"kernel_image_path":"/k"},"drives":[{"drive_id":"a-b","path_on_host":"/r","is_root_device":true}]}`, nil, nil, "alphanumeric"},
		{"snake case", `{"boot_source":{"kernel_image_path":"/k"}}`, nil, nil, `no boot-source`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf, err := ParseConfigFile([]byte(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseConfigFile = %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, r := range cf.Requests {
				paths = append(paths, r.Path)
			}
			if !reflect.DeepEqual(paths, tc.paths) {
				t.Errorf("requests %v, want %v", paths, tc.paths)
			}
			if !reflect.DeepEqual(cf.Ignored, tc.ignored) {
				t.Errorf("ignored sections %q, want %q", cf.Ignored, tc.ignored)
			}
		})
	}
}
