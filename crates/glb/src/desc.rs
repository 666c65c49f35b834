//! Job descriptors: what the top-level controller tells a sequencer, in a few words, and the
//! address generators with which the sequencer expands them itself, one item at a time as it
//! issues them (as the chip's GLB controller walks its loop counters), so that no job is a list
//! of addresses.
//!
//! A descriptor names a data type's region of the GLB ([`Region`]) and word addresses within it;
//! the generator turns each word address into (bank, entry, lane) with the layer's
//! [`GlbLayout`]. The shapes are those of a row-stationary pass's streams, said in the GLB's
//! terms (rows, columns, runs, strides), with nothing of the mapping in them:
//! - [`ReadDesc::RoundRobin`]: rows of words a bus width at a time, round robin (filters);
//! - [`ReadDesc::Columns`]: for each image and column, one word of each of several row streams,
//!   padding made as zeros (ifmaps);
//! - [`ReadDesc::Runs`]: for each position, a run of consecutive words of each of several
//!   streams, an entry's lanes a chunk (incoming psums);
//! - [`ReadDesc::Strided`]: single words at the points of an affine loop nest (a readout);
//! - [`Words`]: consecutive words, what a writer fills (a band, a filter row, a PE's psums).
//!
//! Each descriptor says how many items it makes ([`ReadDesc::items`]) and is checked against
//! its region before it is sent ([`ReadDesc::check`]): its largest address is computed in
//! closed form, so a descriptor that would reach outside its region is refused whole, before any
//! of it runs.

use std::collections::VecDeque;

use crate::sequencer::{GlbAddr, ReadItem, Src, Tags};
use crate::{DataType, GlbError, GlbLayout};

/// A data type's region of the GLB in a layer's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub layout: GlbLayout,
    pub dtype: DataType,
}

impl Region {
    pub fn new(layout: GlbLayout, dtype: DataType) -> Self {
        Region { layout, dtype }
    }

    /// Where word `addr` of the region lies.
    pub fn addr(&self, addr: u64) -> Result<GlbAddr, GlbError> {
        GlbAddr::of(&self.layout, self.dtype, addr)
    }

    /// A chunk of `len` words from word `addr`, read from one entry (the chunk must not cross
    /// it: the caller splits at entry boundaries where the stream can).
    fn chunk(&self, addr: u64, len: u64) -> Result<Src, GlbError> {
        let a = self.addr(addr)?;
        Ok(Src::Glb {
            bank: a.bank,
            entry: a.entry,
            lane: a.lane,
            len: len as u8,
            dtype: self.dtype,
        })
    }

    fn lanes(&self) -> u64 {
        self.layout.lanes.max(1) as u64
    }

