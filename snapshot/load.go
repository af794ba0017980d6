package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
)

// maxChain bounds how many diff snapshots may stand on one another.
const maxChain = 64

// ReadState reads and checks the state file of the snapshot in dir.
func ReadState(dir string) (*File, error) {
	path := filepath.Join(dir, StateName)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no snapshot (no %s file): give the folder a snapshot was written to", dir, StateName)
		}
		return nil, err
	}
	f, _, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot state file %s: %w", path, err)
	}
	return f, nil
}

// Load reads the snapshot in dir for machine.New (Config.Restore): its
// state, and guest RAM as a private mapping of its memory file, with the
// pages of each diff snapshot copied over its base's. Time spent grows
// with the diffs' sizes, not with RAM's.
func Load(dir string) (*machine.Restore, *File, error) {
	f, err := ReadState(dir)
	if err != nil {
		return nil, nil, err
	}
	mem, err := loadMemory(dir, f, 0)
	if err != nil {
		return nil, nil, err
	}
	return &machine.Restore{State: f.Machine, Memory: mem}, f, nil
}

// loadMemory maps the memory of the snapshot in dir, whose state is f.
func loadMemory(dir string, f *File, depth int) (*memory.Memory, error) {
	path := filepath.Join(dir, f.Memory.Name)
	d := f.Memory.Diff
	if d == nil {
		mf, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("snapshot memory file: %w", err)
		}
		return memory.MapFile(mf, f.Memory.Size)
	}
	if depth >= maxChain {
		return nil, fmt.Errorf("snapshot %s: more than %d diff snapshots on one another (or a loop)", dir, maxChain)
	}
	baseDir := d.Base
	if !filepath.IsAbs(baseDir) {
		baseDir = filepath.Join(dir, baseDir)
	}
	base, err := ReadState(baseDir)
	if err != nil {
		return nil, fmt.Errorf("diff snapshot %s: its base: %w", dir, err)
	}
	if base.Memory.Size != f.Memory.Size {
		return nil, fmt.Errorf("diff snapshot %s: its base %s has %d bytes of RAM, it %d: the base was replaced by another guest's snapshot", dir, baseDir, base.Memory.Size, f.Memory.Size)
	}
	mem, err := loadMemory(baseDir, base, depth+1)
	if err != nil {
		return nil, err
	}
	if err := applyDiff(path, mem, d); err != nil {
		return nil, errors.Join(fmt.Errorf("diff snapshot %s: %w", dir, err), mem.Close())
	}
	return mem, nil
}

// applyDiff reads the diff's pages from its memory file into mem.
func applyDiff(path string, mem *memory.Memory, d *Diff) error {
	mf, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("memory file: %w", err)
	}
	defer mf.Close()
	pages := mem.NewBitmap()
	for _, r := range d.Runs {
		pages.SetRange(r[0], r[1])
	}
	return mem.RegionRuns(pages, 256, func(first int, host []byte) error {
		if _, err := mf.ReadAt(host, int64(first)*pageSize); err != nil {
			return fmt.Errorf("reading pages %d-%d of %s: %w", first, first+len(host)/pageSize-1, path, err)
		}
		return nil
	})
}
