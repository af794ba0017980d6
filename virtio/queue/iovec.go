package queue

// Helpers over a chain's buffers, which a request may split anywhere.

// Slices appends to dst the parts of bufs that hold bytes [off, off+n)
// of their concatenation, and returns it; fewer bytes when bufs end
// first. The parts alias guest memory: an I/O vector for preadv/pwritev.
func Slices(dst [][]byte, bufs [][]byte, off, n uint64) [][]byte {
	for _, b := range bufs {
		if n == 0 {
			break
		}
		l := uint64(len(b))
		if off >= l {
			off -= l
			continue
		}
		take := l - off
		if take > n {
			take = n
		}
		dst = append(dst, b[off:off+take])
		n -= take
		off = 0
	}
	return dst
}

// CopyFrom copies bytes of bufs' concatenation from off into p and
// returns how many it copied.
func CopyFrom(p []byte, bufs [][]byte, off uint64) int {
	done := 0
	for _, b := range bufs {
		if done == len(p) {
			break
		}
		if off >= uint64(len(b)) {
			off -= uint64(len(b))
			continue
		}
		done += copy(p[done:], b[off:])
		off = 0
	}
	return done
}

// CopyTo copies p into bufs' concatenation at off and returns how many
// bytes fit.
func CopyTo(bufs [][]byte, off uint64, p []byte) int {
	done := 0
	for _, b := range bufs {
		if done == len(p) {
			break
		}
		if off >= uint64(len(b)) {
			off -= uint64(len(b))
			continue
		}
		done += copy(b[off:], p[done:])
		off = 0
	}
	return done
}
