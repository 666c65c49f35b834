//! Where a mapping's PEs sit on the array, and the GIN IDs that deliver each PE its data.
//!
//! # Placement (as in `rowsim_mapper`'s docs)
//! A logical PE is `(tt, rr, i, j)`: filter group `tt < t`, channel group `rr < r`, filter row
//! `i < R`, output row `j < e` of the strip. Columns of a set wider than the array are split
//! into segments of `cols` (`seg = j / cols`, `jj = j % cols`). The `r` sets of a filter group
//! stack into a block of `R*r` rows; block `k = tt * segments + seg` sits at block row
//! `k % down`, block column `k / down`. In a block, PE `(rr, i)` is on block row `rr*R + i`, so
//! a chain runs from block row `R*r - 1` (its bottom, which takes psums from the GLB when a pass
//! continues an accumulation) up to block row 0 (its top, which sends psums to the GLB); each PE
//! passes its psums to the PE above it over the local link.
//!
//! # GIN IDs
//! - **Filters**: PE `(tt, rr, i, *)` needs filter row `i` of filter group `tt` and channel group
//!   `rr`, the same for every `j`. Each X-bus gets row ID `rr*R + i` (its place in its block),
//!   each PE column ID `tt`: the tag `(rr*R + i, tt)` reaches every PE of that logical row, across
//!   segments and blocks, in one beat.
//! - **Ifmaps**: PE `(*, rr, i, j)` needs ifmap row `y = j*U + i` of channel group `rr`, the same
//!   for every `tt` and in every segment. Write `y = U*(y div U) + (y mod U)`: since
//!   `y mod U = i mod U` and `y div U = j + i div U`, X-buses get row ID
//!   `rr * min(U, R) + i mod U` (every PE of a bus has the same `rr` and `i`) and PEs column ID
//!   `j + i div U` (with `j` counted across segments). The tag `(rr * min(U, R) + y mod U,
//!   y div U)` then reaches every PE that needs the row, in every filter group and segment, in
//!   one beat ([`IfmapScheme::Diagonal`]), whenever `r * min(U, R)` row IDs and
//!   `e - 1 + (R-1) div U` column IDs fit their fields (AlexNet CONV1, U = 4 and 35 diagonals:
//!   row IDs 0..4, column IDs 0..9). Otherwise each X-bus gets its own row ID and each PE
//!   column ID `jj`, and a row goes out as one beat per bus it touches
//!   ([`IfmapScheme::PerBus`]); the words delivered, and so the NoC accesses, are the same.
//! - **Psums** (into chain bottoms): each bottom needs its own stream. Bottom X-buses get row ID
//!   = their block row index, PEs column ID = their array column; other buses are not wired to
//!   the psum GIN.

use std::collections::BTreeMap;

use rowsim_config::HwConfig;
use rowsim_mapper::{Mapping, Placement, Problem};
use rowsim_noc::GinIds;

/// A PE of the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogicalPe {
    pub tt: u32,
    pub rr: u32,
    pub i: u32,
    pub j: u32,
}

/// A PE of the array: X-bus `row`, position `col` on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhysPe {
    pub row: u32,
    pub col: u32,
}

/// How ifmap rows are addressed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfmapScheme {
    Diagonal,
    PerBus,
}

/// A mapping that cannot be placed or addressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mapping {mapping}: {why}")]
pub struct PlanError {
    pub mapping: Mapping,
    pub why: String,
}

/// A mapping placed on the array, with the GINs' IDs.
#[derive(Clone, Debug)]
pub struct ArrayPlan {
    pub mapping: Mapping,
    pub placement: Placement,
    pub r: u32,
    pub u: u32,
    pub rows: u32,
    pub cols: u32,
    pub ifmap_scheme: IfmapScheme,
    pub filter_ids: GinIds,
    pub ifmap_ids: GinIds,
    pub psum_ids: GinIds,
    /// Every logical PE of a full strip and where it sits.
    pub pes: BTreeMap<LogicalPe, PhysPe>,
}

/// The ID given to buses and PEs a network does not use (they have no outputs on it, so it
/// never routes).
fn unused(bits: u32) -> u16 {
    ((1u32 << bits) - 1) as u16
}

impl ArrayPlan {
    pub fn new(pb: &Problem, mapping: &Mapping, hw: &HwConfig) -> Result<Self, PlanError> {
        Self::with_rows(pb, mapping, hw, None)
    }

