package images

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/cpio"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"
)

// modulePath is this repository's Go module path.
const modulePath = "github.com/govmm/govmm"

// AgentPackage is the guest agent, which runs as u-root's uinit. u-root's
// busybox builder takes only import paths that start with a domain name
// for modules (any other it takes for the standard library), which is why
// govmm's module path is github.com/govmm/govmm: the agent can share
// packages with the host (agentproto, moddep). Each project folder the
// agent compiles must be in agentSources.
const AgentPackage = modulePath + "/images/agent"

// agentSources are the folders, relative to the module root, of every
// project package compiled into the initrd's one binary: the agent, the
// packages it imports, and govmm's own commands in DefaultCommands. A
// change to any of their Go files changes the initrd's cache key;
// TestAgentSourcesCoverImports checks the list against the imports.
var agentSources = []string{
	"images/agent",
	"images/agentproto",
	"images/moddep",
	"images/cmds/sha256sum",
}

// DefaultCommands are the commands in the default initrd, besides the
// agent: u-root's init, its shell (gosh, /bin/sh) and a core set of tools
// for looking around, moving files and bringing up a network, plus govmm's
// own sha256sum (u-root has only shasum -a 256). Each u-root command must
// also be blank-imported by tools.go so that go.mod keeps u-root.
var DefaultCommands = append([]string{
	"github.com/u-root/u-root/cmds/core/base64",
	"github.com/u-root/u-root/cmds/core/basename",
	"github.com/u-root/u-root/cmds/core/cat",
	"github.com/u-root/u-root/cmds/core/chmod",
	"github.com/u-root/u-root/cmds/core/cmp",
	"github.com/u-root/u-root/cmds/core/cp",
	"github.com/u-root/u-root/cmds/core/cpio",
	"github.com/u-root/u-root/cmds/core/date",
	"github.com/u-root/u-root/cmds/core/dd",
	"github.com/u-root/u-root/cmds/core/df",
	"github.com/u-root/u-root/cmds/core/dhclient",
	"github.com/u-root/u-root/cmds/core/dirname",
	"github.com/u-root/u-root/cmds/core/dmesg",
	"github.com/u-root/u-root/cmds/core/du",
	"github.com/u-root/u-root/cmds/core/echo",
	"github.com/u-root/u-root/cmds/core/false",
	"github.com/u-root/u-root/cmds/core/find",
	"github.com/u-root/u-root/cmds/core/free",
	"github.com/u-root/u-root/cmds/core/gosh",
	"github.com/u-root/u-root/cmds/core/grep",
	"github.com/u-root/u-root/cmds/core/gzip",
	"github.com/u-root/u-root/cmds/core/head",
	"github.com/u-root/u-root/cmds/core/hexdump",
	"github.com/u-root/u-root/cmds/core/hostname",
	"github.com/u-root/u-root/cmds/core/id",
	"github.com/u-root/u-root/cmds/core/init",
	"github.com/u-root/u-root/cmds/core/insmod",
	"github.com/u-root/u-root/cmds/core/ip",
	"github.com/u-root/u-root/cmds/core/kill",
	"github.com/u-root/u-root/cmds/core/ln",
	"github.com/u-root/u-root/cmds/core/ls",
	"github.com/u-root/u-root/cmds/core/lsmod",
	"github.com/u-root/u-root/cmds/core/md5sum",
	"github.com/u-root/u-root/cmds/core/mkdir",
	"github.com/u-root/u-root/cmds/core/mknod",
	"github.com/u-root/u-root/cmds/core/mktemp",
	"github.com/u-root/u-root/cmds/core/more",
	"github.com/u-root/u-root/cmds/core/mount",
	"github.com/u-root/u-root/cmds/core/mv",
	"github.com/u-root/u-root/cmds/core/netcat",
	"github.com/u-root/u-root/cmds/core/netstat",
	"github.com/u-root/u-root/cmds/core/pidof",
	"github.com/u-root/u-root/cmds/core/ping",
	"github.com/u-root/u-root/cmds/core/poweroff",
	"github.com/u-root/u-root/cmds/core/printenv",
	"github.com/u-root/u-root/cmds/core/ps",
	"github.com/u-root/u-root/cmds/core/pwd",
	"github.com/u-root/u-root/cmds/core/readlink",
	"github.com/u-root/u-root/cmds/core/realpath",
	"github.com/u-root/u-root/cmds/core/rm",
	"github.com/u-root/u-root/cmds/core/rmmod",
	"github.com/u-root/u-root/cmds/core/seq",
	"github.com/u-root/u-root/cmds/core/shasum",
	"github.com/u-root/u-root/cmds/core/shutdown",
	"github.com/u-root/u-root/cmds/core/sleep",
	"github.com/u-root/u-root/cmds/core/sort",
	"github.com/u-root/u-root/cmds/core/stty",
	"github.com/u-root/u-root/cmds/core/sync",
	"github.com/u-root/u-root/cmds/core/tail",
	"github.com/u-root/u-root/cmds/core/tar",
	"github.com/u-root/u-root/cmds/core/tee",
	"github.com/u-root/u-root/cmds/core/timeout",
	"github.com/u-root/u-root/cmds/core/touch",
	"github.com/u-root/u-root/cmds/core/tr",
	"github.com/u-root/u-root/cmds/core/true",
	"github.com/u-root/u-root/cmds/core/truncate",
	"github.com/u-root/u-root/cmds/core/tty",
	"github.com/u-root/u-root/cmds/core/umount",
	"github.com/u-root/u-root/cmds/core/uname",
	"github.com/u-root/u-root/cmds/core/uniq",
	"github.com/u-root/u-root/cmds/core/uptime",
	"github.com/u-root/u-root/cmds/core/wc",
	"github.com/u-root/u-root/cmds/core/wget",
	"github.com/u-root/u-root/cmds/core/which",
	"github.com/u-root/u-root/cmds/core/xargs",
	"github.com/u-root/u-root/cmds/core/yes",
}, modulePath+"/images/cmds/sha256sum")

