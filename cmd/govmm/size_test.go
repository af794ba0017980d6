package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"512M", 512 << 20, false},
		{"512m", 512 << 20, false},
		{"2G", 2 << 30, false},
		{"2GiB", 2 << 30, false},
		{"2GB", 2 << 30, false},
		{"64K", 64 << 10, false},
		{"1T", 1 << 40, false},
		{"256", 256 << 20, false},
		{" 1G ", 1 << 30, false},
		{"", 0, true},
		{"M", 0, true},
		{"0", 0, true},
		{"-1G", 0, true},
		{"1.5G", 0, true},
		{"12Q", 0, true},
		{"99999999999999T", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v, want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
