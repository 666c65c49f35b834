//! The datapath modes, one engine each behind [`Engine`]: how a PE writes its filter stream,
//! issues a position's operations and runs the rest of a position at once.
//! - [`Dense`]: every MAC slot issued in `s`, `c`, `f` order; zero gating (if on) holds the
//!   multiplier still on a zero ifmap value but spends the slot.
//! - [`Skipping`]: a position's index read, then only the pairs whose ifmap value and weight are
//!   both nonzero; its weights arrive dense or compressed (a zero mask, then the nonzero
//!   values).
//!
//! The control FSM around them (filter load, stalls, drain, run-ahead) is the same for both
//! (see `control.rs`).

use rowsim_datapath::mac;
use rowsim_datapath::zmask::{self, DecodeError};

use crate::pipeline::RdReg;
use crate::signals::strobe;
use crate::{Datapath, PeSizes, PeState, Primitive};

/// A datapath mode.
pub(crate) trait Engine: Send {
    /// Ready for a new primitive.
    fn configure(&mut self, prim: &Primitive);

    /// A word of the filter stream, written at this edge of the load (a fault names the word of
    /// a corrupt stream; `pe` names the PE).
    fn load(&mut self, dp: &mut Datapath, w: i16, prim: &Primitive, pe: &str)
        -> Result<(), String>;

    /// The RD stage of an edge in `Compute`: the next operation of the position, or a stall
    /// (false) while its window is not stored.
    fn issue(&mut self, dp: &mut Datapath, prim: &Primitive) -> bool;

    /// The edges the rest of the position takes from here (its operations and the two bubbles
    /// after them), if they can run at once: the window is stored and nothing else decides them.
    fn burst_edges(&self, dp: &Datapath, prim: &Primitive) -> Option<u64>;

    /// When the rest of the position, run at once with its next operation at edge `first`,
    /// releases the window's leading entries `from..from + out.len()` (in write order, see
    /// `Datapath::released`): the edge at which the last MAC of each entry's group issues.
    fn release_edges(
        &self,
        dp: &Datapath,
        prim: &Primitive,
        first: u64,
        from: u64,
        out: &mut [u64],
    );

    /// The rest of the position's operations at once, each through MUL and ADD as it issues
    /// (the pipeline is empty when it starts): the same operations in the same order as edge
    /// by edge, so the same bits and counts.
    fn run_position(&mut self, dp: &mut Datapath, prim: &Primitive) {
        while dp.state == PeState::Compute {
            self.issue(dp, prim);
            dp.complete_rd(prim);
        }
    }
}

/// The engine of the primitive's mode (kept across primitives: its buffers are made once).
pub(crate) enum Mode {
    Dense(Dense),
    Skipping(Skipping),
}

impl Mode {
    /// The engine for `prim`, made if the mode changed.
    pub fn configure(&mut self, prim: &Primitive, sizes: &PeSizes) {
        match self {
            Mode::Skipping(_) if prim.zero_skipping => {}
            Mode::Dense(_) if !prim.zero_skipping => {}
            _ if prim.zero_skipping => *self = Mode::Skipping(Skipping::new(sizes)),
            _ => *self = Mode::Dense(Dense::default()),
        }
        self.get().configure(prim);
    }

    #[inline]
    fn get(&mut self) -> &mut dyn Engine {
        match self {
            Mode::Dense(e) => e,
            Mode::Skipping(e) => e,
        }
    }

    // The engine's operations, dispatched on the mode without a virtual call (the hot ones
    // inline into the control FSM).

    #[inline]
    pub fn load(
        &mut self,
        dp: &mut Datapath,
        w: i16,
        prim: &Primitive,
        pe: &str,
    ) -> Result<(), String> {
        match self {
            Mode::Dense(e) => e.load(dp, w, prim, pe),
            Mode::Skipping(e) => e.load(dp, w, prim, pe),
        }
    }

