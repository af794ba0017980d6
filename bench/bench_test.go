package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/testvm"
)

// testGuestELF builds the test guests (or finds them built) and returns
// guest.elf.
func testGuestELF(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: cannot build the test guest")
	}
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	return g.ELF
}

func TestParseMark(t *testing.T) {
	tests := []struct {
		line  string
		label int
		us    int64
		ok    bool
	}{
		{"boot-timer: mark 1 (0x01) at 1234 us (1.234ms) since VMM start", 1, 1234, true},
		{"boot-timer: mark 7 (0x7) at 99 us since VMM start\r", 7, 99, true},
		{"boot-timer: mark 1 (0x01) at 12", 0, 0, false},
		{"govmm: boot-timer: mark 1 (0x01) at 5 us", 0, 0, false},
		{"boot-timer: mark x at 5 us", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		label, us, ok := parseMark(tt.line)
		if label != tt.label || us != tt.us || ok != tt.ok {
			t.Errorf("parseMark(%q) = %d, %d, %v, want %d, %d, %v", tt.line, label, us, ok, tt.label, tt.us, tt.ok)
		}
	}
}

func TestMarkWriterSplitLine(t *testing.T) {
	m := &markWriter{start: time.Now()}
	for _, p := range []string{"govmm: loading\nboot-timer: mark 1 (0x01) at 4", "21 us (421µs) since VMM start\n", "boot-timer: mark 2 (0x02) at 9 us\n"} {
		if _, err := m.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if seen, own := m.marks(); seen <= 0 || own != 421*time.Microsecond {
		t.Errorf("marks() = %v, %v, want > 0, 421µs (the first mark, whole)", seen, own)
	}
}

const smapsSample = `55d4c2a00000-55d4c2a21000 r-xp 00000000 fd:01 1234   /usr/bin/govmm
Size:                132 kB
Rss:                 120 kB
VmFlags: rd ex mr mw me
7f0000000000-7f0020000000 rw-p 00000000 00:00 0 
Size:             524288 kB
KernelPageSize:        4 kB
Rss:                2052 kB
Pss:                2052 kB
VmFlags: rd wr mr mw me nr
7f1000000000-7f1040000000 ---p 00000000 00:00 0 
Size:            1048576 kB
Rss:                   0 kB
7f2000000000-7f2000400000 rw-p 00000000 00:00 0 
Size:               4096 kB
Rss:                3000 kB
7f3000000000-7f3040200000 rw-p 00000000 00:00 0 
Size:            1050624 kB
Rss:                   8 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
`

func TestParseSmapsAndGuestMapping(t *testing.T) {
	ms, err := parseSmaps(smapsSample)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("parseSmaps: %d mappings, want 6: %+v", len(ms), ms)
	}
	if ms[0].Path != "/usr/bin/govmm" || ms[0].Size != 132<<10 || ms[5].Path != "[stack]" {
		t.Errorf("parseSmaps: %+v and %+v, want the file and the stack named, sizes in bytes", ms[0], ms[5])
	}
	g, err := guestMapping(ms, 512<<20)
	if err != nil {
		t.Fatal(err)
	}
	if g.Start != 0x7f0000000000 || g.Rss != 2052<<10 {
		t.Errorf("guestMapping = %+v, want the 512 MiB rw mapping (not the PROT_NONE or larger one)", g)
	}
	if _, err := guestMapping(ms, 2<<30); err == nil {
		t.Errorf("guestMapping(2 GiB) found one, want an error")
	}
	// govmm's RAM is a memfd mapped shared; a file of the same size is not RAM.
	memfd, err := parseSmaps("7f1000000000-7f1020000000 rw-s 00000000 00:01 2049 /memfd:govmm-guest-ram (deleted)\nSize: 524288 kB\nRss: 1024 kB\n" +
		"7f2000000000-7f2020000000 rw-s 00000000 08:01 77 /var/disk.img\nSize: 524288 kB\nRss: 4 kB\n")
	if err != nil {
		t.Fatal(err)
	}
	if g, err := guestMapping(memfd, 512<<20); err != nil || g.Start != 0x7f1000000000 || g.Rss != 1<<20 {
		t.Errorf("guestMapping(memfd RAM) = %+v, %v, want the /memfd: mapping", g, err)
	}
	if _, err := parseSmaps("zzzz-1000 rw-p 0 00:00 0\n"); err == nil {
		t.Errorf("parseSmaps(bad address) succeeded, want an error")
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS("Name:\tgovmm\nVmPeak:\t 1 kB\nVmRSS:\t   20480 kB\nThreads: 5\n")
	if err != nil || got != 20<<20 {
		t.Errorf("parseVmRSS = %d, %v, want %d, nil", got, err, 20<<20)
	}
	if _, err := parseVmRSS("Name: x\n"); err == nil {
		t.Errorf("parseVmRSS(no VmRSS) succeeded, want an error")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{10, 30, 20, 40}, 25},
	}
	for _, tt := range tests {
		in := append([]time.Duration(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Errorf("median reordered its argument: %v", tt.in)
			}
		}
	}
}

func TestWriteTable(t *testing.T) {
	rows := []row{
		{Name: "exit round trip", Govmm: value(7.5), Peer: value(6), Unit: "us", Notes: "peer cvmm"},
		{Name: "rss", Govmm: value(123.4), Peer: missing("n/a (no QEMU)"), Unit: "MiB", Notes: "two\nlines"},
		{Name: "x", Govmm: missing("failed"), Peer: value(0.01234), Unit: "ms"},
	}
	var b bytes.Buffer
	if err := writeTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := `name             govmm   peer           ratio  unit  notes
exit round trip  7.50    6.00           1.25x  us    peer cvmm
rss              123     n/a (no QEMU)  -      MiB   two lines
x                failed  0.012          -      ms    
`
	if b.String() != want {
		t.Errorf("writeTable =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestParseResult(t *testing.T) {
	rc := &resultCatcher{log: &bytes.Buffer{}}
	in := report{Header: []string{"h"}, Rows: []row{{Name: "a", Govmm: value(1), Peer: missing("n/a")}}}
	var b bytes.Buffer
	if err := jsonLine(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"[ 1.0] kernel says hi\r\n" + b.String()[:10], b.String()[10:]} {
		if _, err := rc.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rc.report()
	if err != nil || len(got.Rows) != 1 || got.Rows[0].Govmm.Value != 1 || got.Rows[0].Peer.Missing != "n/a" {
		t.Errorf("report() = %+v, %v, want the rows back", got, err)
	}
	if log := rc.log.(*bytes.Buffer).String(); log != "  vm| [ 1.0] kernel says hi\n" {
		t.Errorf("console passed on = %q, want the kernel line only", log)
	}
	if _, err := parseResult(""); err == nil {
		t.Errorf("parseResult(\"\") succeeded, want an error")
	}
}

// underTCG rewrites QEMU's command line to use software emulation, so
// that the QEMU peer's code paths run on hosts without KVM.
func underTCG(v vmm) vmm {
	argv := v.argv
	v.argv = func(cmdline string, verbose bool) []string {
		var out []string
		for _, a := range argv(cmdline, verbose) {
			switch a {
			case "-enable-kvm":
				out = append(out, "-accel", "tcg")
			case "host":
				out = append(out, "max")
			default:
				out = append(out, a)
			}
		}
		return out
	}
	return v
}

// TestQEMUPeerUnderTCG boots the test guest in QEMU as the bench does (but
// with TCG, which needs no KVM), and measures QEMU's memory while the guest
// spins: the exit code convention and the smaps reading find QEMU's guest
// RAM.
func TestQEMUPeerUnderTCG(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU: skipped with -short")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	v := underTCG(qemuVMM(qemu, "microvm", testGuestELF(t), 256))
	if a := strings.Join(v.argv("x", false), " "); !strings.Contains(a, "-accel tcg -M microvm -cpu max") {
		t.Fatalf("underTCG: argv = %s", a)
	}
	want := fmt.Sprintf("ring3 ok sum=%08x", testguest.Checksum(1000))
	if _, err := runOnce(context.Background(), v, bootCmdline, false, time.Minute, want); err != nil {
		t.Errorf("runOnce(qemu, %q) = %v, want success (exit code 1)", bootCmdline, err)
	}
	if _, err := runOnce(context.Background(), v, "expect_mem=1", false, time.Minute, "checks ok"); err == nil {
		t.Errorf("runOnce(qemu, expect_mem=1) succeeded, want the guest's failure (exit code 5) reported")
	}
	r, err := measureRSS(context.Background(), v, 256<<20, time.Minute, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.guestSize < 256<<20 || r.guestRSS == 0 || r.vmRSS <= r.guestRSS {
		t.Errorf("measureRSS(qemu) = %+v, want a 256 MiB mapping partly touched, inside VmRSS", r)
	}
	t.Logf("qemu tcg: VmRSS %.1f MiB, guest %.1f MiB of %d MiB, overhead %.1f MiB", mib(r.vmRSS), mib(r.guestRSS), r.guestSize>>20, mib(r.overhead()))
}

// TestBuildCVMM compiles the C peer (warnings are errors) and checks the
// binary is static, as testvm's machine needs, and reused when built.
func TestBuildCVMM(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	bin, err := buildCVMM(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := testvm.CheckStatic(bin); err != nil {
		t.Error(err)
	}
	again, err := buildCVMM(dir)
	if err != nil || again != bin {
		t.Errorf("buildCVMM again = %q, %v, want %q reused", again, err, bin)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "usage: cvmm") {
		t.Errorf("cvmm with no arguments = %q, %v, want the usage and a failure", out, err)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-govmm", "x", "-only", "pio,mmio", "-runs", "2"}, ""},
		{[]string{"-only", "pio,boots"}, "-only"},
		{[]string{"-mem", "16"}, "-mem"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, &bytes.Buffer{})
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseFlags(%q) = %v, want error containing %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestParsePhases reads the -v lines of govmm and of cvmm.
func TestParsePhases(t *testing.T) {
	tests := []struct {
		name, stderr string
		want         phases
	}{
		{"govmm", "govmm: before the clock: flags=0.420ms\n" +
			"govmm: kernel via elf path\n" +
			"govmm: start-up: prepare=0.350ms kvm=0.500ms mmap=0.020ms setup=1.500ms ram=6.000ms(alongside) ram-wait=4.530ms\n" +
			"govmm: starting 1 vCPU(s) 7.5ms after start (pvm host)\n" +
			"boot-timer: mark 1 (0x01) at 7650 us (7.65ms) since VMM start\n" +
			"govmm: guest ended (power off, status 0) after 20.25ms\n" +
			"govmm: close=0.75ms\n",
			phases{"prepare": 0.35, "kvm": 0.5, "mmap": 0.02, "setup": 1.5, "ram": 6, "ram-wait": 4.53, keySteps: 6.9, keyStart: 7.5, keyEnded: 20.25, keyClose: 0.75, keyFlags: 0.42}},
		{"cvmm", "cvmm: start-up: kvm=0.300ms ram=6.100ms setup=0.500ms\r\ncvmm: starting 1 vCPU(s) 6.950ms after start\ncvmm: guest ended (status 0) after 15.5ms\n",
			phases{"kvm": 0.3, "ram": 6.1, "setup": 0.5, keySteps: 6.9, keyStart: 6.95, keyEnded: 15.5}},
		{"no -v lines", "boot-timer: mark 1 (0x01) at 5 us\n", phases{}},
	}
	for _, tt := range tests {
		got := parsePhases(tt.stderr)
		if len(got) != len(tt.want) {
			t.Errorf("parsePhases(%s) = %v, want %v", tt.name, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9 {
				t.Errorf("parsePhases(%s)[%s] = %v, %v, want %v", tt.name, k, g, ok, v)
			}
		}
	}
}

// TestBreakdownRows: each line is the median over runs of a step or of a
// difference of steps, missing where no run has it (cvmm has no prepare).
func TestBreakdownRows(t *testing.T) {
	run := func(mark, steps, start, ended float64) phases {
		return phases{keySeen: mark + 1, keyMark: mark, keyWall: ended + 3, keySteps: steps, keyStart: start, keyEnded: ended, "kvm": 0.5}
	}
	govmm := []phases{run(8, 6, 7, 20), run(9, 7, 8, 22), run(10, 8, 9, 30)}
	for _, p := range govmm {
		p[keyFlags] = 0.25
	}
	cvmm := []phases{run(7, 6, 6.5, 15)}
	rows := breakdownRows(govmm, cvmm)
	get := func(prefix string) row {
		for _, r := range rows {
			if strings.HasPrefix(strings.TrimSpace(r.Name), prefix) {
				return r
			}
		}
		t.Fatalf("no breakdown row %q in %+v", prefix, rows)
		return row{}
	}
	tests := []struct {
		prefix      string
		govmm, peer string
	}{
		{"exec -> VMM's clock", "1.00", "1.00"},
		{"exec, Go runtime", "0.750", "-"},
		{"flags and options", "0.250", "-"},
		{"read kernel", "failed", "-"},
		{"KVM:", "0.500", "0.500"},
		{"-> first KVM_RUN", "1.00", "0.500"},
		{"first KVM_RUN -> first guest exit", "1.00", "0.500"},
		{"first exit -> guest's end", "13.0", "8.00"}, // 12, 13 and 20
		{"guest's end -> VMM reaped", "2.00", "2.00"},
		{"total", "25.0", "18.0"},
	}
	for _, tt := range tests {
		r := get(tt.prefix)
		if want := tt.govmm; want == "failed" {
			if r.Govmm.ok() {
				t.Errorf("%s: govmm = %v, want missing", tt.prefix, r.Govmm)
			}
		} else if got := r.Govmm.String(); got != want {
			t.Errorf("%s: govmm = %s, want %s", tt.prefix, got, want)
		}
		if got := r.Peer.String(); got != tt.peer {
			t.Errorf("%s: cvmm = %s, want %s", tt.prefix, got, tt.peer)
		}
	}
}

// TestFloorRow builds the empty Go and C programs (static, as testvm's
// machine needs, and reused when built) and times them: both run, and
// the row has a value on each side.
func TestFloorRow(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	bins, err := buildFloor(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{bins.goBin, bins.cBin} {
		if err := testvm.CheckStatic(b); err != nil {
			t.Error(err)
		}
	}
	if again, err := buildFloor(dir); err != nil || again != bins {
		t.Errorf("buildFloor again = %+v, %v, want %+v reused", again, err, bins)
	}
	s := &suite{floor: bins, runs: 3, log: io.Discard}
	r := s.floorRow(context.Background())
	if !r.Govmm.ok() || !r.Peer.ok() || r.Govmm.Value <= 0 || r.Peer.Value <= 0 || len(s.errs) > 0 {
		t.Errorf("floor row = %+v, errors %v: want a time for each program", r, s.errs)
	}
	s = &suite{floor: floorBins{goBin: filepath.Join(dir, "missing"), cBin: bins.cBin}, runs: 1, log: io.Discard}
	if r := s.floorRow(context.Background()); r.Govmm.ok() || len(s.errs) != 1 {
		t.Errorf("floor row with a missing program = %+v, errors %v: want it failed", r, s.errs)
	}
}

// TestCachedBuild: a failed build leaves no folder that a later call would
// take for finished; a finished one is reused without building again.
func TestCachedBuild(t *testing.T) {
	cache := t.TempDir()
	boom := fmt.Errorf("boom")
	half := func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "a"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return boom // "b" never made
	}
	if _, err := cachedBuild(cache, "x", []byte("k"), []string{"a", "b"}, half); err != boom {
		t.Fatalf("cachedBuild with a failing build = %v, want %v", err, boom)
	}
	if left, _ := os.ReadDir(cache); len(left) != 0 {
		t.Errorf("a failed build left %v in the cache", left)
	}
	builds := 0
	full := func(tmp string) error {
		builds++
		for _, f := range []string{"a", "b"} {
			if err := os.WriteFile(filepath.Join(tmp, f), nil, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	for range 2 {
		dir, err := cachedBuild(cache, "x", []byte("k"), []string{"a", "b"}, full)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "b")); err != nil {
			t.Errorf("after cachedBuild: %v", err)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times, want once and then reused", builds)
	}
}