    /// Checks that word `last` (a descriptor's largest) lies in the region.
    fn holds(&self, last: Option<u64>) -> Result<(), GlbError> {
        match last {
            Some(a) => self.addr(a).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Words `base..base + count` of a region, in order: what a writer fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Words {
    pub region: Region,
    pub base: u64,
    pub count: u64,
}

impl Words {
    /// Checks the last word against the region.
    pub fn check(&self) -> Result<(), GlbError> {
        // Saturating: an end past 64 bits is past every region too.
        let last = self
            .count
            .checked_sub(1)
            .map(|k| self.base.saturating_add(k));
        self.region.holds(last)
    }
}

/// A queue of [`Words`] as a writer walks it, word by word: each word's address is located
/// ([`Region::addr`]) where it starts an entry or a span, and is the next lane of the word
/// before's otherwise (consecutive words fill an entry's lanes: the same address `locate`
/// gives, without its divisions and checks).
#[derive(Clone, Debug, Default)]
pub(crate) struct WordQueue {
    q: VecDeque<Words>,
    /// The address of the front span's next word, when known: it lies in the entry of the word
    /// before, or was located by a look ahead ([`WordQueue::peek`]).
    next: Option<GlbAddr>,
}

impl WordQueue {
    pub(crate) fn push_back(&mut self, w: Words) {
        self.q.push_back(w);
    }

    /// The next word's address, without consuming it (located once, and kept for
    /// [`WordQueue::next_word`]); `None` once the spans are used up.
    pub(crate) fn peek(&mut self) -> Option<Result<GlbAddr, GlbError>> {
        if let Some(a) = self.next {
            return Some(Ok(a));
        }
        loop {
            let w = self.q.front()?;
            if w.count == 0 {
                self.q.pop_front();
                continue;
            }
            return Some(w.region.addr(w.base).inspect(|&a| self.next = Some(a)));
        }
    }

    /// How many of the next words, at most `max`, lie in the entry of the next one (that
    /// entry's bank and index): those of its span from its lane on, and where the span ends
    /// within the entry, those of the spans after it that lie there too. What taking the next
    /// `max` addresses while they share the first's entry counts, without taking them. At
    /// least 1 while a word is left (0 when none is, or its address is refused: see
    /// [`WordQueue::peek`]).
    pub(crate) fn same_entry(&mut self, max: usize) -> usize {
        let Some(Ok(a)) = self.peek() else {
            return 0;
        };
        let mut n = 0u64;
        let mut lane = u64::from(a.lane);
        let max = max as u64;
        for (k, w) in self.q.iter().enumerate() {
            if w.count == 0 {
                continue;
            }
            if k > 0 {
                match w.region.addr(w.base) {
                    Ok(b) if b.bank == a.bank && b.entry == a.entry => lane = u64::from(b.lane),
                    _ => break,
                }
            }
            let lanes = u64::from(w.region.layout.lanes);
            let here = lanes.saturating_sub(lane).min(w.count);
            n += here.min(max - n);
            if n == max || here < w.count {
                break;
            }
        }
        n as usize
    }

    /// The next word's address, consuming it; `None` once the spans are used up.
    pub(crate) fn next_word(&mut self) -> Option<Result<GlbAddr, GlbError>> {
        loop {
            let w = self.q.front_mut()?;
            if w.count == 0 {
                self.q.pop_front();
                self.next = None;
                continue;
            }
            let a = match self.next.take() {
                Some(a) => Ok(a),
                None => w.region.addr(w.base),
            };
            w.base += 1;
            w.count -= 1;
            if w.count == 0 {
                self.q.pop_front();
            } else if let Ok(a) = &a {
                if u32::from(a.lane) + 1 < w.region.layout.lanes {
                    self.next = Some(GlbAddr {
                        lane: a.lane.wrapping_add(1),
                        ..*a
                    });
                }
            }
            return Some(a);
        }
    }
}

impl Extend<Words> for WordQueue {
    fn extend<I: IntoIterator<Item = Words>>(&mut self, iter: I) {
        self.q.extend(iter);
    }
}

/// A row of a [`ReadDesc::RoundRobin`]: `len` words from `base`, each chunk a beat with `tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaggedRow {
    pub base: u64,
    pub len: u64,
    pub tag: (u16, u16),
}

/// A row stream of a [`ReadDesc::Columns`]: at column `col`, the word of padded column
/// `x = col * x_mul + x_off` of its row, which starts at word `row` of image 0 (`None`: a
/// padding row, all zeros); columns `x < pad` and `x >= pad + width` are padding (zeros, no GLB
/// read). Every word goes as one beat to each of `tags`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnStream {
    pub row: Option<u64>,
    pub x_mul: u32,
    pub x_off: u32,
    pub tags: Tags,
}

/// A read job's items, as the sequencer expands them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadDesc {
    /// Items listed one by one (tests, and streams of no regular shape).
    List(Vec<ReadItem>),
    /// Rows of words, `width` a chunk, round robin: chunk `b` of every row that still has one
    /// (a row that has ended drops out of the round), then chunk `b + 1`. A chunk is read from
    /// the entry of its first word.
    RoundRobin {
        region: Region,
        rows: Vec<TaggedRow>,
        width: u64,
    },
    /// For each of `images` (image `i`'s rows `i * img_stride` words after image 0's) and each
    /// column `0..cols`: one word of each stream in turn, a chunk of one word.
    Columns {
        region: Region,
        images: u32,
        img_stride: u64,
        cols: u32,
        /// Padding columns on the left, and real columns after them.
        pad: u32,
        width: u32,
        streams: Vec<ColumnStream>,
    },
    /// For each position `0..positions`: words `base + pos * run ..` `+ run` of each stream in
    /// turn, an entry's lanes a chunk (split where an entry ends), each chunk a beat with the
    /// stream's tag.
    Runs {
        region: Region,
        positions: u64,
        run: u64,
        streams: Vec<(u64, (u16, u16))>,
    },
    /// One word at each point of an affine loop nest, in value mode (no tags): `dims` are
    /// `(count, stride)` from the outermost loop in; the word of point `(i0, i1, ..)` is
    /// `base + i0 * stride0 + i1 * stride1 + ..`.
    Strided {
        region: Region,
        base: u64,
        dims: Vec<(u64, u64)>,
    },
}