    #[inline]
    pub fn issue(&mut self, dp: &mut Datapath, prim: &Primitive) -> bool {
        match self {
            Mode::Dense(e) => e.issue(dp, prim),
            Mode::Skipping(e) => e.issue(dp, prim),
        }
    }

    #[inline]
    pub fn burst_edges(&self, dp: &Datapath, prim: &Primitive) -> Option<u64> {
        match self {
            Mode::Dense(e) => e.burst_edges(dp, prim),
            Mode::Skipping(e) => e.burst_edges(dp, prim),
        }
    }

    pub fn release_edges(
        &self,
        dp: &Datapath,
        prim: &Primitive,
        first: u64,
        from: u64,
        out: &mut [u64],
    ) {
        match self {
            Mode::Dense(e) => e.release_edges(dp, prim, first, from, out),
            Mode::Skipping(e) => e.release_edges(dp, prim, first, from, out),
        }
    }

    #[inline]
    pub fn run_position(&mut self, dp: &mut Datapath, prim: &Primitive) {
        match self {
            Mode::Dense(e) => e.run_position(dp, prim),
            Mode::Skipping(e) => e.run_position(dp, prim),
        }
    }

    /// The words of the filter stream a load ahead may take next as one run: the rest of the
    /// row, or with compressed weights the rest of its current part (its mask words, whose
    /// bits say how many values follow, or its values).
    #[inline]
    pub fn words_left(&self, dp: &Datapath, prim: &Primitive) -> u32 {
        match self {
            Mode::Skipping(e) if prim.compressed => e.compressed_words_left(dp),
            _ => prim.p * prim.q * prim.s - dp.filter.loaded,
        }
    }

    /// Of the next words of the filter stream (`words`, within [`Mode::words_left`]), how many
    /// load without a fault: a load ahead takes those, and leaves a word that faults to a step
    /// at its own edge, which raises the fault there as a step at every edge does.
    #[inline]
    pub fn loadable(&self, dp: &Datapath, prim: &Primitive, words: &[i16]) -> usize {
        match self {
            Mode::Skipping(e) if prim.compressed => e.compressed_loadable(dp, words),
            _ => words.len(),
        }
    }
}

/// Every MAC slot issued; the ifmap value of an `(s, c)` read once and held for its `p` MACs.
#[derive(Default)]
pub(crate) struct Dense {
    /// The MAC being issued, as (f, c) counters, so no division runs per cycle.
    op_f: u32,
    op_c: u32,
    /// Ifmap-spad column of `window start + s` for the MAC being issued.
    rd_col: u32,
    /// The ifmap value held for the `p` MACs of an `(s, c)`.
    held_ifmap: i16,
    held_zero: bool,
}

impl Dense {
    /// After the `p` MACs of an `(s, c)`: the next channel, and after the last channel the next
    /// ifmap-spad column.
    #[inline]
    fn next_channel(&mut self, dp: &Datapath, prim: &Primitive) {
        self.op_c += 1;
        if self.op_c == prim.q {
            self.op_c = 0;
            self.rd_col += 1;
            if self.rd_col == dp.ifmap.cols {
                self.rd_col = 0;
            }
        }
    }
}

impl Dense {
    /// MACs `f0..p` of the group at `dp.op` (its first, `f0`) with the held ifmap value, each
    /// through MUL and ADD, as issued one an edge: gated as a whole on a zero value.
    #[inline(always)]
    fn group_macs(&mut self, dp: &mut Datapath, prim: &Primitive, f0: usize) {
        let p = prim.p as usize;
        let n = (p - f0) as u64;
        if prim.zero_gating && self.held_zero {
            dp.counters.macs_gated += n;
            return;
        }
        let (x, base) = (self.held_ifmap, dp.op as usize);
        let weights = &dp.filter.entries[base..base + p - f0];
        let psums = &mut dp.psum[f0..p];
        let ov = &mut dp.counters.overflows;
        if let Some(product) = mac::mac_row(psums, weights, x, prim.mac, ov) {
            dp.pipe.mac_product = product;
        }
        dp.pipe.mac_a = weights[p - f0 - 1];
        dp.pipe.mac_b = x;
        let c = &mut dp.counters;
        c.macs += n;
        c.filter_spad_reads += n;
        c.psum_spad_reads += n;
        c.psum_spad_writes += n;
    }
}

