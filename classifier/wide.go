package classifier

import "encoding/binary"

// wideAddrs numbers the addresses of live flows that are not IPv4-mapped
// (IPv6), so that a flow key holds each address in one word: an entry then
// has room for nothing but one flow's state. An address is held once for
// each endpoint of a live entry that names it and is forgotten when the
// last such entry goes; its number may then be given to another address,
// which no live key can confuse, since none holds the old one.
type wideAddrs struct {
	ids   map[[16]byte]uint32
	addrs []wideAddr
	free  []uint32 // numbers of forgotten addresses, to reuse
}

type wideAddr struct {
	addr  [16]byte
	holds uint32
}

// find returns the word of a held address, or false when no live flow
// names it (so no live flow has a key with it).
func (w *wideAddrs) find(a *[16]byte) (uint64, bool) {
	id, ok := w.ids[*a]
	return wideWord | uint64(id), ok
}

// hold returns the word of an address, numbering it if it is new, and
// counts one more endpoint that names it.
func (w *wideAddrs) hold(a *[16]byte) uint64 {
	id, ok := w.ids[*a]
	if !ok {
		if w.ids == nil {
			w.ids = map[[16]byte]uint32{}
		}
		if n := len(w.free); n > 0 {
			id = w.free[n-1]
			w.free = w.free[:n-1]
		} else {
			id = uint32(len(w.addrs))
			w.addrs = append(w.addrs, wideAddr{})
		}
		w.addrs[id] = wideAddr{addr: *a}
		w.ids[*a] = id
	}
	w.addrs[id].holds++
	return wideWord | uint64(id)
}

// release counts one endpoint less naming the address of word, which must
// be held, and forgets the address after its last.
func (w *wideAddrs) release(word uint64) {
	id := uint32(word &^ wideWord)
	s := &w.addrs[id]
	if s.holds--; s.holds == 0 {
		delete(w.ids, s.addr)
		w.free = append(w.free, id)
	}
}

// reset forgets every address (the table is empty).
func (w *wideAddrs) reset() {
	clear(w.ids)
	w.addrs = w.addrs[:0]
	w.free = w.free[:0]
}

// addr returns the 16-byte address of an address word.
func (w *wideAddrs) addr(word uint64) (a [16]byte) {
	if word&wideWord != 0 {
		return w.addrs[uint32(word&^wideWord)].addr
	}
	binary.BigEndian.PutUint64(a[8:], word)
	return a
}

// keyOf returns the canonical key of the packet src:sport → dst:dport and
// whether the sender is endpoint A. With hold set, an address new to the
// pool is numbered and every address held once more (for a flow being
// created); without it, ok is false when an address is not in the pool, so
// that no live flow can have the key.
func (w *wideAddrs) keyOf(src, dst *[16]byte, sport, dport uint16, proto uint8, hold bool) (k flowKey, srcIsA, ok bool) {
	if !hold {
		if k, srcIsA, ok = makeKey4(src, dst, sport, dport, proto); ok {
			return k, srcIsA, true
		}
	}
	srcIsA = srcFirst(src, dst, sport, dport)
	if !srcIsA {
		src, dst, sport, dport = dst, src, dport, sport
	}
	a, aok := w.word(src, hold)
	b, bok := w.word(dst, hold)
	return flowKey{a, b, sport, dport, proto}, srcIsA, aok && bok
}

func (w *wideAddrs) word(a *[16]byte, hold bool) (uint64, bool) {
	if word, ok := mappedWord(a); ok {
		return word, true
	}
	if hold {
		return w.hold(a), true
	}
	return w.find(a)
}

// releaseKey releases the pool addresses of a key that is going away.
func (w *wideAddrs) releaseKey(a, b uint64) {
	if a&wideWord != 0 {
		w.release(a)
	}
	if b&wideWord != 0 {
		w.release(b)
	}
}
