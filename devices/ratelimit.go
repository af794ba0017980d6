package devices

import (
	"sync"
	"time"
)

// logLimit keeps a guest from flooding the VMM's log: a token bucket that
// lets a burst of lines through, then one per interval, and counts what it
// holds back so that the next line let through, and the VMM at the end,
// can say how many were left out. It is safe for concurrent use.
type logLimit struct {
	burst    int
	interval time.Duration

	mu         sync.Mutex
	tokens     int
	last       time.Time // when tokens was last topped up
	suppressed uint64    // held back since the last line let through
	total      uint64    // held back in all
}

func newLogLimit(burst int, interval time.Duration) *logLimit {
	return &logLimit{burst: burst, interval: interval, tokens: burst}
}

// allow says whether a line may be written at now and, if so, how many
// were held back since the last one that was.
func (l *logLimit) allow(now time.Time) (ok bool, heldBack uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.last = now
	}
	if n := int(now.Sub(l.last) / l.interval); n > 0 {
		l.tokens = min(l.burst, l.tokens+n)
		l.last = l.last.Add(time.Duration(n) * l.interval)
	}
	if l.tokens == 0 {
		l.suppressed++
		l.total++
		return false, 0
	}
	l.tokens--
	heldBack, l.suppressed = l.suppressed, 0
	return true, heldBack
}

// heldBack returns how many lines were held back in all.
func (l *logLimit) heldBack() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
