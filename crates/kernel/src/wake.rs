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
use std::sync::atomic::{AtomicU32, Ordering};

/// Who owns a link end: `scheduler id << 32 | slot`, or [`NOBODY`].
pub(crate) type Owner = u64;
pub(crate) const NOBODY: Owner = u64::MAX;

/// A thread's wake-ups for its schedulers' components, and its count of link interactions.
struct Local {
    posts: RefCell<Vec<(Owner, u64)>>,
    interactions: Cell<u64>,
}

thread_local! {
    static CURRENT: Cell<Owner> = const { Cell::new(NOBODY) };
    static LOCAL: Local = const {
        Local {
            posts: RefCell::new(Vec::new()),
            interactions: Cell::new(0),
        }
    };
}

/// Link interactions (messages sent or taken) counted on this thread so far, for the
/// scheduler's account of where a run's time goes ([`crate::Scheduler::activity`]).
#[inline]
pub(crate) fn interactions() -> u64 {
    LOCAL.with(|l| l.interactions.get())
}

static NEXT_SCHEDULER: AtomicU32 = AtomicU32::new(0);

/// A fresh scheduler id.
pub(crate) fn new_scheduler_id() -> u32 {
    NEXT_SCHEDULER.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn owner(scheduler: u32, slot: usize) -> Owner {
    (scheduler as u64) << 32 | slot as u64
}

/// The component being stepped (or settled) on this thread, if any.
#[inline]
pub(crate) fn current() -> Owner {
    CURRENT.with(|c| c.get())
}

/// Marks `who` as the component being stepped until the guard is dropped.
pub(crate) struct Stepping(Owner);

impl Stepping {
    #[inline]
    pub(crate) fn new(who: Owner) -> Self {
        Stepping(CURRENT.with(|c| c.replace(who)))
    }
}

impl Drop for Stepping {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// A link interaction (a message sent or taken): asks for a step of `who` (the other end's
/// owner, if known) at `cycle` of its clock, and counts the interaction.
#[inline]
pub(crate) fn interact(who: Owner, cycle: u64) {
    LOCAL.with(|l| {
        l.interactions.set(l.interactions.get() + 1);
        if who != NOBODY {
            l.posts.borrow_mut().push((who, cycle));
        }
    });
}

/// Asks for a step of `who` at `cycle` of its clock.
#[inline]
pub(crate) fn post(who: Owner, cycle: u64) {
    if who != NOBODY {
        LOCAL.with(|l| l.posts.borrow_mut().push((who, cycle)));
    }
}

/// Hands the posts addressed to `scheduler`'s components to `f` (slot, cycle), keeping the rest.
pub(crate) fn collect(scheduler: u32, mut f: impl FnMut(usize, u64)) {
    LOCAL.with(|l| {
        let mut p = l.posts.borrow_mut();
        if p.is_empty() {
            return;
        }
        let mut foreign = 0;
        for k in 0..p.len() {
            let (who, cycle) = p[k];
            if (who >> 32) as u32 == scheduler {
                f((who & 0xFFFF_FFFF) as usize, cycle);
            } else {
                p[foreign] = (who, cycle);
                foreign += 1;
            }
        }
        p.truncate(foreign);
    });
}
