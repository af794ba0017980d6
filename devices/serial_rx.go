package devices

// The receive side of the UART: host input queued for the guest.

func (s *Serial) popRx() byte {
	if len(s.r.rx) == 0 {
		return 0
	}
	v := s.r.rx[0]
	s.dropRx(1)
	return v
}

// dropRx removes n bytes from the front of the receive queue and wakes a
// writer that found it full.
func (s *Serial) dropRx(n int) {
	if n == 0 {
		return
	}
	wasFull := len(s.r.rx) >= RxQueueSize
	s.r.rx = s.r.rx[n:]
	if len(s.r.rx) == 0 {
		s.r.rx = nil // let the backing array go
	}
	if wasFull {
		select {
		case s.room <- struct{}{}:
		default:
		}
	}
}

// Enqueue queues host input for the guest and returns how many bytes of p
// it took (fewer than len(p) when the queue holds RxQueueSize bytes). Input
// is not taken in loopback mode, where the receiver is disconnected from
// the line.
func (s *Serial) Enqueue(p []byte) int {
	s.mu.Lock()
	if s.r.mcr&MCRLoop != 0 {
		s.mu.Unlock()
		return 0
	}
	n := min(len(p), RxQueueSize-len(s.r.rx))
	s.r.rx = append(s.r.rx, p[:n]...)
	s.mu.Unlock()
	s.syncIRQ()
	return n
}

// Room returns a channel that receives a value when the guest drains a
// receive queue that Enqueue found full, so a writer can wait instead of
// polling. A value may be stale; Enqueue's result is what counts.
func (s *Serial) Room() <-chan struct{} { return s.room }
