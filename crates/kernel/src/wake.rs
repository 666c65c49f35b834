//! How links tell the scheduler that a sleeping component has something to look at.
//!
//! A link end learns which component owns it the first time that component uses it inside a
//! step (the scheduler names the component being stepped in [`current`]). From then on, a send
//! posts "step the receiver at the cycle this message becomes visible", and a pop posts "step the
//! sender at the cycle this credit becomes usable". The scheduler collects the posts after each
//! instant. Posts are plain pushes onto a per-thread vector: no allocation once it has grown, no
//! lock, no atomic read-modify-write. Components are stepped on the scheduler's thread, so the
//! posts of a scheduler land on its own thread; each carries the scheduler's id, so two
//! schedulers stepped in turn on one thread never take each other's posts.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering};

/// Who owns a link end: `scheduler id << 32 | slot`, or [`NOBODY`].
pub(crate) type Owner = u64;
pub(crate) const NOBODY: Owner = u64::MAX;

/// A thread's component being stepped, its wake-ups for its schedulers' components, and its
/// count of link interactions: one thread-local, so a step's bookkeeping is one access.
struct Local {
    current: Cell<Owner>,
    posts: RefCell<Vec<(Owner, u64)>>,
    interactions: Cell<u64>,
}

thread_local! {
    // `ManuallyDrop`: a thread-local without a destructor is reached without the check that
    // a destructor's registration costs at each access (a link interaction makes one). A
    // scheduler frees the posts' vector when it is dropped ([`release`]).
    static LOCAL: ManuallyDrop<Local> = const {
        ManuallyDrop::new(Local {
            current: Cell::new(NOBODY),
            posts: RefCell::new(Vec::new()),
            interactions: Cell::new(0),
        })
    };
}

/// Frees this thread's vector of posts if it holds none (a scheduler being dropped: the
/// vector would otherwise outlive the thread's last simulation).
pub(crate) fn release() {
    LOCAL.with(|l| {
        if let Ok(mut p) = l.posts.try_borrow_mut() {
            if p.is_empty() {
                *p = Vec::new();
            }
        }
    });
}

static NEXT_SCHEDULER: AtomicU32 = AtomicU32::new(0);

/// A fresh scheduler id.
pub(crate) fn new_scheduler_id() -> u32 {
    NEXT_SCHEDULER.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn owner(scheduler: u32, slot: usize) -> Owner {
    debug_assert!(slot as u64 <= SLOT_MASK);
    (scheduler as u64) << 32 | slot as u64
}

/// The component being stepped (or settled) on this thread, if any.
#[inline]
pub(crate) fn current() -> Owner {
    LOCAL.with(|l| l.current.get())
}

/// Marks `who` as the component being stepped until the guard is dropped (or
/// [`Stepping::finish`]ed), counting the link interactions made meanwhile.
pub(crate) struct Stepping {
    before: Owner,
    interactions: u64,
}

impl Stepping {
    #[inline]
    pub(crate) fn new(who: Owner) -> Self {
        LOCAL.with(|l| Stepping {
            before: l.current.replace(who),
            interactions: l.interactions.get(),
        })
    }

    /// Ends the step: the link interactions made in it.
    #[inline]
    pub(crate) fn finish(self) -> u64 {
        let n = LOCAL.with(|l| {
            l.current.set(self.before);
            l.interactions.get() - self.interactions
        });
        std::mem::forget(self);
        n
    }
}

impl Drop for Stepping {
    #[inline]
    fn drop(&mut self) {
        LOCAL.with(|l| l.current.set(self.before));
    }
}

/// Where the slot field of an owner ends and its part begins (see [`in_part`]): the slot is the
/// low 24 bits, the part the 8 above them.
pub(crate) const PART_SHIFT: u32 = 24;
pub(crate) const SLOT_MASK: u64 = (1 << PART_SHIFT) - 1;
const PART_MASK: u64 = 0xFF << PART_SHIFT;

/// The parts a component may name ([`in_part`]): `1..MAX_PARTS`; part 0 is the component
/// itself.
pub const MAX_PARTS: u8 = 8;

/// Runs `f` as part `part` (`1..MAX_PARTS`) of the component being stepped: a link end first
/// used inside it is that part's, and its wake-ups still ask for a step of the component but
/// also tell it, at that step, that the part was asked for ([`crate::StepCtx::parts`]). A
/// block that steps several parts itself (a GLB block stepping its GON) then steps a part only
/// when something may have reached it. Outside a step, or with part 0, `f` runs as the
/// component.
pub fn in_part<R>(part: u8, f: impl FnOnce() -> R) -> R {
    assert!(part < MAX_PARTS, "part {part} of at most {MAX_PARTS}");
    struct Restore(Owner);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOCAL.with(|l| l.current.set(self.0));
        }
    }
    let before = current();
    if before == NOBODY {
        return f();
    }
    let _restore = Restore(before);
    LOCAL.with(|l| {
        l.current
            .set(before & !PART_MASK | (part as u64) << PART_SHIFT)
    });
    f()
}

/// Adds a post, unless it repeats the last one (a step asked for twice at one edge is one
/// step: the scheduler takes a repeat as a no-op).
#[inline(always)]
fn push_post(posts: &mut Vec<(Owner, u64)>, post: (Owner, u64)) {
    if posts.last() != Some(&post) {
        posts.push(post);
    }
}

/// A link interaction (a message sent or taken): asks for a step of `who` (the other end's
/// owner, if known) at `cycle` of its clock, and counts the interaction.
#[inline]
pub(crate) fn interact(who: Owner, cycle: u64) {
    LOCAL.with(|l| {
        l.interactions.set(l.interactions.get() + 1);
        if who != NOBODY {
            push_post(&mut l.posts.borrow_mut(), (who, cycle));
        }
    });
}

/// Asks for a step of `who` at `cycle` of its clock.
#[inline]
pub(crate) fn post(who: Owner, cycle: u64) {
    if who != NOBODY {
        LOCAL.with(|l| push_post(&mut l.posts.borrow_mut(), (who, cycle)));
    }
}

/// Hands the posts addressed to `scheduler`'s components to `f` (slot, part, cycle), keeping
/// the rest.
pub(crate) fn collect(scheduler: u32, mut f: impl FnMut(usize, u8, u64)) {
    LOCAL.with(|l| {
        let mut p = l.posts.borrow_mut();
        if p.is_empty() {
            return;
        }
        let mut foreign = 0;
        for k in 0..p.len() {
            let (who, cycle) = p[k];
            if (who >> 32) as u32 == scheduler {
                f(
                    (who & SLOT_MASK) as usize,
                    ((who & PART_MASK) >> PART_SHIFT) as u8,
                    cycle,
                );
            } else {
                p[foreign] = (who, cycle);
                foreign += 1;
            }
        }
        p.truncate(foreign);
    });
}
