package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
)

// A snapshot folder holds:
//
//	state           the state file (format.go): written last, by rename,
//	                so a folder with a state file holds a whole snapshot
//	memory-<id>     the memory file the state file names
//
// A new snapshot into the same folder writes a memory file of a new name,
// then the state file, then removes the old memory file: a snapshot cut
// short leaves the one before it whole.
const StateName = "state"

// Snapshotter takes the snapshots of one machine. It keeps what a diff
// snapshot needs: the dirty log started by the last snapshot that asked
// to track, and where that snapshot went.
type Snapshotter struct {
	m       *machine.Machine
	pagemap io.ReaderAt // /proc/self/pagemap, nil without

	mu   sync.Mutex
	log  *machine.DirtyLog // open while tracking
	last string            // the folder of the last tracked snapshot
}

// NewSnapshotter returns m's snapshotter. pagemap is /proc/self/pagemap,
// opened before the process was confined (it finds the pages a restored
// guest wrote); nil makes such a snapshot read every page.
func NewSnapshotter(m *machine.Machine, pagemap io.ReaderAt) *Snapshotter {
	return &Snapshotter{m: m, pagemap: pagemap}
}

// Options choose the kind of snapshot.
type Options struct {
	// Diff writes only the pages written since the last snapshot taken
	// with Track (or Diff), which becomes its base.
	Diff bool
	// Track keeps counting written pages after this snapshot, for a diff
	// snapshot to come. It costs the guest a fault on its first write to
	// each page after each snapshot. Diff implies it.
	Track bool
}

// Result says what a snapshot took.
type Result struct {
	Dir        string
	StateBytes int
	// Pages is how many pages the memory file holds data for;
	// MemoryBytes its length (sparse: its other pages are holes).
	Pages       int
	MemoryBytes uint64
	// Paused is how long the guest was paused: the whole snapshot.
	Paused time.Duration
	Base   string // a diff snapshot's base
}

// Save snapshots the machine into dir (created if missing): it pauses the
// guest (unless it is paused already), writes the memory file and the
// state file, and resumes it.
func (s *Snapshotter) Save(ctx context.Context, dir string, o Options) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Diff && s.log == nil {
		return Result{}, errors.New("snapshot: a diff snapshot needs a snapshot taken with tracking before it in this run of govmm (govmm ctl snapshot -track DIR); take a full one first")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, fmt.Errorf("snapshot: %w", err)
	}
	if o.Diff && dir == s.last {
		return Result{}, fmt.Errorf("snapshot: %s holds the diff snapshot's base: write the diff to another folder", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("snapshot: creating its folder: %w", err)
	}
	id, err := newID()
	if err != nil {
		return Result{}, err
	}
	res := Result{Dir: dir}
	var memPath string
	err = s.m.WithPause(ctx, func() error {
		start := time.Now()
		defer func() { res.Paused = time.Since(start) }()
		st, err := s.m.SaveState()
		if err != nil {
			return err
		}
		file := &File{Created: start.UTC(), Machine: st, Memory: MemoryInfo{Name: "memory-" + id, Size: s.m.Memory().Size()}}
		pages, diff, err := s.pagesToWrite(o)
		if err != nil {
			return err
		}
		if diff != nil {
			diff.Base = s.last
			if rel, err := filepath.Rel(dir, s.last); err == nil {
				diff.Base = rel
			}
			file.Memory.Diff = diff
			res.Base = s.last
		}
		memPath = filepath.Join(dir, file.Memory.Name)
		if file.Memory.Pages, err = writeMemory(memPath, s.m.Memory(), pages); err != nil {
			return err
		}
		res.Pages, res.MemoryBytes = file.Memory.Pages, file.Memory.Size
		if res.StateBytes, err = writeState(dir, file); err != nil {
			return err
		}
		if o.Diff || o.Track {
			s.last = dir
		}
		return nil
	})
	if err != nil {
		if memPath != "" {
			_ = os.Remove(memPath) // not named by any state file
		}
		return Result{}, errors.Join(fmt.Errorf("snapshot into %s: %w", dir, err), s.stopTracking())
	}
	if !o.Diff && !o.Track {
		if err := s.stopTracking(); err != nil {
			return res, fmt.Errorf("snapshot saved in %s, but %w", dir, err)
		}
	}
	removeOldMemory(dir, "memory-"+id)
	return res, nil
}

