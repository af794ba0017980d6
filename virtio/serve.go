package virtio

import (
	"sync"

	"github.com/govmm/govmm/virtio/queue"
)

// Handler serves one chain and says how many bytes it wrote into the
// chain's writable buffers. An error means the driver broke the rules:
// the queue stops and the device asks for a reset.
type Handler func(c *queue.Chain) (written uint32, err error)

// Workers are a device's goroutines, one per queue it serves, from
// Activate to Reset.
type Workers struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start begins a new set of workers.
func (w *Workers) Start() { w.stop = make(chan struct{}) }

// Stopping is closed when Stop is called.
func (w *Workers) Stopping() <-chan struct{} { return w.stop }

// Go runs fn on a goroutine of its own until Stop.
func (w *Workers) Go(fn func(stop <-chan struct{})) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		fn(w.stop)
	}()
}

// Stop tells the workers to stop and waits for them.
func (w *Workers) Stop() {
	if w.stop == nil {
		return
	}
	close(w.stop)
	w.wg.Wait()
	w.stop = nil
}

// Serve is a queue's worker: after each kick it hands every available
// chain of queue i to h, returns it through the used ring, and sends the
// used buffer notification the driver asked for (virtio 1.2, 2.7.13 and
// 2.7.14); while it works, it asks the driver not to notify. It returns
// when stop is closed, or when the driver broke the rules (after
// a.Broken).
func Serve(stop <-chan struct{}, a Activation, i int, h Handler) {
	q := a.Queues[i]
	if q == nil {
		return
	}
	var c queue.Chain
	for {
		select {
		case <-stop:
			return
		case <-a.Kicks[i]:
		}
		if err := drain(stop, a, i, q, &c, h); err != nil {
			a.Broken(err)
			return
		}
	}
}

// drain serves chains until the ring stays empty with notifications on.
func drain(stop <-chan struct{}, a Activation, i int, q *queue.Queue, c *queue.Chain, h Handler) error {
	for {
		if err := q.DisableNotify(); err != nil {
			return err
		}
		for {
			select {
			case <-stop:
				// Stopped (a reset, or the VMM pausing): what was
				// returned is still signalled, so that a pause loses no
				// interrupt; it reaches the vCPU's LAPIC, or the MSI-X
				// pending bits, which the machine's state carries.
				return signal(a, i, q)
			default:
			}
			ok, err := q.Pop(c)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			n, err := h(c)
			if err != nil {
				return err
			}
			if err := q.Return(c, n); err != nil {
				return err
			}
		}
		if err := signal(a, i, q); err != nil {
			return err
		}
		more, err := q.EnableNotify()
		if err != nil || !more {
			return err
		}
	}
}

// signal sends queue i's used buffer notification if the driver wants one
// for what was returned since the last (2.7.7.2).
func signal(a Activation, i int, q *queue.Queue) error {
	need, err := q.NeedInterrupt()
	if err != nil {
		return err
	}
	if need {
		a.Interrupt(i)
	}
	return nil
}
