// Package lessons builds govmm's teaching guests: six small assembly
// programs (src/, commented for learners) that start in real mode, as a
// PC does, and show one idea each, with the VM exits it causes. Each has a
// walkthrough in docs/lessons/ to follow with `govmm step`, and a golden
// exit trace (golden/) that the tests compare a real run with.
//
//	govmm step -boot real -kernel $(go run ./images/testguest/lessons/cmd/mklessons)/hello16.elf
//
// They are built at test time with the host's gcc and ld, like the test
// guests, into a cache folder.
package lessons

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/govmm/govmm/images/testguest"
)

//go:embed src golden
var files embed.FS

// Lesson is one teaching guest.
type Lesson struct {
	Name  string // the source is src/Name.S, the image Name.elf
	Title string
	Doc   string // the walkthrough, relative to the repository's root
	// Extra are the govmm flags the lesson needs besides Flags: the
	// devices it drives.
	Extra []string
}

// Args are the govmm flags to run the lesson with: Flags, then Extra.
func (l Lesson) Args() []string { return append(append([]string(nil), Flags...), l.Extra...) }

// All are the lessons, in the order to read them.
var All = []Lesson{
	{"hello16", "Real mode: hello on the serial port, an exit per byte", "docs/lessons/1-real-mode.md", nil},
	{"protected", "The switch to 32-bit protected mode", "docs/lessons/2-protected-mode.md", nil},
	{"longmode", "Paging and 64-bit long mode", "docs/lessons/3-long-mode.md", nil},
	{"ring3", "Ring 3 and a system call", "docs/lessons/4-ring-3.md", nil},
	{"timer", "A timer interrupt from the PIT", "docs/lessons/5-timer.md", nil},
	{"virtio", "A virtio request: PCI discovery, the status dance and a virtqueue", "docs/lessons/6-virtio.md", []string{"-rng", "on"}},
}

// Flags are the govmm flags every lesson runs with: the real-mode boot
// path, and a little RAM. Lesson.Args adds a lesson's own.
var Flags = []string{"-boot", "real", "-mem", "16M"}

// recipe changes whenever the build steps below do, so the cache key does.
const recipe = "lessons build v1"

var (
	asFlags = []string{"-c", "-nostdlib", "-Wa,--fatal-warnings"}
	ldFlags = []string{"-nostdlib", "-static", "-z", "max-page-size=0x1000", "-z", "noexecstack",
		"--no-warn-rwx-segments", "--build-id=none"}
)

// Build assembles and links every lesson into
// cacheDir/testguest-lessons-<hash>/ (hash of the sources and the
// recipe), reusing a finished build, and returns that folder: the images
// are Name.elf in it. It needs gcc and ld, except when the build is
// there already (make guests builds it before the tests, which may run
// in testvm's emulated machine, where there is no gcc).
func Build(cacheDir string) (string, error) {
	hash, err := sourceHash()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, lessonsPrefix+hash)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir, nil
	}
	for _, tool := range []string{"gcc", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("lessons: %s not found: apt-get install gcc binutils", tool)
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("lessons: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "lessons-build-")
	if err != nil {
		return "", fmt.Errorf("lessons: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := buildIn(tmp); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), []byte(hash+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("lessons: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr == nil {
			return dir, nil // another build finished first
		}
		return "", fmt.Errorf("lessons: %w", err)
	}
	return dir, nil
}

func buildIn(dir string) error {
	src := filepath.Join(dir, "src")
	if err := os.CopyFS(src, mustSub("src")); err != nil {
		return fmt.Errorf("lessons: copying the sources: %w", err)
	}
	for _, l := range All {
		obj := filepath.Join(dir, l.Name+".o")
		steps := [][]string{
			append(append([]string{"gcc"}, asFlags...), "-I", src, "-o", obj, filepath.Join(src, l.Name+".S")),
			append(append([]string{"ld"}, ldFlags...), "-T", filepath.Join(src, "lesson.ld"), "-o", filepath.Join(dir, l.Name+".elf"), obj),
		}
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("lessons: %s: %w\n%s", strings.Join(s, " "), err, out)
			}
		}
	}
	return nil
}

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // dir is embedded above
	}
	return sub
}

func sourceHash() (string, error) {
	h, err := testguest.HashSources(files, "src", recipe, fmt.Sprint(asFlags), fmt.Sprint(ldFlags))
	if err != nil {
		return "", fmt.Errorf("lessons: %w", err)
	}
	return h, nil
}

// Source is the lesson's assembly source.
func Source(name string) ([]byte, error) { return files.ReadFile("src/" + name + ".S") }

// Golden is the lesson's golden exit trace: one exit a line, as
// trace.Golden writes them (reasons, ports, directions and the data
// written; no times, no addresses of instructions). Lines starting with #
// are comments.
func Golden(name string) ([]string, error) {
	f, err := files.Open("golden/" + name + ".golden")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// ErrNoLesson is returned for a name not in All.
var ErrNoLesson = errors.New("no such lesson")

// Find returns the lesson called name.
func Find(name string) (Lesson, error) {
	for _, l := range All {
		if l.Name == name {
			return l, nil
		}
	}
	return Lesson{}, fmt.Errorf("%w: %q", ErrNoLesson, name)
}
