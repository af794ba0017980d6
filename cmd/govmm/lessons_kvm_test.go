package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest/lessons"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/trace"
)

var updateGolden = flag.Bool("update", false, "rewrite the teaching guests' golden traces from this run")

// buildLessons builds the teaching guests for a test.
func buildLessons(t *testing.T) string {
	t.Helper()
	dir, err := lessons.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLessonTraces runs each teaching guest with -trace and holds its
// exits to the lesson's golden trace (images/testguest/lessons/golden):
// the trace a student sees is the one the walkthrough describes. With
// -update it writes the golden traces instead.
func TestLessonTraces(t *testing.T) {
	kvmtest.Require(t)
	dir := buildLessons(t)
	for _, l := range lessons.All {
		t.Run(l.Name, func(t *testing.T) {
			tmp := t.TempDir()
			traceFile, serial := filepath.Join(tmp, "trace.json"), filepath.Join(tmp, "serial")
			args := append([]string{"-kernel", filepath.Join(dir, l.Name+".elf"), "-trace", traceFile, "-serial", "file:" + serial}, l.Args()...)
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			status, err := run(ctx, args, nil, &bytes.Buffer{}, &stderr)
			if status != 0 || err != nil {
				t.Fatalf("govmm %q = %d, %v, want 0\nstderr:\n%s", args, status, err, stderr.String())
			}
			raw, err := os.ReadFile(traceFile)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
				g, err := trace.GoldenFromJSON(line)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, g)
			}
			if *updateGolden {
				out, _ := os.ReadFile(serial)
				text := "# " + l.Title + "\n# govmm " + strings.Join(l.Args(), " ") + " -kernel " + l.Name + ".elf; serial output:\n"
				for _, s := range strings.SplitAfter(strings.TrimSuffix(string(out), "\n"), "\n") {
					text += "#   " + strings.TrimSuffix(s, "\n") + "\n"
				}
				text += strings.Join(got, "\n") + "\n"
				if err := os.WriteFile(filepath.Join("..", "..", "images", "testguest", "lessons", "golden", l.Name+".golden"), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := lessons.Golden(l.Name)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("govmm -trace of %s differs from its golden trace:\n%s", l.Name, lineDiff(got, want))
			}
		})
	}
}

// lineDiff shows where two traces part.
func lineDiff(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			b.WriteString("exit " + strconv.Itoa(i+1) + ":\n  got  " + g + "\n  want " + w + "\n")
			if b.Len() > 2000 {
				b.WriteString("...\n")
				break
			}
		}
	}
	return b.String()
}

// TestVirtioLessonSteps follows the virtio lesson's walkthrough
// (docs/lessons/6-virtio.md) through a pipe: a break on the common
// configuration's MMIO range stops first at the device reset, the step
// over the doorbell write has no exit (an ioeventfd takes it), and at
// used the used ring holds the device's answer: idx 1, descriptor 0, 16
// bytes written. The random bytes themselves are never looked at.
func TestVirtioLessonSteps(t *testing.T) {
	kvmtest.Require(t)
	out, status := stepSession(t, "virtio", strings.Join([]string{
		"b mmio 0xc0000000-0xc0000fff",
		"c",
		"b clear",
		"b notify",
		"c",
		"s 3",
		"b clear",
		"b used",
		"c",
		"x vq_used 16",
		"c",
		"c",
	}, "\n")+"\n", "-rng", "on")
	if status != 0 {
		t.Errorf("status = %d, want 0\n%s", status, out)
	}
	first := regexp.MustCompile(`rip=0x[0-9a-f]+ mov byte ptr \[ebp\+0x14\], 0x0    ; reset_device\n  exit: KVM_EXIT_MMIO write 0xc0000014 size 1 data 0x0 -> pci 00:01.0 BAR0`)
	if !first.MatchString(out) {
		t.Errorf("the break on the common configuration did not stop at the reset's write of device_status:\n%s", out)
	}
	_, afterNotify, _ := strings.Cut(out, "; notify\n")
	steps, _, _ := strings.Cut(afterNotify, "(step) b clear")
	if !strings.Contains(steps, "mov word ptr [edx], ax") || strings.Contains(steps, "exit") {
		t.Errorf("the steps over the doorbell write show an exit, or not the write:\n%s", steps)
	}
	if !strings.Contains(out, "00009050  00 00 01 00 00 00 00 00  10 00 00 00 00 00 00 00") {
		t.Errorf("x vq_used 16 at used: want idx 1, ring[0] = {id 0, len 16}:\n%s", out)
	}
}