fn too_big(what: &str) -> GlbError {
    GlbError(format!(
        "glb: a {what} descriptor's addresses overflow 64 bits"
    ))
}

impl ReadDesc {
    /// How many items (chunks) it makes.
    pub fn items(&self) -> u64 {
        match self {
            ReadDesc::List(v) => v.len() as u64,
            ReadDesc::RoundRobin { rows, width, .. } => {
                rows.iter().map(|r| r.len.div_ceil((*width).max(1))).sum()
            }
            ReadDesc::Columns {
                images,
                cols,
                streams,
                ..
            } => *images as u64 * *cols as u64 * streams.len() as u64,
            ReadDesc::Runs {
                region,
                positions,
                run,
                streams,
            } => {
                if *run == 0 {
                    return 0;
                }
                let lanes = region.lanes();
                let mut n = 0u64;
                for pos in 0..*positions {
                    for &(base, _) in streams {
                        let first = base.saturating_add(pos.saturating_mul(*run));
                        let last = first.saturating_add(run - 1);
                        n += last / lanes - first / lanes + 1;
                    }
                }
                n
            }
            ReadDesc::Strided { dims, .. } => dims.iter().map(|&(c, _)| c).product(),
        }
    }

    /// Checks, before the job is sent, that every address it makes lies in its region (its
    /// largest, in closed form) and that its chunks fit an entry.
    pub fn check(&self) -> Result<(), GlbError> {
        match self {
            ReadDesc::List(_) => Ok(()),
            ReadDesc::RoundRobin {
                region,
                rows,
                width,
            } => {
                if *width == 0 || *width > region.lanes() {
                    return Err(GlbError(format!(
                        "glb: a round-robin read of {width} words a chunk from entries of {} words",
                        region.lanes()
                    )));
                }
                let mut last = None;
                for r in rows.iter().filter(|r| r.len > 0) {
                    let end = r
                        .base
                        .checked_add(r.len - 1)
                        .ok_or(too_big("round-robin"))?;
                    last = last.max(Some(end));
                }
                region.holds(last)
            }
            ReadDesc::Columns {
                region,
                images,
                img_stride,
                cols,
                pad,
                width,
                streams,
            } => {
                if *images == 0 || *cols == 0 {
                    return Ok(());
                }
                let (pad, width) = (*pad as u64, *width as u64);
                let mut last = None;
                for s in streams {
                    let Some(row) = s.row else { continue };
                    // The largest real column the stream reaches.
                    let (lo, hi) = (s.x_off as u64, (*cols as u64 - 1) * s.x_mul as u64);
                    let hi = lo + hi;
                    if width == 0 || hi < pad || lo >= pad + width {
                        continue;
                    }
                    let top = hi.min(pad + width - 1);
                    // Real columns in range exist only where the stride lands on one.
                    let steps = (top - lo) / (s.x_mul.max(1) as u64);
                    let x = lo + steps * s.x_mul as u64;
                    if x < pad {
                        continue;
                    }
                    let a = (*images as u64 - 1)
                        .checked_mul(*img_stride)
                        .and_then(|o| o.checked_add(row))
                        .and_then(|o| o.checked_add(x - pad))
                        .ok_or(too_big("column"))?;
                    last = last.max(Some(a));
                }
                region.holds(last)
            }
            ReadDesc::Runs {
                region,
                positions,
                run,
                streams,
            } => {
                if *positions == 0 || *run == 0 {
                    return Ok(());
                }
                let span = (*positions)
                    .checked_mul(*run)
                    .ok_or(too_big("run"))?
                    .saturating_sub(1);
                let mut last = None;
                for &(base, _) in streams {
                    last = last.max(Some(base.checked_add(span).ok_or(too_big("run"))?));
                }
                region.holds(last)
            }
            ReadDesc::Strided { region, base, dims } => {
                if dims.len() > MAX_DIMS {
                    return Err(GlbError(format!(
                        "glb: a strided read of {} loops (at most {MAX_DIMS})",
                        dims.len()
                    )));
                }
                if dims.iter().any(|&(c, _)| c == 0) {
                    return Ok(());
                }
                let mut last = *base;
                for &(c, s) in dims {
                    last = (c - 1)
                        .checked_mul(s)
                        .and_then(|o| o.checked_add(last))
                        .ok_or(too_big("strided"))?;
                }
                region.holds(Some(last))
            }
        }
    }
}