impl Engine for Dense {
    fn configure(&mut self, _prim: &Primitive) {
        self.op_f = 0;
        self.op_c = 0;
        self.rd_col = 0;
    }

    fn load(
        &mut self,
        dp: &mut Datapath,
        w: i16,
        prim: &Primitive,
        _pe: &str,
    ) -> Result<(), String> {
        dp.write_weight(w, prim);
        Ok(())
    }

    fn issue(&mut self, dp: &mut Datapath, prim: &Primitive) -> bool {
        let (p, q) = (prim.p, prim.q);
        if dp.op == 0 {
            // The whole window must be in the spad before the position starts.
            if !dp.window_stored(prim) {
                dp.counters.stall_ifmap += 1;
                return false;
            }
            // Once a position: the spad column of the window's first column.
            self.rd_col = dp.ifmap.col_of(dp.window_start(prim));
        }
        let (f, c) = (self.op_f, self.op_c);
        if f == 0 {
            let a = self.rd_col * q + c;
            self.held_ifmap = dp.ifmap.entries[a as usize];
            self.held_zero = dp.ifmap.is_zero(a);
            dp.counters.ifmap_spad_reads += 1;
            dp.probe.strobes |= strobe::IFMAP_RD;
            dp.probe.held.ifmap_rd = (a, self.held_ifmap);
        }
        let gated = prim.zero_gating && self.held_zero;
        if self.held_zero {
            dp.probe.strobes |= strobe::ZERO_FLAG;
        }
        let mut weight = 0;
        if !gated {
            // Filter-spad order (s*q + c)*p + f is the issue order.
            let a = dp.op;
            weight = dp.filter.entries[a as usize];
            dp.counters.filter_spad_reads += 1;
            dp.probe.strobes |= strobe::FILTER_RD;
            dp.probe.held.filter_rd = (a, weight);
        }
        dp.pipe.rd = Some(RdReg {
            f,
            gated,
            weight,
            ifmap: self.held_ifmap,
        });
        dp.op += 1;
        self.op_f += 1;
        if self.op_f == p {
            self.op_f = 0;
            self.next_channel(dp, prim);
        }
        dp.end_position_after_last_op();
        true
    }

    fn burst_edges(&self, dp: &Datapath, _prim: &Primitive) -> Option<u64> {
        (dp.state == PeState::Compute).then(|| (dp.ops - dp.op) as u64 + 2)
    }

    /// One operation an edge, in order: group `g`'s last, `(g+1)*p - 1`, issues
    /// `(g+1)*p - 1 - op` edges after the next.
    fn release_edges(
        &self,
        dp: &Datapath,
        prim: &Primitive,
        first: u64,
        from: u64,
        out: &mut [u64],
    ) {
        for (k, e) in out.iter_mut().enumerate() {
            let last = (from + k as u64 + 1) * prim.p as u64 - 1;
            *e = first + last.saturating_sub(dp.op as u64);
        }
    }

    fn run_position(&mut self, dp: &mut Datapath, prim: &Primitive) {
        let p = prim.p as usize;
        // The rest of a group started already (its first MAC issued at the step before the
        // burst): the held ifmap value with the group's remaining filters.
        if dp.state == PeState::Compute && self.op_f != 0 {
            let f0 = self.op_f as usize;
            self.group_macs(dp, prim, f0);
            dp.op += (p - f0) as u32;
            self.op_f = 0;
            self.next_channel(dp, prim);
            dp.end_position_after_last_op();
        }
        // Whole groups: the `p` MACs of one (s, c) share an ifmap value, read once.
        while dp.state == PeState::Compute {
            if dp.op == 0 {
                self.rd_col = dp.ifmap.col_of(dp.window_start(prim));
            }
            let a = self.rd_col * prim.q + self.op_c;
            self.held_ifmap = dp.ifmap.entries[a as usize];
            self.held_zero = dp.ifmap.is_zero(a);
            dp.counters.ifmap_spad_reads += 1;
            self.group_macs(dp, prim, 0);
            dp.op += prim.p;
            self.next_channel(dp, prim);
            dp.end_position_after_last_op();
        }
    }
}