// pagesToWrite is every page that may hold data for a full snapshot, or
// the pages written since the last for a diff, with the Diff to record.
// It starts (or restarts) the dirty log when tracking, the guest paused,
// so the next diff counts from this snapshot.
func (s *Snapshotter) pagesToWrite(o Options) (*memory.Bitmap, *Diff, error) {
	mem := s.m.Memory()
	if o.Diff {
		written, err := s.log.Collect()
		if err != nil {
			return nil, nil, err
		}
		d := &Diff{}
		written.Runs(func(first, n int) bool {
			d.Runs = append(d.Runs, [2]int{first, n})
			return true
		})
		return written, d, nil
	}
	pages, err := mem.DataPages(s.pagemap)
	if err != nil {
		return nil, nil, err
	}
	if o.Track {
		if s.log == nil {
			if s.log, err = s.m.StartDirtyLog(); err != nil {
				return nil, nil, err
			}
		} else if _, err := s.log.Collect(); err != nil { // count from now
			return nil, nil, err
		}
	}
	return pages, nil, nil
}

// stopTracking closes the dirty log, if open: the next snapshot is full.
// Its error is KVM's refusing to stop logging, which leaves the guest
// slower but no snapshot wrong.
func (s *Snapshotter) stopTracking() error {
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log, s.last = nil, ""
	if err != nil {
		return fmt.Errorf("turning off KVM's dirty-page log: %w", err)
	}
	return nil
}

// Close stops tracking written pages.
func (s *Snapshotter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopTracking()
}

func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// writeMemory writes the pages of mem set in pages that hold anything but
// zeros to a new sparse file at path, as long as RAM, and returns how many
// it wrote.
func writeMemory(path string, mem *memory.Memory, pages *memory.Bitmap) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating the memory file: %w", err)
	}
	written := 0
	err = f.Truncate(int64(mem.Size()))
	if err == nil {
		err = mem.RegionRuns(pages, 256, func(first int, host []byte) error {
			// Write the run's pages that hold data, each stretch in one call.
			return nonZeroRuns(host, func(off, n int) error {
				written += n / pageSize
				_, err := f.WriteAt(host[off:off+n], int64(first)*pageSize+int64(off))
				return err
			})
		})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return 0, fmt.Errorf("writing the memory file: %w", err)
	}
	return written, nil
}

// nonZeroRuns calls f for each stretch of whole pages of host that are
// not all zeros, as a byte offset and length.
func nonZeroRuns(host []byte, f func(off, n int) error) error {
	start := -1
	for off := 0; off < len(host); off += pageSize {
		if isZero(host[off : off+pageSize]) {
			if start >= 0 {
				if err := f(start, off-start); err != nil {
					return err
				}
				start = -1
			}
			continue
		}
		if start < 0 {
			start = off
		}
	}
	if start >= 0 {
		return f(start, len(host)-start)
	}
	return nil
}

// isZero reports whether page holds only zeros.
func isZero(page []byte) bool {
	for len(page) >= 64 {
		var acc byte
		for _, b := range page[:64] {
			acc |= b
		}
		if acc != 0 {
			return false
		}
		page = page[64:]
	}
	for _, b := range page {
		if b != 0 {
			return false
		}
	}
	return true
}

// writeState writes f as the folder's state file: to a temporary name,
// synced, then renamed over the old one, and the folder synced.
func writeState(dir string, f *File) (int, error) {
	data, err := Encode(f, Version())
	if err != nil {
		return 0, err
	}
	tmp := filepath.Join(dir, StateName+".tmp")
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("writing the state file: %w", err)
	}
	_, err = w.Write(data)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, StateName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("writing the state file: %w", err)
	}
	return len(data), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// removeOldMemory removes the memory files of snapshots this folder held
// before: the state file names only keep. Failing to is not an error:
// they only take room.
func removeOldMemory(dir, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "memory-") && n != keep {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}
