package stepper

import (
	"debug/elf"
	"fmt"
	"sort"
)

// Symbols are the guest image's symbols, for breakpoints by name and for
// naming addresses in reports.
type Symbols struct {
	byName map[string]uint64
	sorted []symbol // by address
}

type symbol struct {
	name string
	addr uint64
}

// maxSymbolDistance is how far past a symbol an address is still named
// after it ("putc+0x5").
const maxSymbolDistance = 0x1000

// LoadSymbols reads the symbol table of an ELF file; a file without one
// gives empty Symbols.
func LoadSymbols(path string) (*Symbols, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return NewSymbols(nil), nil // stripped
	}
	m := map[string]uint64{}
	for _, s := range syms {
		switch elf.ST_TYPE(s.Info) {
		case elf.STT_FUNC, elf.STT_OBJECT, elf.STT_NOTYPE:
		default:
			continue
		}
		if s.Name == "" || s.Section == elf.SHN_UNDEF || s.Section == elf.SHN_ABS {
			continue
		}
		m[s.Name] = s.Value
	}
	return NewSymbols(m), nil
}

// NewSymbols makes Symbols from names and addresses.
func NewSymbols(m map[string]uint64) *Symbols {
	s := &Symbols{byName: map[string]uint64{}}
	for n, a := range m {
		s.byName[n] = a
		s.sorted = append(s.sorted, symbol{n, a})
	}
	sort.Slice(s.sorted, func(i, j int) bool {
		a, b := s.sorted[i], s.sorted[j]
		return a.addr < b.addr || a.addr == b.addr && a.name < b.name
	})
	return s
}

// Lookup is the address of a symbol.
func (s *Symbols) Lookup(name string) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	a, ok := s.byName[name]
	return a, ok
}

// Name names addr after the nearest symbol at or below it: "putc",
// "putc+0x5"; "" when there is none close enough.
func (s *Symbols) Name(addr uint64) string {
	if s == nil {
		return ""
	}
	i := sort.Search(len(s.sorted), func(i int) bool { return s.sorted[i].addr > addr }) - 1
	if i < 0 || addr-s.sorted[i].addr > maxSymbolDistance {
		return ""
	}
	// Of several symbols at one address, the first by name.
	for i > 0 && s.sorted[i-1].addr == s.sorted[i].addr {
		i--
	}
	if off := addr - s.sorted[i].addr; off > 0 {
		return fmt.Sprintf("%s+%#x", s.sorted[i].name, off)
	}
	return s.sorted[i].name
}