/// Zero skipping: the weight zero buffer (one bit per weight of the row), and with compressed
/// weights each nonzero weight's filter-spad entry; a position's progress through its nonzero
/// pairs.
pub(crate) struct Skipping {
    weight_zero: Vec<u64>,
    /// Compressed weights: the filter-spad entry of each nonzero weight, `popcount` of the
    /// mask below it (what the index read's address arithmetic yields), and the mask words
    /// and nonzero values loaded so far.
    weight_rank: Vec<u32>,
    masks_loaded: u32,
    nonzeros: u32,
    filter_entries: u32,
    /// Whether this position's index has been read, its nonzero pairs from that read (a bit
    /// per MAC: the next-nonzero pointers walk these), the pairs it has still to issue, and
    /// the `(s, c)` whose ifmap value is held.
    indexed: bool,
    pairs: Vec<u64>,
    nz_left: u32,
    held_group: u32,
    held_ifmap: i16,
}

impl Skipping {
    fn new(sizes: &PeSizes) -> Self {
        Skipping {
            weight_zero: vec![0; (sizes.weight_slots() as usize).div_ceil(64)],
            weight_rank: if sizes.mask_bits.is_some() {
                vec![0; sizes.weight_slots() as usize]
            } else {
                Vec::new()
            },
            masks_loaded: 0,
            nonzeros: 0,
            filter_entries: sizes.filter_entries,
            indexed: false,
            pairs: vec![0; (sizes.weight_slots() as usize).div_ceil(64)],
            nz_left: 0,
            held_group: u32::MAX,
            held_ifmap: 0,
        }
    }

    /// The ifmap-spad address of MAC `op`'s `(s, c)` in the current position's window.
    #[inline]
    fn ifmap_addr(dp: &Datapath, prim: &Primitive, op: u32) -> u32 {
        let g = op / prim.p;
        let (s, c) = (g / prim.q, g % prim.q);
        dp.ifmap.col_of(dp.window_start(prim) + s as u64) * prim.q + c
    }

    /// The position's index read: which of its MACs have a nonzero ifmap value and a nonzero
    /// weight (into `pairs`), and how many `(s, c)` have a nonzero ifmap value. The window's
    /// entries do not change while the position has MACs left to issue on them (the write
    /// port takes only entries released), so the pairs read here are those still to come.
    fn read_index(&mut self, dp: &Datapath, prim: &Primitive) -> (u32, u32) {
        let words = (dp.ops as usize).div_ceil(64);
        let pairs = &mut self.pairs[..words];
        pairs.fill(0);
        let (p, start) = (prim.p as usize, dp.window_start(prim));
        let mut visited = 0;
        for s in 0..prim.s {
            let col = dp.ifmap.col_of(start + s as u64);
            for c in 0..prim.q {
                if dp.ifmap.is_zero(col * prim.q + c) {
                    continue;
                }
                visited += 1;
                // The group's `p` MACs, one bit each.
                let mut lo = ((s * prim.q + c) as usize) * p;
                let end = lo + p;
                while lo < end {
                    let n = (end - lo).min(64 - lo % 64);
                    let ones = if n == 64 {
                        !0
                    } else {
                        ((1u64 << n) - 1) << (lo % 64)
                    };
                    pairs[lo / 64] |= ones;
                    lo += n;
                }
            }
        }
        let mut nz = 0;
        for (b, &z) in pairs.iter_mut().zip(&self.weight_zero) {
            *b &= !z;
            nz += b.count_ones();
        }
        (nz, visited)
    }

