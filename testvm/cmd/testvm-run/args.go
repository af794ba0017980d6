package main

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// argFiles finds, for -copy-args, the host files and directories that the
// program's arguments name. It looks at each argument whole, at the value
// after "-flag=", and at each part of a comma-separated list whole and
// after "key=", so that "-initrd my.cpio", "-initrd=my.cpio" and "-drive
// file=disk.img,readonly=on" all name a file. Relative paths are resolved
// against wd.
type argFiles struct {
	wd    string
	stat  func(string) (fs.FileInfo, error) // os.Stat; a test's file system
	files []string                          // absolute, each once, in order
	seen  map[string]bool
}

// scan returns args as the program in the VM should get them, and records
// the files they name. A relative path that leaves wd ("../x") becomes
// absolute: the program runs in wd only when wd holds a copied file (see
// workDir), and "../x" may be the only one. Other words stay as written.
func (a *argFiles) scan(args []string) []string {
	out := make([]string, len(args))
	for i, arg := range args {
		out[i] = a.arg(arg)
	}
	return out
}

func (a *argFiles) arg(arg string) string {
	if w, ok := a.word(arg); ok {
		return w
	}
	if strings.HasPrefix(arg, "-") {
		if name, value, ok := strings.Cut(arg, "="); ok {
			return name + "=" + a.list(value)
		}
		return arg
	}
	return a.list(arg)
}

// list looks at each comma-separated part of s, whole and after "key=".
func (a *argFiles) list(s string) string {
	if w, ok := a.word(s); ok {
		return w
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if w, ok := a.word(p); ok {
			parts[i] = w
		} else if key, value, ok := strings.Cut(p, "="); ok {
			if w, ok := a.word(value); ok {
				parts[i] = key + "=" + w
			}
		}
	}
	return strings.Join(parts, ",")
}

// word says whether w names a host file or directory to copy, and returns
// it as the program should see it. The root and the kernel's own file
// systems (/proc, /sys, /dev: "-kvm /dev/kvm" names the VM's device, not a
// file to copy) never count, nor do sockets, pipes and devices.
func (a *argFiles) word(w string) (string, bool) {
	if w == "" {
		return w, false
	}
	abs := w
	if !filepath.IsAbs(w) {
		abs = filepath.Join(a.wd, w)
	}
	abs = filepath.Clean(abs)
	if abs == "/" || underAny(abs, "/proc", "/sys", "/dev") {
		return w, false
	}
	st, err := a.stat(abs)
	if err != nil || !st.IsDir() && !st.Mode().IsRegular() {
		return w, false
	}
	if !a.seen[abs] {
		if a.seen == nil {
			a.seen = map[string]bool{}
		}
		a.seen[abs] = true
		a.files = append(a.files, abs)
	}
	if !filepath.IsAbs(w) && !under(abs, a.wd) {
		return abs, true
	}
	return w, true
}

// under says whether path is dir or inside it; both are clean and absolute.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func underAny(path string, dirs ...string) bool {
	for _, d := range dirs {
		if under(path, d) {
			return true
		}
	}
	return false
}
