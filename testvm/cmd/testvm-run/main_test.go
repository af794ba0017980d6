package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseArgs(t *testing.T) {
	t.Setenv("GOVMM_CACHE", "/c")
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr bool
	}{
		{"defaults", []string{"--", "/bin/prog", "-x"}, options{cache: "/c", argv: []string{"/bin/prog", "-x"}}, false},
		{"all flags", []string{"-mem", "2G", "-cpus", "1", "-file", "/k", "-file", "/i", "-cache", "/d", "--", "/p", "-kernel", "/k"},
			options{mem: 2 << 30, cpus: 1, cache: "/d", files: []string{"/k", "/i"}, argv: []string{"/p", "-kernel", "/k"}}, false},
		{"no program", []string{"-file", "/k"}, options{}, true},
		{"bad mem", []string{"-mem", "lots", "/p"}, options{}, true},
		{"negative cpus", []string{"-cpus", "-1", "/p"}, options{}, true},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args, io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseArgs(%s) error = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && (got.mem != tt.want.mem || got.cpus != tt.want.cpus || got.cache != tt.want.cache ||
			!slices.Equal(got.files, tt.want.files) || !slices.Equal(got.argv, tt.want.argv)) {
			t.Errorf("parseArgs(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"512M", 512 << 20}, {"4G", 4 << 30}, {"2048", 2048 << 20}, {"65536k", 64 << 20},
		{"", 0}, {"G", 0}, {"-1G", 0}, {"0", 0}, {"1.5G", 0},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if got != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("parseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestWorkDir(t *testing.T) {
	tests := []struct {
		wd    string
		files []string
		want  string
	}{
		{"/work/main", []string{"/work/main/bin/govmm", "/cache/k"}, "/work/main"},
		{"/work/main", []string{"/work/main"}, "/work/main"},
		{"/work/main", []string{"/work/mainly/x", "/work/x"}, "/"},
		{"/home", nil, "/"},
	}
	for _, tt := range tests {
		if got := workDir(tt.wd, tt.files); got != tt.want {
			t.Errorf("workDir(%s, %v) = %s, want %s", tt.wd, tt.files, got, tt.want)
		}
	}
}
