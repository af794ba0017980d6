package lessons

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/machine"
)

// TestBuild assembles every lesson and checks what govmm -boot real and
// gdb need of the images: a real-mode image entered at 0x7C00, with the
// symbols the walkthroughs name.
func TestBuild(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc and binutils to assemble the lessons")
	}
	dir, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	symbols := map[string][]string{
		"hello16":   {"start", "print_loop", "putc"},
		"protected": {"start", "far_jump", "protected_mode"},
		"longmode":  {"start", "build_page_tables", "paging_on", "long_mode"},
		"ring3":     {"start", "to_ring3", "user_main", "user_syscall"},
		"timer":     {"start", "wait_loop", "timer_handler"},
		"virtio":    {"start", "find_device", "walk_caps", "place_bar", "reset_device", "features", "setup_queue", "make_request", "notify", "wait_used", "used"},
	}
	for _, l := range All {
		path := filepath.Join(dir, l.Name+".elf")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := machine.ParseRealModeImage(b)
		if err != nil || img.Entry != 0x7c00 {
			t.Errorf("%s: ParseRealModeImage() = %+v, %v, want an image entered at 0x7c00", l.Name, img, err)
			continue
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		syms, err := f.Symbols()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, s := range syms {
			have[s.Name] = true
		}
		for _, s := range symbols[l.Name] {
			if !have[s] {
				t.Errorf("%s: no symbol %q", l.Name, s)
			}
		}
	}
}

// TestWalkthroughs: every lesson has its walkthrough in docs/lessons, and
// each walkthrough names the symbols it has the student break at, which
// the image must have.
func TestWalkthroughs(t *testing.T) {
	for _, l := range All {
		doc, err := os.ReadFile(filepath.Join("..", "..", "..", l.Doc))
		if err != nil {
			t.Errorf("%s: its walkthrough: %v", l.Name, err)
			continue
		}
		src, err := Source(l.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(doc), "\n") {
			if i := strings.Index(line, "(step) b "); i >= 0 {
				sym := strings.Fields(line[i+len("(step) b "):])[0]
				if sym != "clear" && sym != "exit" && sym != "port" && sym != "mmio" && !strings.Contains(string(src), sym+":") {
					t.Errorf("%s: the walkthrough breaks at %q, which %s.S does not define", l.Doc, sym, l.Name)
				}
			}
		}
	}
}

// TestGoldenTraces: every lesson has a golden trace that ends with the
// guest's write to the debug-exit device, status 0.
func TestGoldenTraces(t *testing.T) {
	for _, l := range All {
		g, err := Golden(l.Name)
		if err != nil || len(g) == 0 {
			t.Errorf("Golden(%q) = %d lines, %v, want some", l.Name, len(g), err)
			continue
		}
		if last := g[len(g)-1]; last != "KVM_EXIT_IO out port 0xf4 size 1 data 0x0 -> debug-exit" {
			t.Errorf("%s's golden trace ends %q, want the write of status 0 to the debug-exit device", l.Name, last)
		}
		src, err := Source(l.Name)
		if err != nil || !strings.Contains(string(src), l.Doc[len("docs/lessons/"):]) {
			t.Errorf("%s's source does not name its walkthrough %s (%v)", l.Name, l.Doc, err)
		}
	}
	if _, err := Find("no-such-lesson"); err == nil {
		t.Errorf("Find(no-such-lesson) = nil error, want ErrNoLesson")
	}
	if l, err := Find("virtio"); err != nil || strings.Join(l.Args(), " ") != "-boot real -mem 16M -rng on" {
		t.Errorf("Find(virtio).Args() = %q, %v, want the common flags and -rng on", l.Args(), err)
	}
}
