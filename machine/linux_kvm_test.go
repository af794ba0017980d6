package machine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// linuxGuest finds the default Linux guest through $GOVMM_CACHE/images.env,
// which `make images` writes (and which the tests use inside the emulated
// test machine, where nothing can be built), else by building it.
func linuxGuest(t *testing.T) (kernel, initrd string) {
	t.Helper()
	g, err := imagesenv.Load(kvmtest.CacheDir())
	if err == nil {
		return g.Kernel, g.Initrd
	}
	if os.Getenv("GOVMM_FETCH") != "1" && os.Getenv("GOVMM_REQUIRE_KVM") != "1" {
		t.Skipf("%v (or set GOVMM_FETCH=1 to fetch the Debian kernel here)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	built, err := images.DefaultGuest(ctx, kvmtest.CacheDir(), "", testLog{t})
	if err != nil {
		t.Fatalf("building the default Linux guest: %v", err)
	}
	return built.Kernel.Vmlinuz, built.Initrd
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// watcher is the serial console of a booting kernel: it keeps the text and
// tells when a wanted line has appeared.
type watcher struct {
	mu      sync.Mutex
	text    strings.Builder
	waiting map[string]chan struct{}
}

func newWatcher(wanted ...string) *watcher {
	w := &watcher{waiting: map[string]chan struct{}{}}
	for _, s := range wanted {
		w.waiting[s] = make(chan struct{})
	}
	return w
}

// Write keeps p with carriage returns dropped: Linux's serial console ends
// lines with \r\n.
func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text.WriteString(strings.ReplaceAll(string(p), "\r", ""))
	for s, ch := range w.waiting {
		if strings.Contains(w.text.String(), s) {
			close(ch)
			delete(w.waiting, s)
		}
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text.String()
}

// seen returns the channel closed when s has appeared.
func (w *watcher) seen(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.waiting[s]; ok {
		return ch
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// earlyBootBudget is how long a Debian kernel may take to get as far as
// earlyBoot waits: seconds on hardware, minutes where ring 0 is emulated
// (PVM), with room for a machine busy with other tests.
func earlyBootBudget(host kvm.HostKind) time.Duration {
	if host.Hardware() {
		return 60 * time.Second
	}
	return 360 * time.Second
}

// earlyE820 is the map govmm gives 256 MiB with the ECAM window reserved,
// as Linux prints it (inclusive ends).
var earlyE820 = []string{
	"BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
	"BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved",
	"BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable",
	"BIOS-e820: [mem 0x00000000e0000000-0x00000000efffffff] reserved",
}

// earlyBoot boots a Debian kernel by the fast path, without an initrd, and
// waits, within earlyBootBudget, for its banner, the exact command line
// govmm passed (the test's, with, on PVM hosts, the parameters govmm adds
// to hide CPU features), govmm's e820 map and then each of more in turn.
// It stops the VM there and checks the whole command line and that the
// map has no other entry.
func earlyBoot(t *testing.T, host kvm.HostKind, kernelPath string, more ...string) {
	t.Helper()
	kernel := readFile(t, kernelPath)
	cmdline := fmt.Sprintf("console=ttyS0 earlyprintk=serial reboot=k panic=-1 govmm.test=%d", time.Now().UnixNano())
	wanted := append(append([]string{"Linux version", "Command line: " + cmdline}, earlyE820...), more...)
	w := newWatcher(wanted...)
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: kernel, Cmdline: cmdline, MemSize: 256 << 20, CPUs: 1, Boot: BootFast, CacheDir: kvmtest.CacheDir(), SerialOut: w, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Loaded.Path != "fast" {
		t.Fatalf("%s took the %s path, want fast", kernelPath, m.Loaded.Path)
	}
	took := runToLines(t, m, w, host, wanted)
	t.Logf("%s printed %q %v after start (%v host)", kernelPath, wanted[len(wanted)-1], took, host)
	if !strings.HasPrefix(m.Loaded.Cmdline, cmdline) {
		t.Errorf("govmm passed the command line %q, want it to begin with the test's, %q", m.Loaded.Cmdline, cmdline)
	}
	if want := "Command line: " + m.Loaded.Cmdline + "\n"; !strings.Contains(w.String(), want) {
		t.Errorf("kernel did not print %q:\n%s", want, w.String())
	}
	if got := regexp.MustCompile(`BIOS-e820: `).FindAllString(w.String(), -1); len(got) != len(earlyE820) {
		t.Errorf("kernel printed %d e820 entries, want exactly %d:\n%s", len(got), len(earlyE820), w.String())
	}
}

// TestDebianKernelEarlyBoot boots Debian's cloud kernel by the fast path on
// any KVM host: banner, command line and e820 map, then, on PVM hosts,
// that the parameters govmm adds took effect, and on every host that the
// kernel's ACPI interpreter loaded govmm's DSDT and found the PCI host
// bridge it declares: as far as a stock kernel reliably gets on PVM within
// the budget, and proof that govmm's tables work for a real kernel.
//
// Measured on a PVM host on 2026-11-29 with other tests running (make test
// from a fresh clone): banner and e820 at once; "Clearing CPUID bits" at 0;
// "x86/fpu: x87 FPU will use FXSAVE" (noxsave taking effect) at 27 s; "ACPI:
// Interpreter enabled" at 61 s; "ACPI: PCI Root Bridge [PCI0]" at 62 s. It
// goes on to the serial driver at 144 s and the end of the initcalls at
// 248 s (518 s on a busier machine), then runs minutes of emulated ftrace
// record checks; with an initrd it reaches "Run /init as init process"
// after about 11 minutes, whose first SYSCALL stays in ring 3. ("random:
// crng init done", tried first, came at 121 s on an idle machine but not
// within 6 minutes on a loaded one: the pool waits on interrupt timing.)
func TestDebianKernelEarlyBoot(t *testing.T) {
	host := kvmtest.Require(t)
	kernel, _ := linuxGuest(t)
	var more []string
	if host == kvm.HostPVM {
		more = append(more, "Clearing CPUID bits: popcnt", "x86/fpu: x87 FPU will use FXSAVE")
	}
	earlyBoot(t, host, kernel, append(more, "ACPI: Interpreter enabled", "ACPI: PM: (supports S0 S5)", "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])")...)
}

// TestDebianGenericKernelEarlyBoot boots Debian's generic kernel, whose
// payload is xz with the x86 BCJ filter, by the fast path (govmm decodes
// both) and checks banner, command line and e820 map. `make test` fetches
// it (make images GENERIC=1); measured on a PVM host: 11 s.
func TestDebianGenericKernelEarlyBoot(t *testing.T) {
	host := kvmtest.Require(t)
	g, err := imagesenv.Load(kvmtest.CacheDir())
	if err == nil && g.Generic == "" {
		err = fmt.Errorf("%s names no generic kernel: run `make images GENERIC=1`", imagesenv.Path(kvmtest.CacheDir()))
	}
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bz, err := boot.ParseBzImage(readFile(t, g.Generic))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := bz.Payload(); err != nil || boot.DetectFormat(p) != boot.FormatXZ {
		t.Fatalf("%s's payload is not xz (%v): this test is about xz with BCJ", g.Generic, err)
	}
	earlyBoot(t, host, g.Generic)
}

// TestDebianKernelFullBoot boots Debian's kernel with the u-root initrd to
// the guest agent, runs guestChecks' commands there through the agent's
// shell, and checks what each printed, its exit status, and that the VM
// ends with the agent's reset. It needs hardware virtualization
// (kvmtest.RequireLinux): on PVM hosts testvm-exec runs it in the emulated
// SVM machine, so that CI always runs it.
func TestDebianKernelFullBoot(t *testing.T) {
	kvmtest.RequireLinux(t)
	kernelPath, initrdPath := linuxGuest(t)
	kernel, err := images.KernelFromPath(kernelPath, "")
	if err != nil {
		t.Fatal(err)
	}
	checks := guestChecks(kernel.Release)
	cmdline := "console=ttyS0 reboot=k panic=-1 quiet " + images.AgentCommandLine(guestScript(checks), false)
	w := newWatcher()
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, kernelPath), Initrd: readFile(t, initrdPath), Cmdline: cmdline, MemSize: 512 << 20, CPUs: 1, Boot: BootAuto, CacheDir: kvmtest.CacheDir(), SerialOut: w, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := m.Run(ctx)
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("Linux did not end within 3 minutes:\n%s", w.String())
	}
	if err != nil {
		t.Fatalf("Run() = %v\n%s", err, w.String())
	}
	out := w.String()
	if res.Reason != vcpu.StopPowerOff || res.Status != 0 || res.DebugExit {
		t.Errorf("Run() = %+v, want the agent's ACPI power-off with status 0", res)
	}
	for _, want := range []string{images.AgentReady + "\n", images.AgentExit + " 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("serial output lacks %q", strings.TrimSpace(want))
		}
	}
	for _, c := range checks {
		got, status, ok := guestSection(out, c.name)
		switch {
		case !ok:
			t.Errorf("guest command %q: no output section %q", c.cmd, c.name)
		case status != "0":
			t.Errorf("guest command %q exited %s, want 0; it printed:\n%s", c.cmd, status, got)
		default:
			if err := c.check(got); err != nil {
				t.Errorf("guest command %q: %v; it printed:\n%s", c.cmd, err, got)
			}
		}
	}
	if t.Failed() {
		t.Logf("serial output:\n%s", out)
	}
	t.Logf("full boot to the agent, %d commands and the reset took %v", len(checks), took.Round(time.Millisecond))
}

// guestCheck is one command TestDebianKernelFullBoot runs in the guest, and
// what it must print.
type guestCheck struct {
	name  string             // one word that marks the command's output
	cmd   string             // a command line for the agent's shell (u-root's gosh)
	check func(string) error // judges the output, without the section markers
}

// guestChecks are the commands the full boot runs, in order, with the
// default initrd's commands: each output is fixed by the command, the
// kernel (release) or the VM's size; the clock is compared with the host's.
// They share a tmpfs at /mnt/t, which the first one mounts.
func guestChecks(release string) []guestCheck {
	zeros := sha256.Sum256(make([]byte, 64<<10))
	return []guestCheck{
		{"sha256", "echo -n abc | sha256sum", lines("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -")},
		{"uname", "uname -s; uname -r; uname -m", lines("Linux", release, "x86_64")},
		{"files", "mkdir -p /mnt/t && mount -t tmpfs -o size=8m tmpfs /mnt/t && cd /mnt/t && echo hello >a && cp a b && mv b c && mkdir d && ls /mnt/t && cat c", lines("a", "c", "d", "hello")},
		{"dd", "dd if=/dev/zero of=/mnt/t/z bs=1024 count=64 2>/dev/null && wc -c /mnt/t/z && sha256sum /mnt/t/z", lines("65536 /mnt/t/z", hex.EncodeToString(zeros[:])+"  /mnt/t/z")},
		// a and c take a page each, z 64 KiB: 72 of the 8192 KiB.
		{"df", "df /mnt/t", matches(`(?m)^tmpfs\s+tmpfs\s+8192\s+72\s+8120\s+1%\s+/mnt/t\s*$`)},
		{"find", "find /mnt/t -name c; find /mnt/t -type d", lines("/mnt/t/c", "/mnt/t", "/mnt/t/d")},
		{"rm", "rm -r /mnt/t/a /mnt/t/c /mnt/t/d && ls /mnt/t", lines("z")},
		{"grep", "seq 1 100 | grep 7 | wc -l", lines("19")},
		{"base64", "echo -n govmm | base64; echo Z292bW0= | base64 -d; echo", lines("Z292bW0=", "govmm")},
		{"hexdump", "echo -n 'govmm is a VMM' | hexdump", lines(strings.Split(strings.TrimSuffix(hex.Dump([]byte("govmm is a VMM")), "\n"), "\n")...)},
		{"free", "free -m", memTotal(400, 512)},
		{"date", "date -u", clockNear(10 * time.Minute)},
		{"ps", "ps -A", matches(`(?m)^\s*1\s+.*init\s*$`)},
		{"cpuinfo", "grep -c hypervisor /proc/cpuinfo", lines("1")},
		// govmm passes the host's brand string (CPUID 0x8000_0002-4).
		{"model", "grep 'model name' /proc/cpuinfo", matches(`(?m)^model name\s*: ` + regexp.QuoteMeta(kvm.ReadHost(os.DirFS("/")).Model) + `\s*$`)},
	}
}

// Markers around each guestCheck's output, on lines of their own.
const (
	sectionBegin = "GOVMM-TEST-BEGIN"
	sectionEnd   = "GOVMM-TEST-END" // followed by the name and the exit status
)

// guestScript is the shell command that runs checks in order, each between
// a begin line and an end line that carries its exit status.
func guestScript(checks []guestCheck) string {
	var b strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&b, "echo %s %s\n{ %s\n}\necho %s %s $?\n", sectionBegin, c.name, c.cmd, sectionEnd, c.name)
	}
	return b.String()
}

