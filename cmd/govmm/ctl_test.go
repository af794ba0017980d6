package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCtlUsage checks govmm ctl's usage errors: status 2 and what to do.
func TestCtlUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "give a command"},
		{[]string{"info"}, "give the control API's socket with -api PATH"},
		{[]string{"-api", "/x", "fly"}, `unknown command "fly"`},
		{[]string{"-api", "/x", "info", "extra"}, "ctl info takes no arguments"},
		{[]string{"-api", "/x", "snapshot"}, "give the folder to write it to"},
		{[]string{"-api", "/x", "migrate"}, "give the destination"},
		{[]string{"-api", "/x", "migrate", "udp:1.2.3.4:5"}, "give tcp:HOST:PORT"},
		{[]string{"-api", "/x", "migrate", "-bandwidth", "lots", "tcp:1.2.3.4:5"}, "-bandwidth"},
	}
	for _, tt := range tests {
		t.Setenv("GOVMM_API", "")
		status, err := runCtl(context.Background(), tt.args, &bytes.Buffer{}, &bytes.Buffer{})
		if status != 2 || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("govmm ctl %q = %d, %v; want 2 and an error saying %q", tt.args, status, err, tt.want)
		}
	}
	status, err := runCtl(context.Background(), []string{"-api", "/nonexistent/api.sock", "info"}, &bytes.Buffer{}, &bytes.Buffer{})
	if status != 1 || err == nil || !strings.Contains(err.Error(), "is govmm running with -api /nonexistent/api.sock") {
		t.Errorf("govmm ctl info with nothing there = %d, %v; want 1 and an error asking whether govmm runs", status, err)
	}
}

// TestMobilityFlags checks -api, -snapshot-dir, -restore and -incoming
// on govmm's command line.
func TestMobilityFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // "" for none
	}{
		{[]string{"-restore", "/snap"}, ""},
		{[]string{"-incoming", "tcp:0.0.0.0:4444", "-mem", "1G"}, ""},
		{[]string{"-restore", "/snap", "-incoming", "tcp:1.2.3.4:5"}, "give one"},
		{[]string{"-incoming", "4444"}, "-incoming: migration address"},
		{[]string{"-kernel", "bz", "-snapshot-dir", "/snaps"}, "-snapshot-dir without -api"},
		{[]string{"-kernel", "bz", "-api", "/tmp/a.sock", "-snapshot-dir", "/snaps"}, ""},
		{[]string{"-api", "/tmp/a.sock"}, "no kernel: give one with -kernel FILE"},
	}
	for _, tt := range tests {
		o, err := parseFlags(tt.args, &bytes.Buffer{})
		if tt.want == "" {
			if err != nil {
				t.Errorf("parseFlags(%q) = %v, want no error", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, %v; want an error saying %q", tt.args, o, err, tt.want)
		}
	}
	o, err := parseFlags([]string{"-restore", "/snap", "-cpus", "2"}, &bytes.Buffer{})
	if err != nil || !o.mob.given["cpus"] || o.mob.given["mem"] {
		t.Errorf("parseFlags(-restore -cpus 2) given = %v, %v; want cpus alone", o.mob.given, err)
	}
}
