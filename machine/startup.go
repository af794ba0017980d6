package machine

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Phase is one step of building a machine and how long it took.
type Phase struct {
	Name string
	Took time.Duration
	// Alongside says the step ran on another thread while the steps
	// before it in the list ran: it is not part of New's total.
	Alongside bool
}

// startup times the steps of New, for -v and make bench -v.
type startup struct {
	mu     sync.Mutex // for a step waited for on another goroutine
	last   time.Time
	phases []Phase
}

func startClock() *startup { return &startup{last: time.Now()} }

// mark ends the step called name.
func (s *startup) mark(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.phases = append(s.phases, Phase{name, now.Sub(s.last), false})
	s.last = now
}

// alongside runs f on a goroutine of its own while New goes on, and
// returns the function that waits for it (once or more, on any
// goroutine) and then records it as a step that ran alongside.
func (s *startup) alongside(name string, f func() error) func() error {
	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		t := time.Now()
		err := f()
		done <- result{err, time.Since(t)}
	}()
	return sync.OnceValue(func() error {
		r := <-done
		s.mu.Lock()
		defer s.mu.Unlock()
		s.phases = append(s.phases, Phase{name, r.took, true})
		return r.err
	})
}

// Startup returns the steps New took, in the order they ended.
func (m *Machine) Startup() []Phase {
	if m.clock == nil {
		return nil
	}
	return m.clock.phases
}

// FormatPhases writes phases as "name=1.234ms", space-separated, with
// "(alongside)" after a step that overlapped the others; make bench -v
// reads this.
func FormatPhases(phases []Phase) string {
	parts := make([]string, len(phases))
	for i, p := range phases {
		parts[i] = fmt.Sprintf("%s=%.3fms", p.Name, float64(p.Took)/float64(time.Millisecond))
		if p.Alongside {
			parts[i] += "(alongside)"
		}
	}
	return strings.Join(parts, " ")
}