// guestSection finds the output of the check called name in the serial
// output, and the exit status on its end line.
func guestSection(out, name string) (text, status string, ok bool) {
	re := regexp.MustCompile(`(?ms)^` + sectionBegin + ` ` + name + `\n(.*?)^` + sectionEnd + ` ` + name + ` (\d+)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// lines wants exactly these lines, trailing spaces aside.
func lines(want ...string) func(string) error {
	return func(got string) error {
		var have []string
		for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
			have = append(have, strings.TrimRight(l, " "))
		}
		if strings.Join(have, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("got %q, want %q", have, want)
		}
		return nil
	}
}

// matches wants a match of the regular expression re.
func matches(re string) func(string) error {
	r := regexp.MustCompile(re)
	return func(got string) error {
		if !r.MatchString(got) {
			return fmt.Errorf("no match for %s", re)
		}
		return nil
	}
}

// memTotal wants free -m's "Mem:" total between lo and hi MiB (the guest's
// RAM less what the kernel keeps) and no swap.
func memTotal(lo, hi int) func(string) error {
	return func(got string) error {
		m := regexp.MustCompile(`(?m)^Mem:\s+(\d+)\s`).FindStringSubmatch(got)
		if m == nil {
			return fmt.Errorf("no Mem: line")
		}
		if n, _ := strconv.Atoi(m[1]); n < lo || n > hi {
			return fmt.Errorf("Mem: total %d MiB, want %d-%d", n, lo, hi)
		}
		if !regexp.MustCompile(`(?m)^Swap:\s+0\s+0\s+0\s*$`).MatchString(got) {
			return fmt.Errorf("no Swap: line with 0 0 0")
		}
		return nil
	}
}

// clockNear wants date -u's time within slack of the host's clock: the
// guest reads its time from govmm's CMOS RTC, which gives the host's.
func clockNear(slack time.Duration) func(string) error {
	return func(got string) error {
		s := strings.TrimSpace(got)
		guest, err := time.Parse(time.UnixDate, s)
		if err != nil {
			return fmt.Errorf("time.Parse(UnixDate, %q): %v", s, err)
		}
		if d := time.Since(guest); d < -slack || d > slack {
			return fmt.Errorf("the guest's clock says %v, %v from the host's, want within %v", guest, d.Round(time.Second), slack)
		}
		return nil
	}
}

// runToLines runs m until its console w has shown every line of wanted,
// in order, within the early-boot budget of host, then stops it; it fails
// t otherwise, and returns how long the lines took.
func runToLines(t *testing.T, m *Machine, w *watcher, host kvm.HostKind, wanted []string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx)
		done <- err
	}()
	start := time.Now()
	deadline := time.After(earlyBootBudget(host))
	for _, want := range wanted {
		select {
		case <-w.seen(want):
		case err := <-done:
			cancel()
			t.Fatalf("guest stopped (%v) before printing %q:\n%s", err, want, w.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no %q within %v on a %v host:\n%s", want, earlyBootBudget(host), host, w.String())
		}
	}
	took := time.Since(start).Round(time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
	return took
}
