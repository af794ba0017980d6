// Package snapshot saves a running govmm guest to a folder and restores
// it: a memory file (guest RAM as the pages are numbered, sparse: pages
// never written stay holes) and a state file (everything else: vCPUs, the
// VM's interrupt controllers and clock, every device), written while the
// guest is paused. A restore maps the memory file privately, so it costs
// the same for any RAM size, and two restores of one snapshot are two
// independent clones. Diff snapshots hold only the pages written since
// the snapshot before them and name it as their base.
package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
)

const pageSize = memory.PageSize

// The state file's layout, little-endian:
//
//	offset  size  field
//	0       8     magic "GOVMMSNP"
//	8       4     format version (FormatVersion)
//	12      4     flags, zero
//	16      2     n: length of the govmm version that wrote it (at most MaxVersionLen)
//	18      n     that version, UTF-8
//	18+n    8     m: length of the body (at most MaxBody)
//	26+n    m     the body: File as JSON
//	26+n+m  32    SHA-256 of every byte before it
//
// and nothing after. Decode checks each field in this order and names
// the first that is wrong.
const (
	Magic         = "GOVMMSNP"
	FormatVersion = 1
	MaxVersionLen = 256
	// MaxBody bounds the body: a guest with 255 vCPUs needs about 6 MiB.
	MaxBody = 64 << 20
	sumLen  = sha256.Size
)

// File is a state file's body.
type File struct {
	// Created is when the guest was paused for the snapshot.
	Created time.Time
	Machine *machine.State
	Memory  MemoryInfo
}

// MemoryInfo describes the snapshot's memory file.
type MemoryInfo struct {
	// Name is the memory file's name in the snapshot's folder.
	Name string
	// Size is guest RAM's size, the memory file's length.
	Size uint64
	// Pages is how many pages the memory file holds data for; the others
	// are holes and read as zeros.
	Pages int
	// Diff is set for a diff snapshot: its memory file holds only the
	// pages written since Base was taken.
	Diff *Diff `json:",omitempty"`
}

// Diff is what a diff snapshot adds to its base.
type Diff struct {
	// Base is the folder of the snapshot this one goes on top of,
	// absolute or relative to this snapshot's folder.
	Base string
	// Runs are the pages the memory file holds, as [first page, count]
	// pairs in increasing order: a written page of zeros is one of them,
	// and is a hole in the file.
	Runs [][2]int
}

// Version is the govmm build that writes state files: the main module's
// version and, for a build from a checkout, its commit.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "govmm (unknown build)"
	}
	v := "govmm " + bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	if len(v) > MaxVersionLen {
		v = v[:MaxVersionLen]
	}
	return v
}

// Encode returns f as a state file written by govmm version.
func Encode(f *File, version string) ([]byte, error) {
	if len(version) > MaxVersionLen {
		return nil, fmt.Errorf("state file: govmm version %q is longer than %d bytes", version, MaxVersionLen)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("state file: encoding the state: %w", err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("state file: the state is %d bytes, more than the %d a state file may hold", len(body), MaxBody)
	}
	var b bytes.Buffer
	b.WriteString(Magic)
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, FormatVersion))
	b.Write(le.AppendUint32(nil, 0))
	b.Write(le.AppendUint16(nil, uint16(len(version))))
	b.WriteString(version)
	b.Write(le.AppendUint64(nil, uint64(len(body))))
	b.Write(body)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

// FormatError is Decode's error: what is wrong with a state file, and
// what to do about it.
type FormatError struct {
	Reason string
	Err    error // the JSON decoder's error, if that is what failed
}

func (e *FormatError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *FormatError) Unwrap() error { return e.Err }

// ErrNewerFormat is wrapped by Decode's error for a state file written in
// a format this govmm does not read yet.
var ErrNewerFormat = errors.New("state file format newer than this govmm's")

