//! A FIFO between two parts of one component, with the timing of a same-clock link of latency
//! one and the same depth: a word pushed at edge `c` can be taken from edge `c + 1`; a word taken
//! at edge `c` frees its slot for a push from edge `c + 1`. So the order in which a block steps
//! its parts within an edge cannot change what any of them sees, as between components; and the
//! parts cost no link operations (a GLB's own sequencers and their ports, `rowsim-glb`; the GLB
//! block feeding its GINs, `rowsim-chip`).

/// A FIFO between two parts of one component (a block the scheduler steps once an edge for all
/// its parts): latency one edge, `depth` entries counting those taken at the
/// current edge (their slots are free from the next). Its words are small and `Copy` (beats,
/// requests, responses): a ring of a power-of-two size, words copied in and out.
pub struct Wire<T> {
    /// The ring: `(edge visible from, word)`; it grows to its size as the first words are
    /// pushed (slot `k` is pushed first as the `k`-th word), then slots are reused.
    slots: Vec<(u64, T)>,
    /// Slot of the head, and words held.
    head: usize,
    len: usize,
    /// The ring's size less one (a power of two at least `depth`, less one).
    mask: usize,
    depth: usize,
    /// The edge of the last take and how many were taken at it.
    taken_at: u64,
    taken: usize,
    /// The edge of the last push.
    pushed_at: u64,
}

impl<T: Copy> Wire<T> {
    pub fn new(depth: u32) -> Self {
        let depth = depth.max(1) as usize;
        let size = depth.next_power_of_two();
        Wire {
            slots: Vec::with_capacity(size),
            head: 0,
            len: 0,
            mask: size - 1,
            depth,
            taken_at: u64::MAX,
            taken: 0,
            pushed_at: u64::MAX,
        }
    }

    fn freed_late(&self, cycle: u64) -> usize {
        if self.taken_at == cycle {
            self.taken
        } else {
            0
        }
    }

    /// Whether a push at edge `cycle` finds a free slot.
    #[inline]
    pub fn can_push(&self, cycle: u64) -> bool {
        self.len + self.freed_late(cycle) < self.depth
    }

    /// Pushes at edge `cycle`, visible from the next; gives the word back if the FIFO is full.
    #[inline]
    pub fn push(&mut self, cycle: u64, item: T) -> Result<(), T> {
        if !self.can_push(cycle) {
            return Err(item);
        }
        let at = (self.head + self.len) & self.mask;
        if at < self.slots.len() {
            self.slots[at] = (cycle + 1, item);
        } else {
            // The ring's first words: slot `at` is the next one to make.
            debug_assert_eq!(at, self.slots.len());
            self.slots.push((cycle + 1, item));
        }
        self.len += 1;
        self.pushed_at = cycle;
        Ok(())
    }

    /// The word at the head, if it is visible at edge `cycle`.
    #[inline]
    pub fn peek(&self, cycle: u64) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        let (at, item) = &self.slots[self.head];
        (*at <= cycle).then_some(item)
    }

    /// Takes the word at the head if it is visible at edge `cycle`.
    #[inline]
    pub fn pop(&mut self, cycle: u64) -> Option<T> {
        let item = *self.peek(cycle)?;
        self.head = (self.head + 1) & self.mask;
        self.len -= 1;
        if self.taken_at == cycle {
            self.taken += 1;
        } else {
            self.taken_at = cycle;
            self.taken = 1;
        }
        Some(item)
    }

    /// Words pushed and not yet taken.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a word was pushed at edge `cycle` (the taker finds it at the next).
    #[inline]
    pub fn pushed_at(&self, cycle: u64) -> bool {
        self.pushed_at == cycle
    }

    /// Whether a word was taken at edge `cycle` (its slot is free for a push from the next).
    #[inline]
    pub fn freed_at(&self, cycle: u64) -> bool {
        self.taken_at == cycle
    }

    /// Whether the next edge may find something new here: a word (visible from then at the
    /// latest), or a slot freed at edge `cycle` (a waiting pusher may use it then).
    #[inline]
    pub fn stirs(&self, cycle: u64) -> bool {
        self.len != 0 || self.taken_at == cycle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire of depth 2 admits two pushes, shows each from the next edge, and frees a slot a
    /// cycle after a take, whichever of the two ends acts first within an edge.
    #[test]
    fn a_wire_has_the_timing_of_a_latency_one_link() {
        let mut w = Wire::<u32>::new(2);
        assert!(w.push(0, 1).is_ok());
        assert_eq!(w.peek(0), None);
        assert!(w.push(0, 2).is_ok());
        assert_eq!(w.push(0, 3), Err(3));
        assert_eq!(w.peek(1), Some(&1));
        // Taken at edge 1: the slot is free for a push at edge 2, not 1.
        assert_eq!(w.pop(1), Some(1));
        assert!(!w.can_push(1));
        assert!(w.stirs(1));
        assert!(w.can_push(2));
        // Word 2 was visible from edge 1 too; a second take at edge 1 frees a second slot late.
        assert_eq!(w.pop(1), Some(2));
        assert!(!w.can_push(1));
        assert!(w.is_empty() && w.stirs(1) && !w.stirs(2));
        assert!(w.push(2, 4).is_ok() && w.push(2, 5).is_ok());
        assert_eq!(w.pop(2), None);
        assert!(w.pushed_at(2) && !w.pushed_at(3));
        assert_eq!(w.pop(3), Some(4));
        assert_eq!(w.len(), 1);
    }
}
