package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// sampleFile is a small but whole state file body.
func sampleFile() *File {
	v := vcpu.State{Regs: kvm.Regs{RIP: 0x100200, RAX: 1<<63 | 5}, TSCKHz: 2600000,
		MSRs: []kvm.MSREntry{{Index: 0x10, Data: 1 << 62}}, CPUID: []kvm.CPUIDEntry{{Function: 1, ECX: 0x80000000}}}
	v.LAPIC.Regs[0x20] = 7
	v.XSAVE.SetMXCSR(0x1f80)
	return &File{
		Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Machine: &machine.State{
			Config:  machine.SavedConfig{MemSize: 64 << 20, CPUs: 1, PIT: machine.PITUser, DebugDevices: true, Cmdline: "mode=migrate"},
			VCPUs:   []vcpu.State{v},
			Devices: map[string]machine.DeviceState{"serial": {Version: 1, State: []byte(`{"DLL":12}`)}},
		},
		Memory: MemoryInfo{Name: "memory-0123456789ab", Size: 64 << 20, Pages: 3},
	}
}

func encodeSample(t testing.TB, f *File) []byte {
	t.Helper()
	b, err := Encode(f, "govmm test")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStateFileRoundTrip(t *testing.T) {
	f := sampleFile()
	f.Memory.Diff = &Diff{Base: "../base", Runs: [][2]int{{0, 2}, {10, 1}}}
	data := encodeSample(t, f)
	got, version, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if version != "govmm test" {
		t.Errorf("Decode() version = %q, want %q", version, "govmm test")
	}
	if !reflect.DeepEqual(got, f) {
		t.Errorf("Decode(Encode(f)) differs:\n got %+v\nwant %+v", got, f)
	}
	if got.Machine.VCPUs[0].Regs.RAX != 1<<63|5 || got.Machine.VCPUs[0].MSRs[0].Data != 1<<62 {
		t.Errorf("64-bit values did not survive: RAX %#x, TSC %#x", got.Machine.VCPUs[0].Regs.RAX, got.Machine.VCPUs[0].MSRs[0].Data)
	}
}

// resum recomputes a state file's checksum after a test changed it, so
// that the check behind the checksum is what fails.
func resum(b []byte) []byte {
	end := len(b) - sumLen
	s := sha256Sum(b[:end])
	return append(b[:end:end], s[:]...)
}

// TestDecodeRefuses checks each way a state file can be wrong, and that
// the error says which.
func TestDecodeRefuses(t *testing.T) {
	good := encodeSample(t, sampleFile())
	vlen := len("govmm test")
	bodyOff := 18 + vlen + 8
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty: the snapshot was not completely written"},
		{"inside the magic", good[:5], "truncated at 5 bytes, inside its magic"},
		{"another file", []byte("\x7fELF\x02\x01\x01\x00 and more bytes"), "not a govmm snapshot state file"},
		{"inside the header", good[:12], "truncated at 12 bytes, inside its header"},
		{"inside the version", good[:20], "inside its header"},
		{"newer format", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 7); return b }), "in state format 7; this govmm"},
		{"format zero", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 0); return b }), "state format version 0"},
		{"flags", mut(func(b []byte) []byte { b[12] = 1; return b }), "flags 0x1 set"},
		{"huge version", mut(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[16:], 60000); return b }), "more than 256"},
		{"huge body", mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[18+vlen:], 1<<40); return b }), "more than the"},
		{"truncated body", good[:len(good)-100], "truncated:"},
		{"truncated checksum", good[:len(good)-1], "truncated:"},
		{"appended to", append(bytes.Clone(good), 0), "1 bytes after its checksum"},
		{"a flipped bit", mut(func(b []byte) []byte { b[bodyOff+5] ^= 4; return b }), "SHA-256 does not match"},
		{"a tampered checksum", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "SHA-256 does not match"},
		{"body not JSON", mut(func(b []byte) []byte { b[bodyOff] = 'x'; return resum(b) }), "does not decode"},
		{"an unknown field", func() []byte {
			return reencodeBody(t, good, func(s string) string { return strings.Replace(s, `"Created"`, `"Surprise":1,"Created"`, 1) })
		}(), "unknown field"},
		{"no machine", func() []byte {
			f := sampleFile()
			f.Machine = nil
			return encodeSample(t, f)
		}(), "no machine state"},
		{"RAM sizes disagree", func() []byte {
			f := sampleFile()
			f.Memory.Size = 32 << 20
			return encodeSample(t, f)
		}(), "the machine has 67108864 bytes of RAM and the memory file 33554432"},
		{"a memory file elsewhere", func() []byte {
			f := sampleFile()
			f.Memory.Name = "../../etc/passwd"
			return encodeSample(t, f)
		}(), "not a file in the snapshot's folder"},
		{"diff runs past RAM", func() []byte {
			f := sampleFile()
			f.Memory.Diff = &Diff{Base: "b", Runs: [][2]int{{16380, 10}}}
			return encodeSample(t, f)
		}(), "outside RAM"},
		{"diff runs out of order", func() []byte {
			f := sampleFile()
			f.Memory.Diff = &Diff{Base: "b", Runs: [][2]int{{10, 2}, {5, 1}}}
			return encodeSample(t, f)
		}(), "out of order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, err := Decode(tt.data)
			var fe *FormatError
			if err == nil || f != nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode(%s) = %v, %v, want a *FormatError saying %q", tt.name, f != nil, err, tt.want)
			}
		})
	}
	if _, _, err := Decode(mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 2); return b })); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("Decode(format 2) = %v, want ErrNewerFormat", err)
	}
}

// reencodeBody rewrites a state file's body with edit, fixing its length
// and checksum.
func reencodeBody(t *testing.T, data []byte, edit func(string) string) []byte {
	t.Helper()
	vlen := int(binary.LittleEndian.Uint16(data[16:]))
	off := 18 + vlen
	blen := binary.LittleEndian.Uint64(data[off:])
	body := edit(string(data[off+8 : off+8+int(blen)]))
	out := bytes.Clone(data[:off])
	out = binary.LittleEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	s := sha256Sum(out)
	return append(out, s[:]...)
}

// FuzzDecode feeds Decode arbitrary bytes, and the same bytes with their
// last 32 replaced by their checksum (so that mutations reach the header
// fields, the JSON and the checks behind the checksum): it must never
// panic, and what it accepts must encode back to a file it decodes the
// same way. The seeds in testdata/fuzz/FuzzDecode hold whole state files
// (with a diff, with two vCPUs) and damaged ones.
func FuzzDecode(f *testing.F) {
	good := encodeSample(f, sampleFile())
	f.Add(good)
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeRoundTrip(t, data)
		if len(data) > sumLen {
			decodeRoundTrip(t, resum(bytes.Clone(data)))
		}
	})
}

// decodeRoundTrip decodes data and, if it is accepted, checks it encodes
// back to a file that decodes the same.
func decodeRoundTrip(t *testing.T, data []byte) {
	{
		file, version, err := Decode(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode() error %v is not a *FormatError", err)
			}
			return
		}
		again, err := Encode(file, version)
		if err != nil {
			t.Fatalf("Encode(Decode(data)) = %v", err)
		}
		file2, _, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(data))) = %v", err)
		}
		if !reflect.DeepEqual(file, file2) {
			t.Fatalf("a decoded file changed across Encode and Decode:\n%+v\n%+v", file, file2)
		}
	}
}