// Decode checks a state file and returns its body and the govmm version
// that wrote it. Its error says what is wrong: truncated, not a state
// file, a newer format, tampered with or damaged (the checksum), or a body
// that does not decode.
func Decode(data []byte) (*File, string, error) {
	fail := func(format string, args ...any) (*File, string, error) {
		return nil, "", &FormatError{Reason: fmt.Sprintf(format, args...)}
	}
	le := binary.LittleEndian
	if len(data) == 0 {
		return fail("empty: the snapshot was not completely written")
	}
	if len(data) < len(Magic) || string(data[:len(Magic)]) != Magic {
		if len(data) < len(Magic) && bytes.HasPrefix([]byte(Magic), data) {
			return fail("truncated at %d bytes, inside its magic: the snapshot was not completely written", len(data))
		}
		return fail("not a govmm snapshot state file (it does not begin with %q)", Magic)
	}
	const fixed = 18 // magic, version, flags, version length
	if len(data) < fixed {
		return fail("truncated at %d bytes, inside its header: the snapshot was not completely written", len(data))
	}
	format := le.Uint32(data[8:])
	flags := le.Uint32(data[12:])
	vlen := int(le.Uint16(data[16:]))
	if vlen > MaxVersionLen {
		return fail("its writer's version is %d bytes long, more than %d: the file is damaged", vlen, MaxVersionLen)
	}
	if len(data)-fixed < vlen+8 {
		return fail("truncated at %d bytes, inside its header: the snapshot was not completely written", len(data))
	}
	version := string(data[fixed : fixed+vlen])
	if format == 0 {
		return fail("state format version 0 (written by %q) does not exist: the file is damaged", version)
	}
	if format > FormatVersion {
		return nil, version, &FormatError{Reason: fmt.Sprintf("written by %s in state format %d; this govmm (%s) reads format %d and older: restore it with %s or newer", version, format, Version(), FormatVersion, version), Err: ErrNewerFormat}
	}
	if flags != 0 {
		return fail("flags %#x set, which format %d does not have: the file is damaged", flags, format)
	}
	off := fixed + vlen
	blen := le.Uint64(data[off:])
	off += 8
	if blen > MaxBody {
		return fail("its body claims %d bytes, more than the %d a state file may hold: the file is damaged", blen, MaxBody)
	}
	rest := uint64(len(data) - off)
	if rest < blen+sumLen {
		return fail("truncated: %d bytes after the header, %d needed for the body and checksum: the snapshot was not completely written", rest, blen+sumLen)
	}
	end := off + int(blen)
	if extra := rest - blen - sumLen; extra > 0 {
		return fail("%d bytes after its checksum: it is not one state file, or was appended to", extra)
	}
	sum := sha256.Sum256(data[:end])
	if !bytes.Equal(sum[:], data[end:end+sumLen]) {
		return fail("its SHA-256 does not match its contents: the file was changed or damaged after it was written")
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(data[off:end]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, version, &FormatError{Reason: fmt.Sprintf("its state (written by %s) does not decode", version), Err: err}
	}
	if err := f.check(); err != nil {
		return nil, version, &FormatError{Reason: fmt.Sprintf("its state (written by %s) is inconsistent", version), Err: err}
	}
	return &f, version, nil
}

// check refuses a body that decodes but cannot be restored: what a
// checksum cannot catch in a file written by a faulty writer.
func (f *File) check() error {
	switch {
	case f.Machine == nil:
		return errors.New("no machine state")
	case f.Memory.Size == 0 || f.Memory.Size%pageSize != 0:
		return fmt.Errorf("memory size %d is not a whole number of pages", f.Memory.Size)
	case f.Machine.Config.MemSize != f.Memory.Size:
		return fmt.Errorf("the machine has %d bytes of RAM and the memory file %d", f.Machine.Config.MemSize, f.Memory.Size)
	case f.Machine.Config.CPUs < 1 || len(f.Machine.VCPUs) != f.Machine.Config.CPUs:
		return fmt.Errorf("%d vCPU states for %d vCPUs", len(f.Machine.VCPUs), f.Machine.Config.CPUs)
	case f.Memory.Name == "" || f.Memory.Name == "." || f.Memory.Name == ".." || f.Memory.Name != baseName(f.Memory.Name):
		return fmt.Errorf("memory file name %q is not a file in the snapshot's folder", f.Memory.Name)
	}
	if d := f.Memory.Diff; d != nil {
		pages := f.Memory.Size / pageSize
		next := uint64(0)
		for _, r := range d.Runs {
			if r[0] < 0 || r[1] <= 0 || uint64(r[0]) < next || uint64(r[0]) > pages || uint64(r[1]) > pages-uint64(r[0]) {
				return fmt.Errorf("diff run %v is outside RAM's %d pages or out of order", r, pages)
			}
			next = uint64(r[0]) + uint64(r[1])
		}
		if d.Base == "" {
			return errors.New("a diff snapshot without a base")
		}
	}
	return nil
}

// baseName is name without any folder part.
func baseName(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

func sha256Sum(b []byte) [sumLen]byte { return sha256.Sum256(b) }
