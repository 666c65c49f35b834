//! The storage of a link's messages between its two ends: a bounded single-producer,
//! single-consumer ring.
//!
//! A link has exactly one sending end and one receiving end, each owned by one component, and
//! its credits bound the messages on their way by its capacity. So its messages need no more
//! than a ring with a head the receiver advances and a tail the sender advances: a push is a
//! slot write and a release store of the tail, a pop a slot read and a release store of the
//! head, with no compare-exchange and no waker to notify (a general channel pays for several
//! senders and for receivers that block, which links never have).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Messages popped so far (written by the consumer only).
    head: AtomicUsize,
    /// Messages pushed so far (written by the producer only).
    tail: AtomicUsize,
}

// SAFETY: a slot is written by the producer only while it is outside `head..tail` (free), and
// published to the consumer by the release store of `tail` (read with acquire); it is read by
// the consumer only while inside `head..tail`, and handed back to the producer by the release
// store of `head` (read with acquire). With one producer and one consumer (the contract of
// `push` and `pop`), no slot is ever reached by both at once, so sharing the ring shares `T`
// only by moving it from one thread to another.
unsafe impl<T: Send> Send for Ring<T> {}
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring holding at least `capacity` messages (`capacity >= 1`).
    pub(crate) fn new(capacity: usize) -> Self {
        let n = capacity.max(1).next_power_of_two();
        Ring {
            slots: (0..n)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: n - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// The slot of message number `i` (counted since the ring was made), without a bounds
    /// check: `i & mask` is below the slots' length, a power of two that `mask` is one less
    /// than (the check on every message was a compare and a branch the compiler could not
    /// drop).
    #[inline(always)]
    fn slot(&self, i: usize) -> &UnsafeCell<MaybeUninit<T>> {
        debug_assert_eq!(self.slots.len(), self.mask + 1);
        // SAFETY: `i & mask <= mask < slots.len()` (see `new`).
        unsafe { self.slots.get_unchecked(i & self.mask) }
    }

    /// Appends `v`, or hands it back if the ring is full.
    ///
    /// # Safety
    /// Only one thread at a time may push (the link's one sending end, through `&mut`).
    #[inline]
    pub(crate) unsafe fn push(&self, v: T) -> Result<(), T> {
        let t = self.tail.load(Ordering::Relaxed);
        let h = self.head.load(Ordering::Acquire);
        if t.wrapping_sub(h) > self.mask {
            return Err(v);
        }
        // SAFETY: slot `t` is free (outside `head..tail`), and only this producer writes it.
        unsafe { (*self.slot(t).get()).write(v) };
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Takes the oldest message, if any.
    ///
    /// # Safety
    /// Only one thread at a time may pop (the link's one receiving end, through `&mut`).
    #[inline]
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let h = self.head.load(Ordering::Relaxed);
        let t = self.tail.load(Ordering::Acquire);
        if h == t {
            return None;
        }
        // SAFETY: slot `h` holds a message (inside `head..tail`, published by the acquire
        // load of `tail`), and only this consumer reads it, once: `head` moves past it.
        let v = unsafe { (*self.slot(h).get()).assume_init_read() };
        self.head.store(h.wrapping_add(1), Ordering::Release);
        Some(v)
    }

    /// Messages the consumer can see (pushed and not popped).
    ///
    /// # Safety
    /// Only the consumer may call it (as [`Ring::pop`]).
    #[cfg(test)]
    #[inline]
    pub(crate) unsafe fn len(&self) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        self.tail.load(Ordering::Acquire).wrapping_sub(h)
    }

    /// The `k`-th oldest message (the head is 0), if there are more than `k`.
    ///
    /// # Safety
    /// Only the consumer may call it, and the reference must be gone before its next pop.
    #[inline]
    pub(crate) unsafe fn get(&self, k: usize) -> Option<&T> {
        let h = self.head.load(Ordering::Relaxed);
        if k >= self.tail.load(Ordering::Acquire).wrapping_sub(h) {
            return None;
        }
        // SAFETY: slot `h + k` holds a message (inside `head..tail`, published by the acquire
        // load of `tail`) that only the consumer reaches until it pops it.
        Some(unsafe { (*self.slot(h.wrapping_add(k)).get()).assume_init_ref() })
    }

    /// How many of the oldest messages, at most `max`, `f` accepts in turn (given each one's
    /// place from the head): it stops at the first it refuses. One look at the tail.
    ///
    /// # Safety
    /// Only the consumer may call it.
    #[inline]
    pub(crate) unsafe fn count_while(
        &self,
        max: usize,
        mut f: impl FnMut(usize, &T) -> bool,
    ) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        let n = max.min(self.tail.load(Ordering::Acquire).wrapping_sub(h));
        let mut k = 0;
        while k < n {
            // SAFETY: slot `h + k` holds a message (inside `head..tail`, published by the
            // acquire load of `tail`) that only the consumer reaches.
            let v = unsafe { (*self.slot(h.wrapping_add(k)).get()).assume_init_ref() };
            if !f(k, v) {
                break;
            }
            k += 1;
        }
        k
    }

    /// Pops the `n` oldest messages into `f`, in order (`n` at most the messages there: it
    /// pops no more than there are). One look at the tail.
    ///
    /// # Safety
    /// Only the consumer may call it.
    #[inline]
    pub(crate) unsafe fn pop_into(&self, n: usize, mut f: impl FnMut(T)) {
        let h = self.head.load(Ordering::Relaxed);
        let n = n.min(self.tail.load(Ordering::Acquire).wrapping_sub(h));
        for k in 0..n {
            let at = h.wrapping_add(k);
            // SAFETY: slot `at` holds a message (inside `head..tail`), read once: `head` moves
            // past it before `f` sees it (a panic in `f` cannot leave it to be dropped again).
            let v = unsafe { (*self.slot(at).get()).assume_init_read() };
            self.head.store(at.wrapping_add(1), Ordering::Release);
            f(v);
        }
    }

    /// Pops the oldest messages, at most `max`, while `take` accepts each in turn (given its
    /// place from the head), handing each to `f` in order; returns how many. [`Ring::count_while`]
    /// and [`Ring::pop_into`] in one pass over the slots: one look at the tail.
    ///
    /// # Safety
    /// Only the consumer may call it.
    #[inline]
    pub(crate) unsafe fn pop_while(
        &self,
        max: usize,
        mut take: impl FnMut(usize, &T) -> bool,
        mut f: impl FnMut(T),
    ) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        let n = max.min(self.tail.load(Ordering::Acquire).wrapping_sub(h));
        let mut k = 0;
        while k < n {
            let at = h.wrapping_add(k);
            let slot = self.slot(at).get();
            // SAFETY: slot `at` holds a message (inside `head..tail`), looked at and then read
            // once: `head` moves past it before `f` sees it (as in `pop_into`).
            if !take(k, unsafe { (*slot).assume_init_ref() }) {
                break;
            }
            let v = unsafe { (*slot).assume_init_read() };
            self.head.store(at.wrapping_add(1), Ordering::Release);
            f(v);
            k += 1;
        }
        k
    }

    /// As [`Ring::get`], to change the message in place.
    ///
    /// # Safety
    /// As [`Ring::get`], and no other reference to the message may be alive (the consumer
    /// reaches the ring through `&mut`).
    #[inline]
    #[allow(clippy::mut_from_ref)] // the consumer's exclusive access, as the contract says
    pub(crate) unsafe fn get_mut(&self, k: usize) -> Option<&mut T> {
        let h = self.head.load(Ordering::Relaxed);
        if k >= self.tail.load(Ordering::Acquire).wrapping_sub(h) {
            return None;
        }
        // SAFETY: as in `get`; the consumer holds no other reference to it.
        Some(unsafe { (*self.slot(h.wrapping_add(k)).get()).assume_init_mut() })
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else pushes or pops.
        while unsafe { self.pop() }.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn holds_its_capacity_in_order_and_refuses_more() {
        let r = Ring::new(3);
        unsafe {
            for v in 0..4 {
                assert!(r.push(v).is_ok(), "rounded up to 4");
            }
            assert_eq!(r.push(9), Err(9));
            assert_eq!(r.pop(), Some(0));
            assert!(r.push(4).is_ok());
            assert_eq!(
                (1..5).map(|_| r.pop().unwrap()).collect::<Vec<_>>(),
                [1, 2, 3, 4]
            );
            assert_eq!(r.pop(), None);
        }
    }

    /// The consumer sees the messages in place, in order, changes them there, and pops them
    /// as they were left; a slot freed by a pop takes a new message after the others.
    #[test]
    fn the_consumer_reads_and_changes_messages_in_place() {
        let r = Ring::new(4);
        unsafe {
            assert_eq!((r.len(), r.get(0)), (0, None));
            for v in [10, 11, 12] {
                r.push(v).unwrap();
            }
            assert_eq!(r.len(), 3);
            assert_eq!((r.get(0), r.get(2), r.get(3)), (Some(&10), Some(&12), None));
            *r.get_mut(1).unwrap() += 100;
            assert_eq!(r.get_mut(3), None);
            assert_eq!(r.pop(), Some(10));
            r.push(13).unwrap();
            r.push(14).unwrap();
            assert_eq!(r.len(), 4);
            assert_eq!(r.get(0), Some(&111));
            assert_eq!(r.get(3), Some(&14), "wrapped past the end of the slots");
            assert_eq!(
                (1..5).map(|_| r.pop().unwrap()).collect::<Vec<_>>(),
                [111, 12, 13, 14]
            );
            assert_eq!(r.len(), 0);
        }
    }

    /// The consumer counts the oldest messages a test accepts and pops several at once, in
    /// order, across the wrap, and never more than there are.
    #[test]
    fn the_consumer_counts_and_pops_runs_of_messages() {
        let r = Ring::new(4);
        unsafe {
            for v in [1, 2] {
                r.push(v).unwrap();
            }
            r.pop_into(2, drop);
            for v in [10, 11, 12, 13] {
                r.push(v).unwrap();
            }
            assert_eq!(r.count_while(9, |k, &v| v == 10 + k as i32), 4);
            assert_eq!(r.count_while(9, |_, &v| v < 12), 2);
            assert_eq!(r.count_while(3, |_, _| true), 3);
            assert_eq!(r.count_while(9, |_, &v| v > 10), 0);
            let mut got = vec![];
            r.pop_into(3, |v| got.push(v));
            assert_eq!(got, [10, 11, 12]);
            r.pop_into(5, |v| got.push(v));
            assert_eq!(got, [10, 11, 12, 13], "no more than there are");
            assert_eq!((r.len(), r.count_while(9, |_, _| true)), (0, 0));
            for v in [20, 21, 22, 23] {
                r.push(v).unwrap();
            }
            got.clear();
            assert_eq!(
                r.pop_while(9, |k, &v| v == 20 + k as i32 && v < 22, |v| got.push(v)),
                2
            );
            assert_eq!(got, [20, 21], "up to the first refused, across the wrap");
            assert_eq!(
                r.pop_while(1, |_, _| true, |v| got.push(v)),
                1,
                "at most `max`"
            );
            assert_eq!(r.pop_while(9, |_, _| true, |v| got.push(v)), 1);
            assert_eq!((got, r.len()), (vec![20, 21, 22, 23], 0));
        }
    }

    #[test]
    fn drops_what_it_still_holds() {
        let counted = Arc::new(());
        let r = Ring::new(4);
        unsafe {
            r.push(counted.clone()).unwrap();
            r.push(counted.clone()).unwrap();
            drop(r.pop());
        }
        assert_eq!(Arc::strong_count(&counted), 2);
        drop(r);
        assert_eq!(Arc::strong_count(&counted), 1);
    }

    #[test]
    fn moves_every_message_once_between_two_threads() {
        let r = Arc::new(Ring::new(8));
        let n = 100_000u64;
        let producer = {
            let r = r.clone();
            std::thread::spawn(move || {
                for v in 0..n {
                    let mut v = Box::new(v);
                    // SAFETY: this thread is the only producer.
                    while let Err(back) = unsafe { r.push(v) } {
                        v = back;
                        std::hint::spin_loop();
                    }
                }
            })
        };
        let mut next = 0;
        while next < n {
            // SAFETY: this thread is the only consumer.
            if let Some(v) = unsafe { r.pop() } {
                assert_eq!(*v, next);
                next += 1;
            }
        }
        producer.join().unwrap();
        assert!(unsafe { r.pop() }.is_none());
    }
}