    /// The first MAC at or after `from` with both operands nonzero (`ops` when none), from the
    /// position's index.
    #[inline]
    fn next_nonzero(&self, dp: &Datapath, from: u32) -> u32 {
        if from >= dp.ops {
            return dp.ops;
        }
        let mut i = from as usize / 64;
        let mut w = self.pairs[i] & (!0u64 << (from % 64));
        loop {
            if w != 0 {
                // `pairs` has no bit at or past `ops`.
                return (i * 64) as u32 + w.trailing_zeros();
            }
            i += 1;
            if i * 64 >= dp.ops as usize {
                return dp.ops;
            }
            w = self.pairs[i];
        }
    }

    /// After an operation: the position ends once its last nonzero pair is issued.
    #[inline]
    fn end_position(&mut self, dp: &mut Datapath) {
        if dp.end_position_after_last_op() {
            self.indexed = false;
        }
    }

    /// A compressed row: its `ceil(p*q*S / 16)` mask words into the weight zero buffer (an
    /// index write each), then its nonzero values packed from entry 0 (a spad write each), one
    /// word a cycle. A corrupt row (mask bits past the row, more nonzeros than entries, a zero
    /// value) is a fault naming the word.
    fn load_compressed(&mut self, dp: &mut Datapath, w: i16) -> Result<(), DecodeError> {
        let masks = dp.ops.div_ceil(16);
        let nonzeros = check_compressed_word(
            (dp.ops, self.filter_entries),
            (self.masks_loaded, self.nonzeros, dp.filter.loaded),
            w,
        )?;
        if self.masks_loaded < masks {
            let k = self.masks_loaded;
            // The buffer holds zero bits: the mask's complement, within the row.
            let valid = (dp.ops - 16 * k).min(16);
            let zeros = !(w as u16) as u64 & ((1u64 << valid) - 1);
            let (word, shift) = ((16 * k / 64) as usize, 16 * k % 64);
            self.weight_zero[word] =
                (self.weight_zero[word] & !(0xFFFFu64 << shift)) | (zeros << shift);
            for b in 0..valid {
                let i = (16 * k + b) as usize;
                self.weight_rank[i] = self.nonzeros;
                self.nonzeros += ((w as u16) >> b) as u32 & 1;
            }
            debug_assert_eq!(self.nonzeros, nonzeros);
            self.masks_loaded += 1;
            dp.counters.index_writes += 1;
            if self.masks_loaded == masks && self.nonzeros == 0 {
                dp.state = PeState::Compute;
            }
            return Ok(());
        }
        dp.store_weight(w);
        if dp.filter.loaded == self.nonzeros {
            dp.state = PeState::Compute;
        }
        Ok(())
    }
}

/// The decoder's checks of compressed word `w` of a row of `ops` weights on a spad of
/// `entries`, after `masks_loaded` mask words promising `nonzeros` values and `values` values:
/// the values promised after it, or the fault it raises (a mask bit past the row, more
/// nonzeros than entries, a zero where a value is promised). One definition for the load and
/// for the load ahead, which must stop where the load faults.
fn check_compressed_word(
    (ops, entries): (u32, u32),
    (masks_loaded, nonzeros, values): (u32, u32, u32),
    w: i16,
) -> Result<u32, DecodeError> {
    let masks = ops.div_ceil(16);
    if masks_loaded < masks {
        let k = masks_loaded;
        zmask::check_mask_word(k as usize, w as u16, ops as usize)?;
        // (No bit past the row: checked.)
        let after = nonzeros + (w as u16).count_ones();
        if after > entries {
            return Err(DecodeError::TooManyNonzeros {
                word: k as usize,
                nnz: after as u64,
                entries: entries as u64,
            });
        }
        return Ok(after);
    }
    if w == 0 {
        return Err(DecodeError::ZeroValue {
            word: (masks + values) as usize,
        });
    }
    Ok(nonzeros)
}