/// A descriptor being expanded: where its walk is. An iterator of its items, as a sequencer
/// issues them.
#[derive(Debug)]
pub struct Walk {
    desc: ReadDesc,
    /// Loop counters, outermost first (their meaning depends on the descriptor).
    at: [u64; MAX_DIMS],
    /// Items still to come.
    left: u64,
}

/// The deepest [`ReadDesc::Strided`] nest.
pub const MAX_DIMS: usize = 8;

impl Walk {
    pub fn new(desc: ReadDesc) -> Self {
        let left = desc.items();
        Walk {
            desc,
            at: [0; MAX_DIMS],
            left,
        }
    }

    /// The next item, or `None` once the descriptor is expanded.
    fn next_item(&mut self) -> Option<Result<ReadItem, GlbError>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = &mut self.at;
        let item = match &mut self.desc {
            ReadDesc::List(v) => {
                // at[0]: the next item.
                let k = at[0] as usize;
                at[0] += 1;
                Ok(std::mem::replace(
                    &mut v[k],
                    ReadItem {
                        src: Src::Zeros(0),
                        tags: Tags::None,
                    },
                ))
            }
            ReadDesc::RoundRobin {
                region,
                rows,
                width,
            } => {
                // at[0]: the chunk, at[1]: the row.
                loop {
                    let (b, k) = (at[0], at[1] as usize);
                    if k >= rows.len() {
                        at[0] += 1;
                        at[1] = 0;
                        continue;
                    }
                    at[1] += 1;
                    let r = rows[k];
                    let start = b * *width;
                    if start < r.len {
                        let len = (r.len - start).min(*width);
                        break region.chunk(r.base + start, len).map(|src| ReadItem {
                            src,
                            tags: Tags::One(r.tag),
                        });
                    }
                }
            }
            ReadDesc::Columns {
                region,
                images: _,
                img_stride,
                cols,
                pad,
                width,
                streams,
            } => {
                // at[0]: the image, at[1]: the column, at[2]: the stream.
                let (img, col, k) = (at[0], at[1], at[2] as usize);
                at[2] += 1;
                if at[2] as usize == streams.len() {
                    at[2] = 0;
                    at[1] += 1;
                    if at[1] == *cols as u64 {
                        at[1] = 0;
                        at[0] += 1;
                    }
                }
                let s = &streams[k];
                let x = col * s.x_mul as u64 + s.x_off as u64;
                let (pad, width) = (*pad as u64, *width as u64);
                let src = match s.row {
                    Some(row) if x >= pad && x - pad < width => {
                        region.chunk(row + img * *img_stride + (x - pad), 1)
                    }
                    _ => Ok(Src::Zeros(1)),
                };
                src.map(|src| ReadItem {
                    src,
                    tags: s.tags.clone(),
                })
            }
            ReadDesc::Runs {
                region,
                positions: _,
                run,
                streams,
            } => {
                // at[0]: the position, at[1]: the stream, at[2]: the word of its run.
                let (pos, k, w) = (at[0], at[1] as usize, at[2]);
                let (base, tag) = streams[k];
                let addr = base + pos * *run + w;
                let len = (*run - w).min(region.lanes() - addr % region.lanes());
                at[2] += len;
                if at[2] == *run {
                    at[2] = 0;
                    at[1] += 1;
                    if at[1] as usize == streams.len() {
                        at[1] = 0;
                        at[0] += 1;
                    }
                }
                region.chunk(addr, len).map(|src| ReadItem {
                    src,
                    tags: Tags::One(tag),
                })
            }
            ReadDesc::Strided { region, base, dims } => {
                if dims.len() > MAX_DIMS {
                    self.left = 0;
                    return Some(Err(GlbError(format!(
                        "glb: a strided read of {} loops (at most {MAX_DIMS})",
                        dims.len()
                    ))));
                }
                let mut addr = *base;
                for (d, &(_, s)) in dims.iter().enumerate() {
                    addr += at[d] * s;
                }
                // Count up, innermost first.
                for d in (0..dims.len()).rev() {
                    at[d] += 1;
                    if at[d] < dims[d].0 {
                        break;
                    }
                    at[d] = 0;
                }
                region.chunk(addr, 1).map(|src| ReadItem {
                    src,
                    tags: Tags::None,
                })
            }
        };
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }

    pub(crate) fn done(&self) -> bool {
        self.left == 0
    }
}

