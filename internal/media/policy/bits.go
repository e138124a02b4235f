package policy

import "errors"

// errTruncated: the syntax structure ends before its last element.
var errTruncated = errors.New("truncated")

// rbspReader reads the bits of an RBSP out of a NAL unit's payload (the bytes after the NAL unit header)
// without copying it: it drops emulation_prevention_three_byte as it goes. ITU-T H.264 §7.3.1 and §7.4.1: in
// a NAL unit, every 0x000003 sequence stands for 0x0000 and the 0x03 is not part of the RBSP; an encoder
// inserts it so that the payload never contains a start code prefix (Annex B).
type rbspReader struct {
	data  []byte
	pos   int  // next byte of data
	zeros int  // zero bytes just read, for spotting emulation prevention
	cur   byte // byte being read, consumed from the top bit down
	left  uint // bits of cur not read yet
}

func newRBSPReader(payload []byte) rbspReader { return rbspReader{data: payload} }

// nextByte returns the next RBSP byte.
func (r *rbspReader) nextByte() (byte, bool) {
	if r.pos >= len(r.data) {
		return 0, false
	}
	b := r.data[r.pos]
	r.pos++
	if r.zeros >= 2 && b == 0x03 {
		// emulation_prevention_three_byte: skip it. The zero count restarts, so 00 00 03 00 00 03 is two
		// escapes.
		r.zeros = 0
		if r.pos >= len(r.data) {
			return 0, false
		}
		b = r.data[r.pos]
		r.pos++
	}
	if b == 0 {
		r.zeros++
	} else {
		r.zeros = 0
	}
	return b, true
}

// u reads n ≤ 32 bits, most significant first: u(n) of §7.2.
func (r *rbspReader) u(n uint) (uint32, error) {
	var v uint32
	for n > 0 {
		if r.left == 0 {
			b, ok := r.nextByte()
			if !ok {
				return 0, errTruncated
			}
			r.cur, r.left = b, 8
		}
		take := min(n, r.left)
		// the top `take` bits of what is left of cur
		bits := uint32(r.cur>>(r.left-take)) & (1<<take - 1)
		v = v<<take | bits
		r.left -= take
		n -= take
	}
	return v, nil
}

// flag reads u(1) as a bool.
func (r *rbspReader) flag() (bool, error) {
	v, err := r.u(1)
	return v == 1, err
}

// ue reads an unsigned Exp-Golomb code, ue(v) of §9.1: leadingZeroBits zeros, a one, then leadingZeroBits
// bits; codeNum = 2^leadingZeroBits − 1 + those bits. H.264 uses values up to 2^32 − 2, so more than 31 leading
// zeros is an error (as it is for decoders).
func (r *rbspReader) ue() (uint32, error) {
	var lz uint
	for {
		b, err := r.u(1)
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		lz++
		if lz > 31 {
			return 0, errors.New("exp-Golomb code longer than 32 bits")
		}
	}
	if lz == 0 {
		return 0, nil
	}
	rest, err := r.u(lz)
	if err != nil {
		return 0, err
	}
	return uint32(uint64(1)<<lz - 1 + uint64(rest)), nil
}

// se reads a signed Exp-Golomb code, se(v) of §9.1.1: codeNum k maps to (−1)^(k+1)·Ceil(k÷2), i.e. 0, 1, −1,
// 2, −2, ...
func (r *rbspReader) se() (int32, error) {
	k, err := r.ue()
	if err != nil {
		return 0, err
	}
	if k&1 == 1 {
		return int32((uint64(k) + 1) / 2), nil
	}
	return -int32(k / 2), nil
}

// ueMax reads ue(v) and checks it against the largest value the semantics allow.
func (r *rbspReader) ueMax(max uint32, name string) (uint32, error) {
	v, err := r.ue()
	if err != nil {
		return 0, fieldErr(name, err)
	}
	if v > max {
		return 0, rangeErr(name, int64(v), int64(max))
	}
	return v, nil
}