impl Skipping {
    /// See [`Mode::words_left`]: the mask words not loaded yet, else the values.
    fn compressed_words_left(&self, dp: &Datapath) -> u32 {
        let masks = dp.ops.div_ceil(16);
        if self.masks_loaded < masks {
            masks - self.masks_loaded
        } else {
            self.nonzeros - dp.filter.loaded
        }
    }

    /// See [`Mode::loadable`]: the words before the first that [`Skipping::load_compressed`]
    /// would refuse ([`check_compressed_word`] on a copy of its counts).
    fn compressed_loadable(&self, dp: &Datapath, words: &[i16]) -> usize {
        let masks = dp.ops.div_ceil(16);
        let (mut k, mut nonzeros, mut values) =
            (self.masks_loaded, self.nonzeros, dp.filter.loaded);
        for (i, &w) in words.iter().enumerate() {
            match check_compressed_word((dp.ops, self.filter_entries), (k, nonzeros, values), w) {
                Err(_) => return i,
                Ok(after) => nonzeros = after,
            }
            if k < masks {
                k += 1;
            } else {
                values += 1;
            }
        }
        words.len()
    }
}

impl Engine for Skipping {
    fn configure(&mut self, _prim: &Primitive) {
        self.indexed = false;
        self.nz_left = 0;
        self.held_group = u32::MAX;
        self.masks_loaded = 0;
        self.nonzeros = 0;
    }

    fn load(
        &mut self,
        dp: &mut Datapath,
        w: i16,
        prim: &Primitive,
        pe: &str,
    ) -> Result<(), String> {
        if prim.compressed {
            return self
                .load_compressed(dp, w)
                .map_err(|e| format!("{pe}: {e}"));
        }
        // The weight zero buffer, which only skipping reads.
        let a = dp.filter.loaded;
        let (word, bit) = (a as usize / 64, a % 64);
        if w == 0 {
            self.weight_zero[word] |= 1 << bit;
        } else {
            self.weight_zero[word] &= !(1 << bit);
        }
        dp.write_weight(w, prim);
        Ok(())
    }

    /// The index cycle of a position, or the next nonzero pair.
    fn issue(&mut self, dp: &mut Datapath, prim: &Primitive) -> bool {
        if !self.indexed {
            if !dp.window_stored(prim) {
                dp.counters.stall_ifmap += 1;
                return false;
            }
            // The window's index: its zero bits (and the weights'), one read, one cycle.
            self.indexed = true;
            dp.counters.index_cycles += 1;
            dp.counters.index_reads += 1;
            let (nz, visited) = self.read_index(dp, prim);
            dp.counters.macs_skipped += (dp.ops - nz) as u64;
            // Every (s, c) whose ifmap value is nonzero is visited: its value read once, its
            // next-nonzero pointer read once (whether or not its weights are).
            dp.counters.ifmap_spad_reads += visited as u64;
            dp.counters.index_reads += visited as u64;
            self.nz_left = nz;
            self.held_group = u32::MAX;
            dp.op = self.next_nonzero(dp, 0);
            self.end_position(dp);
            return true;
        }
        let op = dp.op;
        let g = op / prim.p;
        if g != self.held_group {
            // A newly visited (s, c): its value from the ifmap spad (counted with the index).
            let a = Self::ifmap_addr(dp, prim, op);
            self.held_group = g;
            self.held_ifmap = dp.ifmap.entries[a as usize];
            dp.probe.strobes |= strobe::IFMAP_RD;
            dp.probe.held.ifmap_rd = (a, self.held_ifmap);
        }
        // Compressed weights are packed: weight `op` is at its rank among the nonzero ones.
        let fa = if prim.compressed {
            self.weight_rank[op as usize]
        } else {
            op
        };
        let weight = dp.filter.entries[fa as usize];
        dp.counters.filter_spad_reads += 1;
        dp.probe.strobes |= strobe::FILTER_RD;
        dp.probe.held.filter_rd = (fa, weight);
        dp.pipe.rd = Some(RdReg {
            f: op % prim.p,
            gated: false,
            weight,
            ifmap: self.held_ifmap,
        });
        self.nz_left -= 1;
        dp.op = self.next_nonzero(dp, op + 1);
        self.end_position(dp);
        true
    }

