package images

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestAgentCommandLine(t *testing.T) {
	tests := []struct {
		cmd   string
		shell bool
		want  string
	}{
		{"echo hi; exit 3", false, "govmm.cmd=ZWNobyBoaTsgZXhpdCAz"},
		{"echo hi; exit 3", true, "govmm.cmd=ZWNobyBoaTsgZXhpdCAz govmm.shell=1"},
		{"??>", false, "govmm.cmd=Pz8-"},
		{"", true, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		if got := AgentCommandLine(tt.cmd, tt.shell); got != tt.want {
			t.Errorf("AgentCommandLine(%q, %v) = %q, want %q", tt.cmd, tt.shell, got, tt.want)
		}
	}
}

// projectImports returns the folders (relative to the module root) of the
// project packages that the package in dir imports, directly or not,
// dir's own included. Test files do not count.
func projectImports(t *testing.T, root, dir string) []string {
	t.Helper()
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					t.Fatal(err)
				}
				if rel, ok := strings.CutPrefix(p, modulePath+"/"); ok {
					visit(rel)
				}
			}
		}
	}
	visit(dir)
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return dirs
}

// TestAgentSourcesCoverImports checks that the initrd's cache key covers
// every project package compiled into it: a change to one must rebuild
// the initrd.
func TestAgentSourcesCoverImports(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	roots := []string{strings.TrimPrefix(AgentPackage, modulePath+"/")}
	for _, c := range DefaultCommands {
		if rel, ok := strings.CutPrefix(c, modulePath+"/"); ok {
			roots = append(roots, rel)
		}
	}
	for _, r := range roots {
		for _, dir := range projectImports(t, root, r) {
			if !slices.Contains(agentSources, dir) {
				t.Errorf("%s (compiled into the initrd through %s) is not in agentSources %q: add it, or the initrd is not rebuilt when it changes", dir, r, agentSources)
			}
		}
	}
	// The agent speaks the protocol through agentproto, not copies of it.
	if dirs := projectImports(t, root, "images/agent"); !slices.Contains(dirs, "images/agentproto") || !slices.Contains(dirs, "images/moddep") {
		t.Errorf("the agent imports %q, want images/agentproto and images/moddep among them", dirs)
	}
}