impl Iterator for Walk {
    type Item = Result<ReadItem, GlbError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl Words {
    /// Its addresses, in order.
    pub fn addrs(self) -> impl Iterator<Item = Result<GlbAddr, GlbError>> {
        (self.base..self.base.saturating_add(self.count)).map(move |a| self.region.addr(a))
    }
}

/// The items of a reader's jobs still to be issued, in order: each job's descriptor expanded as
/// the reader issues its items, with the next item held for a look.
#[derive(Debug, Default)]
pub(crate) struct ReadQueue {
    walks: VecDeque<Walk>,
    head: Option<ReadItem>,
}

impl ReadQueue {
    pub(crate) fn push(&mut self, desc: ReadDesc) {
        let w = Walk::new(desc);
        if !w.done() {
            self.walks.push_back(w);
        }
    }

    /// The next item, if any.
    pub(crate) fn front(&mut self) -> Result<Option<&ReadItem>, GlbError> {
        if self.head.is_none() {
            while let Some(w) = self.walks.front_mut() {
                match w.next_item() {
                    Some(item) => {
                        self.head = Some(item?);
                        if w.done() {
                            self.walks.pop_front();
                        }
                        break;
                    }
                    None => {
                        self.walks.pop_front();
                    }
                }
            }
        }
        Ok(self.head.as_ref())
    }

