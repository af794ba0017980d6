package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	abc := filepath.Join(dir, "abc")
	if err := os.WriteFile(abc, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	// FIPS 180-2's test vector for "abc", and the digest of no bytes.
	const sumABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	const sumEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantOut    string
		wantStatus int
		wantErr    string
	}{
		{"stdin", nil, "abc", sumABC + "  -\n", 0, ""},
		{"dash", []string{"-"}, "", sumEmpty + "  -\n", 0, ""},
		{"file", []string{abc}, "", sumABC + "  " + abc + "\n", 0, ""},
		{"missing goes on", []string{missing, abc}, "", sumABC + "  " + abc + "\n", 1, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			status := run(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if status != tt.wantStatus || out.String() != tt.wantOut || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("run(%q) = %d, %q, stderr %q; want %d, %q, stderr with %q", tt.args, status, out.String(), errOut.String(), tt.wantStatus, tt.wantOut, tt.wantErr)
			}
		})
	}
}
