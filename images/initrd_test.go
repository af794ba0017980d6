package images

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

func TestFindModuleRoot(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "images", "agent")
	other := filepath.Join(dir, "vendor", "x")
	for _, d := range []string{sub, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "go.mod"), "// comment\nmodule github.com/govmm/govmm\n\ngo 1.26\n")
	write(filepath.Join(other, "go.mod"), "module github.com/govmm/govmmx\n")

	for _, start := range []string{dir, sub, other} {
		if got, err := FindModuleRoot(start); err != nil || got != dir {
			t.Errorf("FindModuleRoot(%s) = %q, %v, want %q", start, got, err, dir)
		}
	}
	if got, err := FindModuleRoot(t.TempDir()); err == nil {
		t.Errorf("FindModuleRoot(empty dir) = %q, want an error", got)
	}
}

func TestGoModModule(t *testing.T) {
	tests := []struct{ in, want string }{
		{"module govmm\n", "govmm"},
		{"// x\nmodule \"govmm\"\n", "govmm"},
		{"modulex govmm\n", ""},
		{"go 1.26\n", ""},
	}
	for _, tt := range tests {
		if got := goModModule(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("goModModule(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBaseArchive(t *testing.T) {
	dir, _ := fakeVirtioTree(t)
	mods, err := CollectModules(dir, VirtioModules)
	if err != nil {
		t.Fatal(err)
	}
	a, err := baseArchive("6.1.0-56-cloud-amd64", mods)
	if err != nil {
		t.Fatalf("baseArchive() error: %v", err)
	}
	pos := map[string]int{}
	for i, n := range a.Order {
		pos[n] = i
	}
	top := "lib/modules/6.1.0-56-cloud-amd64"
	want := []string{"dev/console", top + "/modules.dep"}
	for _, m := range mods {
		want = append(want, top+"/"+m.Path)
	}
	for _, n := range want {
		if _, ok := pos[n]; !ok {
			t.Errorf("baseArchive() lacks %s", n)
		}
	}
	// Every record's parent directory comes before it.
	for _, n := range a.Order {
		if parent := filepath.Dir(n); parent != "." {
			if p, ok := pos[parent]; !ok || p > pos[n] {
				t.Errorf("baseArchive() has %s at %d but its directory %s at %d (present %v)", n, pos[n], parent, p, ok)
			}
		}
	}
	if got := recordText(t, a.Files[top+"/modules.dep"]); got != debianVirtioDep {
		t.Errorf("baseArchive() modules.dep =\n%s\nwant\n%s", got, debianVirtioDep)
	}
	if _, err := baseArchive("", mods); err == nil {
		t.Errorf("baseArchive(no release, modules) succeeded, want an error")
	}
}

func recordText(t *testing.T, r cpio.Record) string {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInitrdKey(t *testing.T) {
	root := t.TempDir()
	agent := filepath.Join(root, "images", "agent")
	if err := os.MkdirAll(agent, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module govmm\n")
	write("go.sum", "")
	write("images/agent/main.go", "package main\n")
	write("images/agent/main_test.go", "package main\n")

	dir, _ := fakeVirtioTree(t)
	mods, err := CollectModules(dir, VirtioModules)
	if err != nil {
		t.Fatal(err)
	}
	key := func(env string, cmds []string, mods []Module) string {
		t.Helper()
		a, err := baseArchive("6.1", mods)
		if err != nil {
			t.Fatal(err)
		}
		k, err := initrdKey(root, env, cmds, a)
		if err != nil {
			t.Fatalf("initrdKey() error: %v", err)
		}
		return k
	}
	base := key("linux/amd64", DefaultCommands, mods)
	if again := key("linux/amd64", DefaultCommands, mods); again != base {
		t.Errorf("initrdKey() = %s then %s for the same inputs, want equal", base, again)
	}
	changes := map[string]func() string{
		"env":      func() string { return key("linux/amd64 tags=x", DefaultCommands, mods) },
		"commands": func() string { return key("linux/amd64", DefaultCommands[:3], mods) },
		"modules":  func() string { return key("linux/amd64", DefaultCommands, mods[:2]) },
		"agent": func() string {
			write("images/agent/main.go", "package main // changed\n")
			defer write("images/agent/main.go", "package main\n")
			return key("linux/amd64", DefaultCommands, mods)
		},
		"go.sum": func() string {
			write("go.sum", "x v1 h1:x\n")
			defer write("go.sum", "")
			return key("linux/amd64", DefaultCommands, mods)
		},
	}
	for name, f := range changes {
		if got := f(); got == base {
			t.Errorf("initrdKey() after a change of %s = %s, want a new key", name, got)
		}
	}
	write("images/agent/main_test.go", "package main // tests do not count\n")
	if got := key("linux/amd64", DefaultCommands, mods); got != base {
		t.Errorf("initrdKey() after a test file change = %s, want %s", got, base)
	}
}

// TestBuildInitrd builds the real initrd (about a minute the first time;
// afterwards it comes from the repository's .cache) and checks its layout.
func TestBuildInitrd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds u-root commands: skipped with -short")
	}
	// With Debian's kernel when it is cached, so that the test and
	// `make images` share one initrd; without modules otherwise.
	k, why := cachedDebianKernel(t)
	if why != "" {
		t.Logf("initrd without kernel modules: %s", why)
	}
	var log strings.Builder
	path, err := BuildInitrd(context.Background(), InitrdOptions{CacheDir: testCacheDir(t), Kernel: k, Log: &log})
	if err != nil {
		t.Fatalf("BuildInitrd() error: %v\nlog:\n%s", err, log.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
	if err != nil {
		t.Fatalf("read %s as newc cpio: %v", path, err)
	}
	files := map[string]cpio.Record{}
	for _, r := range recs {
		files[r.Name] = r
	}
	links := map[string]string{
		"init":      "bbin/init",
		"bin/uinit": "../bbin/agent",
		"bin/sh":    "../bbin/gosh",
	}
	for name, target := range links {
		if got := recordText(t, files[name]); got != target {
			t.Errorf("BuildInitrd() %s -> %q, want -> %q", name, got, target)
		}
	}
	for _, cmd := range DefaultCommands {
		if _, ok := files["bbin/"+filepath.Base(cmd)]; !ok {
			t.Errorf("BuildInitrd() lacks bbin/%s", filepath.Base(cmd))
		}
	}
	for _, name := range shellCommands {
		if _, ok := files["bbin/"+name]; !ok {
			t.Errorf("BuildInitrd() lacks bbin/%s, which the default guest's shell promises", name)
		}
	}
	if bb := files["bbin/bb"]; bb.FileSize < 1<<20 {
		t.Errorf("BuildInitrd() bbin/bb is %d bytes, want a busybox binary of megabytes", bb.FileSize)
	}
	if k.ModulesDir != "" {
		dep := "lib/modules/" + k.Release + "/modules.dep"
		if _, ok := files[dep]; !ok {
			t.Errorf("BuildInitrd() lacks %s", dep)
		}
		var kos int
		for name, r := range files {
			if strings.HasPrefix(name, "lib/modules/"+k.Release+"/") && strings.HasSuffix(name, ".ko") {
				kos++
				if head := recordText(t, r)[:4]; head != "\x7fELF" {
					t.Errorf("BuildInitrd() %s starts %q, want an uncompressed ELF module", name, head)
				}
			}
		}
		if kos < len(VirtioModules) {
			t.Errorf("BuildInitrd() has %d kernel modules, want at least %d", kos, len(VirtioModules))
		}
	}
	t.Logf("initrd %s: %d bytes", path, func() int64 { st, _ := f.Stat(); return st.Size() }())
}

// shellCommands are the commands a user of the default guest's shell can
// count on (README, issue 11).
var shellCommands = strings.Fields(`ls cat cp mv rm mkdir mount umount dmesg
	grep find ps kill free df dd hexdump base64 sha256sum sync ip dhclient
	wget ping poweroff shutdown uname date sleep wc more`)
