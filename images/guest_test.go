package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentCommandLine(t *testing.T) {
	tests := []struct {
		cmd   string
		shell bool
		want  string
	}{
		// images/agent/cmdline_test.go decodes this same text.
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

// TestAgentMarkers checks that the agent, which cannot import this package
// (see AgentPackage), prints the markers this package documents.
func TestAgentMarkers(t *testing.T) {
	var src strings.Builder
	for _, f := range []string{"main.go", "modules.go"} {
		b, err := os.ReadFile(filepath.Join("agent", f))
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for _, m := range []string{AgentReady, AgentModule, AgentExit} {
		if !strings.Contains(src.String(), `"`+m+`"`) {
			t.Errorf("agent sources lack the marker %q", m)
		}
	}
}