    /// Takes the item [`ReadQueue::front`] showed.
    pub(crate) fn pop_front(&mut self) -> Option<ReadItem> {
        self.head.take()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none() && self.walks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(dtype: DataType) -> Region {
        Region::new(
            GlbLayout {
                shared_banks: 4,
                ifmap_banks: 2,
                psum_banks: 2,
                filter_banks: 1,
                bank_entries: 8,
                lanes: 4,
            },
            dtype,
        )
    }

    fn walk(d: &ReadDesc) -> Vec<ReadItem> {
        let v: Vec<ReadItem> = Walk::new(d.clone()).map(|i| i.unwrap()).collect();
        assert_eq!(v.len() as u64, d.items());
        v
    }

    fn at(src: Src) -> (u32, u32, u8, u8) {
        match src {
            Src::Glb {
                bank,
                entry,
                lane,
                len,
                ..
            } => (bank, entry, lane, len),
            Src::Zeros(n) => (u32::MAX, 0, 0, n),
        }
    }

    #[test]
    fn runs_split_where_an_entry_ends_and_count_their_chunks() {
        // Runs of 3 from words 2 and 13: 2..5 -> (2, 2) (4, 1); 13..16 -> (13, 3); then 5..8
        // -> (5, 3); 16..19 -> (16, 3).
        let d = ReadDesc::Runs {
            region: region(DataType::Psum),
            positions: 2,
            run: 3,
            streams: vec![(2, (0, 1)), (13, (0, 2))],
        };
        d.check().unwrap();
        let got: Vec<(u32, u32, u8, u8)> = walk(&d).iter().map(|i| at(i.src)).collect();
        // Psum banks are 2 and 3; a bank holds 32 words.
        assert_eq!(
            got,
            vec![
                (2, 0, 2, 2),
                (2, 1, 0, 1),
                (2, 3, 1, 3),
                (2, 1, 1, 3),
                (2, 4, 0, 3)
            ]
        );
    }

    #[test]
    fn columns_make_padding_as_zeros_and_strided_walks_its_nest() {
        // Two images 10 words apart, 3 columns, padding 1, rows 4 wide: columns 0 and 4 of
        // a stream with x = col * 2 are padding; a padding row is all zeros.
        let d = ReadDesc::Columns {
            region: region(DataType::Ifmap),
            images: 2,
            img_stride: 10,
            cols: 3,
            pad: 1,
            width: 4,
            streams: vec![
                ColumnStream {
                    row: Some(0),
                    x_mul: 2,
                    x_off: 0,
                    tags: Tags::One((0, 0)),
                },
                ColumnStream {
                    row: None,
                    x_mul: 1,
                    x_off: 1,
                    tags: Tags::One((1, 0)),
                },
            ],
        };
        d.check().unwrap();
        let words: Vec<Option<u32>> = walk(&d)
            .iter()
            .map(|i| match i.src {
                Src::Glb { entry, lane, .. } => Some(entry * 4 + lane as u32),
                _ => None,
            })
            .collect();
        assert_eq!(
            words,
            vec![
                None,
                None,
                Some(1),
                None,
                Some(3),
                None,
                None,
                None,
                Some(11),
                None,
                Some(13),
                None
            ]
        );
        let s = ReadDesc::Strided {
            region: region(DataType::Psum),
            base: 1,
            dims: vec![(2, 10), (3, 2)],
        };
        let words: Vec<u32> = walk(&s)
            .iter()
            .map(|i| {
                let (_, e, l, _) = at(i.src);
                e * 4 + l as u32
            })
            .collect();
        assert_eq!(words, vec![1, 3, 5, 11, 13, 15]);
    }

    #[test]
    fn a_descriptor_reaching_past_its_region_is_refused_before_it_runs() {
        // The filter region is one bank of 32 words.
        let rr = |base, len| ReadDesc::RoundRobin {
            region: region(DataType::Filter),
            rows: vec![TaggedRow {
                base,
                len,
                tag: (0, 0),
            }],
            width: 4,
        };
        rr(28, 4).check().unwrap();
        let e = rr(29, 4).check().unwrap_err().to_string();
        assert!(
            e.contains("filter word 32") && e.contains("filter region"),
            "{e}"
        );
        let runs = ReadDesc::Runs {
            region: region(DataType::Psum),
            positions: 4,
            run: 8,
            streams: vec![(33, (0, 0))],
        };
        assert!(runs
            .check()
            .unwrap_err()
            .to_string()
            .contains("psum word 64"));
        let cols = |images| ReadDesc::Columns {
            region: region(DataType::Ifmap),
            images,
            img_stride: 30,
            cols: 5,
            pad: 1,
            width: 3,
            streams: vec![ColumnStream {
                row: Some(30),
                x_mul: 1,
                x_off: 0,
                tags: Tags::None,
            }],
        };
        // The last real column is x = 3, word 30 + 2 of image 0; image 1's is word 62.
        cols(2).check().unwrap();
        assert!(cols(3)
            .check()
            .unwrap_err()
            .to_string()
            .contains("ifmap word 92"));
        let strided = ReadDesc::Strided {
            region: region(DataType::Psum),
            base: 0,
            dims: vec![(9, 8)],
        };
        assert!(strided.check().is_err());
        let w = Words {
            region: region(DataType::Ifmap),
            base: 60,
            count: 5,
        };
        assert!(w.check().unwrap_err().to_string().contains("ifmap word 64"));
        let deep = ReadDesc::Strided {
            region: region(DataType::Psum),
            base: 0,
            dims: vec![(1, 1); MAX_DIMS + 1],
        };
        assert!(deep.check().is_err());
    }

    /// Every address a queue of spans gives is the one its word locates to, in layouts whose
    /// sizes are powers of two and not, entries of one to four lanes, spans starting anywhere
    /// in an entry; and a span reaching past its region gives the same error at the same word.
    #[test]
    fn word_queue_gives_each_word_its_located_address() {
        for (lanes, entries) in [(4, 8), (3, 5), (1, 7), (2, 3)] {
            let layout = GlbLayout {
                shared_banks: 4,
                ifmap_banks: 2,
                psum_banks: 2,
                filter_banks: 1,
                bank_entries: entries,
                lanes,
            };
            let r = Region::new(layout, DataType::Psum);
            let spans = [(0u64, 5u64), (3, 1), (7, 0), (2, 9), (8, 4), (0, 2)];
            let mut q = WordQueue::default();
            q.extend(spans.iter().map(|&(base, count)| Words {
                region: r,
                base,
                count,
            }));
            let want: Vec<GlbAddr> = spans
                .iter()
                .flat_map(|&(base, count)| (base..base + count).map(|a| r.addr(a).unwrap()))
                .collect();
            let mut got = Vec::new();
            while let Some(a) = q.next_word() {
                got.push(a.unwrap());
            }
            assert_eq!(got, want, "lanes {lanes} entries {entries}");
            // Past the region: the words before it, then its error.
            let end = 2 * u64::from(entries * lanes);
            let mut q = WordQueue::default();
            q.push_back(Words {
                region: r,
                base: end - 3,
                count: 5,
            });
            let got: Vec<_> = std::iter::from_fn(|| q.next_word()).collect();
            let want: Vec<_> = (end - 3..end + 2).map(|a| r.addr(a)).collect();
            assert_eq!(got, want, "lanes {lanes} entries {entries}");
            assert!(got[3].is_err());
        }
    }

    #[test]
    fn words_give_their_addresses_in_order_across_spans() {
        let mut q = WordQueue::default();
        q.extend(
            [(30, 3), (5, 0), (2, 1)]
                .into_iter()
                .map(|(base, count)| Words {
                    region: region(DataType::Ifmap),
                    base,
                    count,
                }),
        );
        let mut got = Vec::new();
        while let Some(a) = q.next_word() {
            let a = a.unwrap();
            got.push((a.bank, a.entry, a.lane));
        }
        assert_eq!(got, vec![(0, 7, 2), (0, 7, 3), (1, 0, 0), (0, 0, 2)]);
    }

    proptest::proptest! {
        /// A writer's look ahead at its words: the next address ([`WordQueue::peek`]) and how
        /// many of the next ones share its entry ([`WordQueue::same_entry`]) are what taking
        /// them from a copy of the queue gives, word after word, across spans that end and
        /// start within an entry, empty ones, and looks that come between the takes.
        #[test]
        fn a_look_ahead_at_words_is_what_taking_them_gives(
            spans in proptest::collection::vec((0u64..56, 0u64..7), 1..6),
            max in 1usize..5,
        ) {
            let mut q = WordQueue::default();
            q.extend(spans.iter().map(|&(base, count)| Words {
                region: region(DataType::Ifmap),
                base,
                count,
            }));
            loop {
                let mut copy = q.clone();
                let ahead: Vec<GlbAddr> = std::iter::from_fn(|| copy.next_word())
                    .take(max)
                    .map(|a| a.unwrap())
                    .collect();
                let want = ahead
                    .iter()
                    .take_while(|a| a.bank == ahead[0].bank && a.entry == ahead[0].entry)
                    .count();
                proptest::prop_assert_eq!(q.peek().map(|a| a.unwrap()), ahead.first().copied());
                proptest::prop_assert_eq!(q.same_entry(max), want);
                let Some(a) = q.next_word() else { break };
                proptest::prop_assert_eq!(a.unwrap(), ahead[0]);
            }
        }
    }
}
