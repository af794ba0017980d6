package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunErrors(t *testing.T) {
	notKernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(notKernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-modules", "/lib/modules/x"}, "-modules needs -kernel"},
		{[]string{"-kernel", notKernel, "-cache", t.TempDir()}, "bzImage"},
		{[]string{"-nosuchflag"}, "not defined"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
	}
}
