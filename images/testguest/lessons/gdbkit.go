package lessons

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The gdb kit: the host's gdb with the shared libraries it needs and the
// dynamic loader, copied into the cache, so that the real-gdb test can run
// inside testvm's emulated machine, which has busybox and no libraries.
// The kit's gdb is run through its own loader (ld.so --library-path), so
// nothing needs to be at its usual path there. Debian's gdb-minimal is
// taken when it is installed: it has no Python, whose standard library
// would have to come along too.

// kitPrefix names the kit's folder; testvm-exec copies every
// testguest-*/ folder of the cache that holds a done file into the
// emulated machine, as it does the test guests.
const kitPrefix = "testguest-gdbkit-"

// lessonsPrefix names the lessons' build folder, for the same reason.
const lessonsPrefix = "testguest-lessons-"

// GDB is how to run gdb: Argv before gdb's own arguments.
type GDB struct {
	Argv []string
	Kit  bool // the cache's kit, not a gdb on $PATH
}

// FindGDB finds a gdb to run: gdb-minimal or gdb on $PATH, else a kit
// in cacheDir.
func FindGDB(cacheDir string) (GDB, error) {
	for _, name := range []string{"gdb-minimal", "gdb"} {
		if p, err := exec.LookPath(name); err == nil {
			return GDB{Argv: []string{p}}, nil
		}
	}
	done, _ := filepath.Glob(filepath.Join(cacheDir, kitPrefix+"*", "done"))
	for _, d := range done {
		dir := filepath.Dir(d)
		loader, err := os.ReadFile(filepath.Join(dir, "loader"))
		if err != nil {
			continue
		}
		return GDB{Argv: []string{filepath.Join(dir, strings.TrimSpace(string(loader))), "--library-path", filepath.Join(dir, "lib"), filepath.Join(dir, "gdb")}, Kit: true}, nil
	}
	return GDB{}, fmt.Errorf("no gdb: install it (apt-get install gdb-minimal), or build the kit with make guests on a host that has it")
}

// BuildGDBKit copies the host's gdb (gdb-minimal if installed), its
// libraries and the loader into cacheDir/testguest-gdbkit-<hash>/ and
// returns the folder; "" and no error when the host has no gdb.
func BuildGDBKit(cacheDir string) (string, error) {
	var gdb string
	for _, name := range []string{"gdb-minimal", "gdb"} {
		if p, err := exec.LookPath(name); err == nil {
			gdb = p
			break
		}
	}
	if gdb == "" {
		return "", nil
	}
	bin, err := os.ReadFile(gdb)
	if err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	sum := sha256.Sum256(bin)
	dir := filepath.Join(cacheDir, kitPrefix+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir, nil
	}
	libs, loader, err := sharedLibraries(gdb)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "gdbkit-build-")
	if err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "lib"), 0o755); err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	copies := map[string]string{gdb: filepath.Join(tmp, "gdb"), loader: filepath.Join(tmp, filepath.Base(loader))}
	for _, l := range libs {
		copies[l] = filepath.Join(tmp, "lib", filepath.Base(l))
	}
	for from, to := range copies {
		if err := copyFile(from, to); err != nil {
			return "", fmt.Errorf("gdb kit: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "loader"), []byte(filepath.Base(loader)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), []byte(gdb+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("gdb kit: %w", err)
	}
	return dir, nil
}

// sharedLibraries runs ldd on bin: the libraries it loads and the loader.
func sharedLibraries(bin string) ([]string, string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, "", fmt.Errorf("gdb kit: ldd %s: %w", bin, err)
	}
	var libs []string
	loader := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2]) // libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			loader = f[0] // /lib64/ld-linux-x86-64.so.2 (0x...)
		}
	}
	if loader == "" {
		return nil, "", fmt.Errorf("gdb kit: ldd %s names no loader", bin)
	}
	return libs, loader, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from) // follows symlinks: the kit holds the files
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