// InitrdOptions says what goes into an initrd.
type InitrdOptions struct {
	// CacheDir holds the result, as initrd/<hash>.cpio. Required.
	CacheDir string
	// ModuleRoot is the directory of govmm's go.mod; "" finds it upwards
	// from the working directory.
	ModuleRoot string
	// Kernel gives the release and modules directory; with no ModulesDir,
	// the initrd has no kernel modules.
	Kernel KernelInfo
	// Modules are the kernel modules to add (their dependencies come too);
	// nil means DefaultModules.
	Modules []string
	// Commands are the u-root command packages; nil means DefaultCommands.
	Commands []string
	// Log gets progress lines; nil discards them.
	Log io.Writer
}

// BuildInitrd builds an uncompressed newc cpio initrd with u-root's library:
// u-root's init and commands and the guest agent (AgentPackage, as
// /bin/uinit) in one busybox-style binary, gosh as /bin/sh, and the kernel
// modules, uncompressed, at /lib/modules/<release>/ with a modules.dep. The
// result is cached under a hash of every input and written atomically.
func BuildInitrd(ctx context.Context, opts InitrdOptions) (string, error) {
	if opts.CacheDir == "" {
		return "", fmt.Errorf("initrd: no cache directory given: set InitrdOptions.CacheDir")
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	root := opts.ModuleRoot
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("initrd: find the module root: %w", err)
		}
		if root, err = FindModuleRoot(wd); err != nil {
			return "", err
		}
	}
	commands := opts.Commands
	if commands == nil {
		commands = DefaultCommands
	}
	var mods []Module
	if opts.Kernel.ModulesDir != "" {
		names := opts.Modules
		if names == nil {
			names = DefaultModules
		}
		var err error
		if mods, err = CollectModules(opts.Kernel.ModulesDir, names); err != nil {
			return "", err
		}
	}
	base, err := baseArchive(opts.Kernel.Release, mods)
	if err != nil {
		return "", err
	}
	env := golang.Default(
		golang.DisableCGO(),
		golang.WithGOOS("linux"),
		golang.WithGOARCH("amd64"),
		golang.WithWorkingDir(root),
		// gosh with the small line editor (peterh/liner) instead of
		// bubbline, which doubles the binary.
		golang.WithBuildTag("goshliner"),
	)
	key, err := initrdKey(root, fmt.Sprintf("%s/%s tags=%q", env.GOOS, env.GOARCH, env.BuildTags), commands, base)
	if err != nil {
		return "", err
	}
	out := filepath.Join(opts.CacheDir, "initrd", key+".cpio")
	if _, err := os.Stat(out); err == nil {
		fmt.Fprintf(logw, "initrd: cached %s\n", out)
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("initrd: create cache directory: %w", err)
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".build-")
	if err != nil {
		return "", fmt.Errorf("initrd: create build directory: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmpOut := filepath.Join(tmpDir, "initrd.cpio")

	fmt.Fprintf(logw, "initrd: building %d commands and the agent, %d kernel modules\n", len(commands), len(mods))
	l := llog.New(slog.LevelWarn, llog.WritePrintf(logw))
	err = uimage.Create(l,
		uimage.WithReplaceEnv(env),
		uimage.WithTempDir(tmpDir),
		uimage.WithBaseArchive(base),
		uimage.WithBusyboxCommands(append(append([]string(nil), commands...), AgentPackage)...),
		uimage.WithInit("init"),
		uimage.WithUinit(path.Base(AgentPackage)),
		uimage.WithShell("gosh"),
		uimage.WithCPIOOutput(tmpOut),
	)
	if err != nil {
		return "", fmt.Errorf("initrd: u-root build failed (run `go mod download` in %s, and check the commands are blank-imported in images/tools.go): %w", root, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("initrd: %w", err)
	}
	if err := os.Rename(tmpOut, out); err != nil {
		return "", fmt.Errorf("initrd: move into the cache: %w", err)
	}
	return out, nil
}

// baseArchive is u-root's default root file system plus the kernel modules
// and their modules.dep under lib/modules/<release>/.
func baseArchive(release string, mods []Module) (*cpio.Archive, error) {
	a := uimage.DefaultRamfs()
	if len(mods) == 0 {
		return a, nil
	}
	if release == "" {
		return nil, fmt.Errorf("initrd: kernel modules given without the kernel release: set KernelInfo.Release")
	}
	depText, err := ModulesDep(mods)
	if err != nil {
		return nil, err
	}
	top := path.Join("lib", "modules", release)
	files := map[string][]byte{path.Join(top, "modules.dep"): depText}
	for _, m := range mods {
		files[path.Join(top, m.Path)] = m.Data
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		if err := addParents(a, path.Dir(n), dirs); err != nil {
			return nil, err
		}
		if err := a.WriteRecord(cpio.StaticFile(n, string(files[n]), 0o644)); err != nil {
			return nil, fmt.Errorf("initrd: add %s: %w", n, err)
		}
	}
	return a, nil
}

// addParents adds dir and its parents to a, parents first, since the
// kernel's initramfs unpacker does not create missing directories.
func addParents(a *cpio.Archive, dir string, done map[string]bool) error {
	if dir == "." || dir == "/" || done[dir] {
		return nil
	}
	if err := addParents(a, path.Dir(dir), done); err != nil {
		return err
	}
	done[dir] = true
	if _, ok := a.Get(dir); ok {
		return nil
	}
	if err := a.WriteRecord(cpio.Directory(dir, 0o755)); err != nil {
		return fmt.Errorf("initrd: add directory %s: %w", dir, err)
	}
	return nil
}

// initrdKey hashes everything the initrd is made from: the Go toolchain
// version, the build environment, go.mod and go.sum, the agent's sources, the command list and the
// base archive (kernel modules included).
func initrdKey(root, env string, commands []string, base *cpio.Archive) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "govmm initrd v1\n%s\n%s\n%s\n", runtime.Version(), env, strings.Join(commands, "\n"))
	files := []string{"go.mod", "go.sum"}
	for _, dir := range agentSources {
		matches, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return "", fmt.Errorf("initrd: list agent sources: %w", err)
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				rel, _ := filepath.Rel(root, m)
				files = append(files, rel)
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", fmt.Errorf("initrd: hash inputs (is %s govmm's module root?): %w", root, err)
		}
		fmt.Fprintf(h, "file %s %d\n", f, len(data))
		h.Write(data)
	}
	for _, name := range base.Order {
		r := base.Files[name]
		fmt.Fprintf(h, "record %s %o %d %d:%d\n", r.Name, r.Mode, r.FileSize, r.Rmajor, r.Rminor)
		if r.ReaderAt != nil {
			if _, err := io.Copy(h, io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize))); err != nil {
				return "", fmt.Errorf("initrd: hash %s: %w", r.Name, err)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// FindModuleRoot returns the nearest directory at or above dir whose go.mod
// declares the govmm module.
func FindModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if f, err := os.Open(filepath.Join(d, "go.mod")); err == nil {
			mod := goModModule(f)
			f.Close()
			if mod == modulePath {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod for module %q at or above %s: run from the govmm checkout or set ModuleRoot", modulePath, dir)
		}
	}
}

// goModModule returns the module path a go.mod declares, or "".
func goModModule(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
