package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The language floor: an empty static program in Go and one in C, each
// built here, timed from exec to its exit in the same run as the boot rows.
// Their difference is what any Go VMM pays at start before its first line
// of code runs; govmm's exec -> first exit ratio cannot go below it.
const (
	floorC     = "int main(void) { return 0; }\n"
	floorGo    = "package main\n\nfunc main() {}\n"
	floorGoMod = "module floor\n\ngo 1.22\n"
)

// floorBins are the two empty programs.
type floorBins struct{ goBin, cBin string }

// buildFloor compiles the empty programs into cacheDir/floor-<hash>, with
// cvmm's gcc flags and Go with cgo off (static, like govmm), and reuses a
// finished build.
func buildFloor(cacheDir string) (floorBins, error) {
	gccVersion, err := firstLine("gcc", "--version")
	if err != nil {
		return floorBins{}, fmt.Errorf("gcc is needed to build the C floor program (apt-get install gcc): %w", err)
	}
	goVersion, err := firstLine("go", "version")
	if err != nil {
		return floorBins{}, fmt.Errorf("go is needed to build the Go floor program: %w", err)
	}
	key := fmt.Sprintf("%q\n%s\n%s\n%s%s%s", cvmmFlags, gccVersion, goVersion, floorC, floorGo, floorGoMod)
	dir, err := cachedBuild(cacheDir, "floor", []byte(key), []string{"empty-go", "empty-c"}, func(tmp string) error {
		for name, text := range map[string]string{"empty.c": floorC, "main.go": floorGo, "go.mod": floorGoMod} {
			if err := os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o644); err != nil {
				return fmt.Errorf("write the floor program: %w", err)
			}
		}
		if err := gccStatic(filepath.Join(tmp, "empty.c"), filepath.Join(tmp, "empty-c")); err != nil {
			return err
		}
		cmd := exec.Command("go", "build", "-o", "empty-go", ".")
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build of the empty Go program: %w\n%s", err, out)
		}
		return nil
	})
	return floorBins{goBin: filepath.Join(dir, "empty-go"), cBin: filepath.Join(dir, "empty-c")}, err
}

// floorRow times each empty program from exec to its exit, s.runs times
// alternating (after a warm-up of each), and gives Go against C.
func (s *suite) floorRow(ctx context.Context) row {
	r := row{Name: "exec -> exit of an empty static program, Go against C", Unit: "ms",
		Notes: "peer C (gcc -static); no VMM: Go's runtime start, the part of govmm's first row no Go program avoids"}
	if s.floor.goBin == "" {
		r.Govmm, r.Peer = missing("n/a (not built)"), missing("n/a (not built)")
		return r
	}
	s.progress("floor: %d runs each of an empty Go and an empty C program (+1 warm-up)", s.runs)
	var goRuns, cRuns []time.Duration
	for i := 0; i <= s.runs; i++ {
		for _, p := range []struct {
			bin  string
			into *[]time.Duration
		}{{s.floor.goBin, &goRuns}, {s.floor.cBin, &cRuns}} {
			start := time.Now()
			if err := exec.CommandContext(ctx, p.bin).Run(); err != nil {
				err = fmt.Errorf("run %s: %w", p.bin, err)
				r.Govmm, r.Peer = s.fail(err), missing("failed")
				return r
			}
			if i > 0 {
				*p.into = append(*p.into, time.Since(start))
			}
		}
	}
	r.Govmm, r.Peer = value(durationMS(median(goRuns))), value(durationMS(median(cRuns)))
	return r
}
