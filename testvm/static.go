package testvm

import (
	"debug/elf"
	"fmt"
)

// checkStatic says whether path is a statically linked ELF program, which
// the VM can run without a dynamic loader or libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a program the VM can run: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, and the VM has no libraries", path)
		}
	}
	return nil
}

// CheckStatic returns an error unless path is a statically linked program.
// Go test binaries are static when built with CGO_ENABLED=0.
func CheckStatic(path string) error {
	if err := checkStatic(path); err != nil {
		return fmt.Errorf("testvm: %w: build it with CGO_ENABLED=0", err)
	}
	return nil
}