    fn burst_edges(&self, dp: &Datapath, _prim: &Primitive) -> Option<u64> {
        (dp.state == PeState::Compute && self.indexed).then_some(self.nz_left as u64 + 2)
    }

    /// The position's remaining nonzero pairs, walked on its index, each through MUL and ADD:
    /// what [`Skipping::issue`] and the pipeline do to the spads, the psums and the counters
    /// pair by pair, with the registers and probes left as the last pair leaves them.
    fn run_position(&mut self, dp: &mut Datapath, prim: &Primitive) {
        if dp.state != PeState::Compute || !self.indexed {
            // Not a position under way: the edge-by-edge operations (the default).
            while dp.state == PeState::Compute {
                self.issue(dp, prim);
                dp.complete_rd(prim);
            }
            return;
        }
        let p = prim.p;
        let mut op = dp.op;
        let mut n = 0u64;
        let mut last = None;
        while op < dp.ops {
            let g = op / p;
            if g != self.held_group {
                let a = Self::ifmap_addr(dp, prim, op);
                self.held_group = g;
                self.held_ifmap = dp.ifmap.entries[a as usize];
                dp.probe.held.ifmap_rd = (a, self.held_ifmap);
            }
            let fa = if prim.compressed {
                self.weight_rank[op as usize]
            } else {
                op
            };
            let weight = dp.filter.entries[fa as usize];
            let f = op % p;
            let ov = &mut dp.counters.overflows;
            let product = mac::product(weight, self.held_ifmap, prim.mac, ov);
            let old = dp.psum[f as usize];
            let sum = mac::add(old, product, prim.mac, ov);
            dp.psum[f as usize] = sum;
            last = Some((fa, weight, f, old, sum, product));
            n += 1;
            op = self.next_nonzero(dp, op + 1);
        }
        if let Some((fa, weight, f, old, sum, product)) = last {
            let pipe = &mut dp.pipe;
            (pipe.mac_a, pipe.mac_b, pipe.mac_product) = (weight, self.held_ifmap, product);
            let h = &mut dp.probe.held;
            h.filter_rd = (fa, weight);
            (h.psum_rd, h.psum_wr, h.sum) = ((f, old), (f, sum), sum);
            dp.probe.strobes |= strobe::IFMAP_RD
                | strobe::FILTER_RD
                | strobe::MAC_VALID
                | strobe::PSUM_RD
                | strobe::PSUM_WR;
        }
        let c = &mut dp.counters;
        c.filter_spad_reads += n;
        c.macs += n;
        c.psum_spad_reads += n;
        c.psum_spad_writes += n;
        self.nz_left -= n as u32;
        dp.op = op;
        self.end_position(dp);
    }

    /// One nonzero pair an edge, in order: a group is released at the edge after which the
    /// next pair lies past it (or none is left).
    fn release_edges(
        &self,
        dp: &Datapath,
        prim: &Primitive,
        first: u64,
        from: u64,
        out: &mut [u64],
    ) {
        let p = prim.p as u64;
        let (mut op, mut edge, mut g) = (dp.op, first, 0usize);
        while g < out.len() && op < dp.ops {
            let after = self.next_nonzero(dp, op + 1) as u64;
            while g < out.len() && (from + g as u64 + 1) * p <= after {
                out[g] = edge;
                g += 1;
            }
            op = after as u32;
            edge += 1;
        }
        // (Every group is released by the position's last pair: `after` is then `ops`.)
        for e in &mut out[g..] {
            *e = edge.saturating_sub(1);
        }
    }
}
