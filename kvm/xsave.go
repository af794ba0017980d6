package kvm

// XSAVE mirrors struct kvm_xsave: the vCPU's x87, SSE and extended state
// in the standard (uncompacted) XSAVE layout (Intel SDM vol. 1, 13.4),
// whatever format KVM keeps it in. Unlike FPU, it carries the header that
// says which components hold values, so MXCSR written here reaches the
// guest: on a PVM host KVM_GET_FPU reads MXCSR as 0 and KVM_SET_FPU's
// MXCSR does not stick while the SSE component is in its initial state
// (measured on kernel 6.18).
type XSAVE struct {
	Region [1024]uint32
}

// Byte offsets in the XSAVE area (SDM vol. 1, table 10-2 "Format of an
// FXSAVE Area" for the legacy region, 13.4.2 for the header).
const (
	xsaveMXCSR     = 24  // MXCSR, u32
	xsaveMXCSRMask = 28  // MXCSR_MASK, u32: the MXCSR bits the CPU supports
	xsaveXStateBV  = 512 // XSTATE_BV, u64: components not in their initial state
)

// XStateSSE is the SSE component's bit in XSTATE_BV: XMM registers and,
// with them, MXCSR.
const XStateSSE = 1 << 1

func (x *XSAVE) u32(off int) uint32 { return x.Region[off/4] }

// MXCSR is the SSE control and status register.
func (x *XSAVE) MXCSR() uint32 { return x.u32(xsaveMXCSR) }

// MXCSRMask is MXCSR_MASK: the MXCSR bits that may be set; 0 means the
// default mask 0xFFBF (SDM vol. 1, 11.6.6).
func (x *XSAVE) MXCSRMask() uint32 { return x.u32(xsaveMXCSRMask) }

// XStateBV is the header's XSTATE_BV.
func (x *XSAVE) XStateBV() uint64 {
	return uint64(x.Region[xsaveXStateBV/4]) | uint64(x.Region[xsaveXStateBV/4+1])<<32
}

// SetMXCSR sets MXCSR and marks the SSE component as holding values, so
// that KVM_SET_XSAVE loads MXCSR instead of the initial 0x1F80. The XMM
// registers in the area are those GetXSAVE read (zeros while the
// component was initial, which is what the initial state is).
func (x *XSAVE) SetMXCSR(v uint32) {
	x.Region[xsaveMXCSR/4] = v
	x.Region[xsaveXStateBV/4] |= XStateSSE // the low half of XSTATE_BV
}
