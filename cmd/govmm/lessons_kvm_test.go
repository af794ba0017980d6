package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
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
			args := append([]string{"-kernel", filepath.Join(dir, l.Name+".elf"), "-trace", traceFile, "-serial", "file:" + serial}, lessons.Flags...)
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
				text := "# " + l.Title + "\n# govmm " + strings.Join(lessons.Flags, " ") + " -kernel " + l.Name + ".elf; serial output:\n"
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