    /// [`ArrayPlan::new`], checking a machine with compressed weights against the layer's
    /// filter rows (see [`Mapping::check_rows`]).
    pub fn with_rows(
        pb: &Problem,
        mapping: &Mapping,
        hw: &HwConfig,
        rows: Option<&rowsim_mapper::FilterRows>,
    ) -> Result<Self, PlanError> {
        let err = |why: String| PlanError {
            mapping: *mapping,
            why,
        };
        let placement = mapping
            .check_rows(pb, hw, rows)
            .map_err(|e| err(e.to_string()))?;
        let (rows, cols) = (hw.array.rows, hw.array.cols);
        let Mapping { e, r, t, .. } = *mapping;
        let big_r = pb.r;
        let place = |l: LogicalPe| {
            let (seg, jj) = (l.j / cols, l.j % cols);
            let k = l.tt * placement.segments + seg;
            let (by, bx) = (k % placement.down, k / placement.down);
            PhysPe {
                row: by * placement.block_rows + l.rr * big_r + l.i,
                col: bx * placement.block_cols + jj,
            }
        };
        let mut pes = BTreeMap::new();
        for tt in 0..t {
            for rr in 0..r {
                for i in 0..big_r {
                    for j in 0..e {
                        let l = LogicalPe { tt, rr, i, j };
                        pes.insert(l, place(l));
                    }
                }
            }
        }
        let n = &hw.noc;
        let (ru, cu) = (rows as usize, cols as usize);
        // Filters.
        let mut filter = GinIds {
            row_ids: vec![unused(n.row_id_bits); ru],
            col_ids: vec![vec![unused(n.filter_gin.col_id_bits); cu]; ru],
        };
        // Ifmaps.
        let row_phases = pb.u.min(big_r);
        let diagonal = rowsim_mapper::ifmap_diagonal_ids_fit(pb, mapping, hw);
        let scheme = if diagonal {
            IfmapScheme::Diagonal
        } else {
            IfmapScheme::PerBus
        };
        let mut ifmap = GinIds {
            row_ids: vec![unused(n.row_id_bits); ru],
            col_ids: vec![vec![unused(n.ifmap_gin.col_id_bits); cu]; ru],
        };
        let mut psum = GinIds {
            row_ids: vec![unused(n.row_id_bits); ru],
            col_ids: vec![vec![unused(n.psum_gin.col_id_bits); cu]; ru],
        };
        // PEs outside the plan get no GIN outputs, so their IDs never route; every value of
        // a field is usable.
        let fits = |v: u32, bits: u32| (v as u64) < (1u64 << bits);
        for (l, p) in &pes {
            let (b, c) = (p.row as usize, p.col as usize);
            let row_in_block = l.rr * big_r + l.i;
            if !fits(row_in_block, n.row_id_bits) || !fits(l.tt, n.filter_gin.col_id_bits) {
                return Err(err(format!(
                    "filter tags ({row_in_block}, {}) do not fit {} row and {} column ID bits",
                    l.tt, n.row_id_bits, n.filter_gin.col_id_bits
                )));
            }
            filter.row_ids[b] = row_in_block as u16;
            filter.col_ids[b][c] = l.tt as u16;
            let jj = l.j % cols;
            match scheme {
                IfmapScheme::Diagonal => {
                    ifmap.row_ids[b] = (l.rr * row_phases + l.i % pb.u) as u16;
                    ifmap.col_ids[b][c] = (l.j + l.i / pb.u) as u16;
                }
                IfmapScheme::PerBus => {
                    if !fits(b as u32, n.row_id_bits) {
                        return Err(err(format!(
                            "{rows} X-buses need more than {} row ID bits",
                            n.row_id_bits
                        )));
                    }
                    ifmap.row_ids[b] = b as u16;
                    ifmap.col_ids[b][c] = jj as u16;
                }
            }
            if row_in_block == placement.block_rows - 1 {
                let by = p.row / placement.block_rows;
                if !fits(by, n.row_id_bits) || !fits(p.col, n.psum_gin.col_id_bits) {
                    return Err(err(format!(
                        "psum tags ({by}, {}) do not fit their ID bits",
                        p.col
                    )));
                }
                psum.row_ids[b] = by as u16;
                psum.col_ids[b][c] = p.col as u16;
            }
        }
        Ok(ArrayPlan {
            mapping: *mapping,
            placement,
            r: big_r,
            u: pb.u,
            rows,
            cols,
            ifmap_scheme: scheme,
            filter_ids: filter,
            ifmap_ids: ifmap,
            psum_ids: psum,
            pes,
        })
    }

    /// Where a logical PE sits.
    pub fn at(&self, l: LogicalPe) -> Option<PhysPe> {
        self.pes.get(&l).copied()
    }

    /// The tag of a filter row.
    pub fn filter_tag(&self, tt: u32, rr: u32, i: u32) -> (u16, u16) {
        ((rr * self.r + i) as u16, tt as u16)
    }

    /// The tags whose beats together reach every PE that needs ifmap row `y` (strip-local) of
    /// channel group `rr`, for strips of `e_cur` output rows.
    pub fn ifmap_tags(&self, rr: u32, y: u32, e_cur: u32) -> Vec<(u16, u16)> {
        let mut tags: Vec<(u16, u16)> = Vec::new();
        for (l, p) in &self.pes {
            if l.rr != rr || l.j >= e_cur || l.j * self.u + l.i != y {
                continue;
            }
            let tag = (
                self.ifmap_ids.row_ids[p.row as usize],
                self.ifmap_ids.col_ids[p.row as usize][p.col as usize],
            );
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags
    }

    /// The tag of a chain bottom's psum stream.
    pub fn psum_tag(&self, bottom: PhysPe) -> (u16, u16) {
        (
            self.psum_ids.row_ids[bottom.row as usize],
            self.psum_ids.col_ids[bottom.row as usize][bottom.col as usize],
        )
    }

    /// Whether a PE is the bottom of its chain (takes psums from the GLB) or the top (sends them
    /// to the GLB).
    pub fn is_bottom(&self, l: LogicalPe) -> bool {
        l.rr * self.r + l.i == self.placement.block_rows - 1
    }

    pub fn is_top(&self, l: LogicalPe) -> bool {
        l.rr == 0 && l.i == 0
    }

    /// The PE a psum goes to from `p` over the local link (the one above), unless `p` is a top.
    pub fn above(&self, l: LogicalPe) -> Option<LogicalPe> {
        if self.is_top(l) {
            return None;
        }
        Some(if l.i == 0 {
            LogicalPe {
                rr: l.rr - 1,
                i: self.r - 1,
                ..l
            }
        } else {
            LogicalPe { i: l.i - 1, ..l }
        })
    }
}
