//! The PE's three scratchpads and what addresses them: the filter spad and its load progress,
//! the ifmap spad as a circular window of columns with its zero buffer and write port, and the
//! psum spad.

use crate::Primitive;

/// The filter spad: `p*q*S` weights in issue order `(s*q + c)*p + f` (with compressed weights,
/// the row's nonzero values packed from entry 0), and how many a load has written so far.
pub(crate) struct FilterSpad {
    pub entries: Vec<i16>,
    pub loaded: u32,
}

impl FilterSpad {
    pub fn new(entries: u32) -> Self {
        FilterSpad {
            entries: vec![0; entries as usize],
            loaded: 0,
        }
    }
}

/// The ifmap spad: a circular window of `cols = floor(entries / q)` columns of `q` channel
/// values, entry `col*q + c`; its zero buffer (one bit per entry, set when a zero is written);
/// and its write port's progress through the primitive's ifmap stream.
pub(crate) struct IfmapSpad {
    pub entries: Vec<i16>,
    /// One bit per entry.
    pub zero: u64,
    /// Columns the spad holds for the primitive.
    pub cols: u32,
    /// The column and channel the next arriving value is written to.
    wr_col: u32,
    wr_c: u32,
    /// Values stored so far, over all rows (the global column is `stored / q`), and in the
    /// whole program.
    pub stored: u64,
    pub total: u64,
}

impl IfmapSpad {
    pub fn new(entries: u32) -> Self {
        IfmapSpad {
            entries: vec![0; entries as usize],
            zero: 0,
            cols: 1,
            wr_col: 0,
            wr_c: 0,
            stored: 0,
            total: 0,
        }
    }

    pub fn configure(&mut self, prim: &Primitive) {
        self.cols = self.entries.len() as u32 / prim.q;
        self.wr_col = 0;
        self.wr_c = 0;
        self.stored = 0;
        self.total = prim.rows as u64 * prim.w() as u64 * prim.q as u64;
    }

    /// Writes an arriving value into the next free entry; returns the entry.
    #[inline]
    pub fn write(&mut self, v: i16, q: u32) -> u32 {
        let a = self.wr_col * q + self.wr_c;
        self.wr_c += 1;
        if self.wr_c == q {
            self.wr_c = 0;
            self.wr_col += 1;
            if self.wr_col == self.cols {
                self.wr_col = 0;
            }
        }
        self.entries[a as usize] = v;
        if v == 0 {
            self.zero |= 1 << a;
        } else {
            self.zero &= !(1 << a);
        }
        self.stored += 1;
        a
    }

    /// Whether entry `a` holds a zero.
    #[inline]
    pub fn is_zero(&self, a: u32) -> bool {
        (self.zero >> a) & 1 == 1
    }

    /// The spad column of global column `col`.
    #[inline]
    pub fn col_of(&self, col: u64) -> u32 {
        (col % self.cols as u64) as u32
    }

    /// Whether the write port has no free entry: every value stored, or the free entries filled.
    /// An entry is free while its column is inside the spad's window from the current
    /// position's first column, `start`, and so are the first `released` entries (in write
    /// order) of the columns the position is done with (see `Datapath::released`).
    #[inline]
    pub fn port_blocked(&self, start: u64, q: u32, released: u64) -> bool {
        self.stored == self.total || self.stored >= self.port_limit(start, q, released)
    }

    /// The values (counted over the primitive's stream) the write port may have stored with
    /// the position's first column `start` and `released` entries released: value `j` has a
    /// free entry while `j` is below it (see [`IfmapSpad::port_blocked`]).
    #[inline]
    pub fn port_limit(&self, start: u64, q: u32, released: u64) -> u64 {
        (start + self.cols as u64) * q as u64 + released
    }

    /// Whether the whole ifmap stream of the primitive is stored.
    #[inline]
    pub fn all_stored(&self) -> bool {
        self.stored == self.total
    }

    /// Whether the `S` columns of the window from global column `start` are stored.
    #[inline]
    pub fn holds_window(&self, start: u64, prim: &Primitive) -> bool {
        self.stored >= (start + prim.s as u64) * prim.q as u64
    }
}
