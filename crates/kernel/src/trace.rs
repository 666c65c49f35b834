//! Tracing: components declare signals once, report values after each edge, and a VCD sink
//! writes only the changes.
//!
//! - A signal is a scope path (`top.chip.pe_array.pe_r3_c7`), a name (`psum_spad_wr_data`) and a
//!   width of 1 to 64 bits. Scope segments and names use `[A-Za-z0-9_]` only, because GTKWave
//!   splits hierarchy on dots. Vectors appear as `name[15:0]`.
//! - A trace can be limited to scope globs: a signal is traced when a glob matches its scope,
//!   one of its scope's ancestors, or its full name (`top.chip.noc*`, `top.*.pe_r3_c7`,
//!   `top.dram.rd_req`). `*` crosses dots. Signals left out cost one branch when reported.
//! - A trace can be limited to a window of cycles `[start, end)` of the primary clock; the file
//!   then opens with the values at the window's start under `$dumpvars`.
//! - The file is byte-for-byte reproducible: no `$date`, changes within a timestamp sorted by
//!   signal, timestamps in picoseconds (`$timescale 1ps`), `#<t>` before `$dumpvars`.
//! - A GTKWave save file (`.gtkw`) is written beside the VCD, one group per component scope.
//! - A trace file named `*.fst` is written as FST instead (through the `fst-writer` crate): the
//!   same hierarchy, signals and value changes, compressed, for dumps that would be hundreds of
//!   MB as VCD. GTKWave opens it with the same save file.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use fst_writer::{
    FstBodyWriter, FstFileType, FstHeaderWriter, FstInfo, FstScopeType, FstSignalId, FstSignalType,
    FstVarDirection, FstVarType,
};
use globset::{Glob, GlobSet, GlobSetBuilder};
use vcd::{IdCode, ReferenceIndex, SimulationCommand, TimescaleUnit};

use crate::clock::Picos;

/// Handle of a declared signal. Reporting a signal that the trace leaves out is a no-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalId(u32);

impl SignalId {
    /// A signal that is not traced (left out by the scope globs, or tracing never started).
    pub const OFF: SignalId = SignalId(u32::MAX);

    pub fn is_traced(self) -> bool {
        self != Self::OFF
    }
}

impl Default for SignalId {
    fn default() -> Self {
        Self::OFF
    }
}

/// Errors of tracing: bad declarations, bad globs, and I/O on the trace files.
#[derive(Debug)]
pub enum TraceError {
    BadName {
        scope: String,
        name: String,
        why: String,
    },
    BadWidth {
        signal: String,
        width: u32,
    },
    Duplicate {
        signal: String,
    },
    BadGlob {
        glob: String,
        why: String,
    },
    BadWindow {
        start: u64,
        end: u64,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::BadName { scope, name, why } => {
                write!(f, "signal `{scope}.{name}`: {why}")
            }
            TraceError::BadWidth { signal, width } => {
                write!(f, "signal `{signal}`: width {width} is outside 1..=64 bits")
            }
            TraceError::Duplicate { signal } => write!(f, "signal `{signal}` declared twice"),
            TraceError::BadGlob { glob, why } => write!(f, "trace scope glob `{glob}`: {why}"),
            TraceError::BadWindow { start, end } => write!(
                f,
                "trace window {start}..{end}: the end must be after the start"
            ),
            TraceError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

/// The message already includes the I/O error, so it is not repeated as a `source`.
impl std::error::Error for TraceError {}

/// What to trace and where.
#[derive(Clone, Debug, Default)]
pub struct TraceConfig {
    /// The VCD file; the save file goes beside it with the extension `.gtkw`.
    pub vcd: PathBuf,
    /// Scope globs; empty traces everything.
    pub scopes: Vec<String>,
    /// Cycles `[start, end)` of the primary clock; `None` traces the whole run.
    pub window: Option<Range<u64>>,
}

fn check_ident(scope: &str, name: &str, what: &str, s: &str) -> Result<(), TraceError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(TraceError::BadName {
            scope: scope.into(),
            name: name.into(),
            why: format!("{what} `{s}` must be non-empty and use only [A-Za-z0-9_]"),
        });
    }
    Ok(())
}

struct Decl {
    scope: String,
    name: String,
    width: u32,
}

/// Where components declare their signals, once, before the first traced edge.
pub struct SignalRegistry {
    decls: Vec<Decl>,
    filter: Option<GlobSet>,
    seen: std::collections::HashSet<String>,
}

impl SignalRegistry {
    /// Signals declared (and selected) so far.
    pub(crate) fn declared(&self) -> usize {
        self.decls.len()
    }

    fn new(globs: &[String]) -> Result<Self, TraceError> {
        let filter = if globs.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g).map_err(|e| TraceError::BadGlob {
                    glob: g.clone(),
                    why: e.kind().to_string(),
                })?);
            }
            Some(b.build().map_err(|e| TraceError::BadGlob {
                glob: globs.join(","),
                why: e.to_string(),
            })?)
        };
        Ok(SignalRegistry {
            decls: Vec::new(),
            filter,
            seen: Default::default(),
        })
    }

    fn selected(&self, scope: &str, full: &str) -> bool {
        let Some(set) = &self.filter else {
            return true;
        };
        if set.is_match(full) {
            return true;
        }
        // The scope itself and each of its ancestors.
        let mut s = scope;
        loop {
            if set.is_match(s) {
                return true;
            }
            match s.rfind('.') {
                Some(i) => s = &s[..i],
                None => return false,
            }
        }
    }

    /// Declares `scope.name`, `width` bits wide. Returns [`SignalId::OFF`] when the trace's scope
    /// globs leave it out.
    pub fn signal(&mut self, scope: &str, name: &str, width: u32) -> Result<SignalId, TraceError> {
        for seg in scope.split('.') {
            check_ident(scope, name, "scope segment", seg)?;
        }
        check_ident(scope, name, "name", name)?;
        let full = format!("{scope}.{name}");
        if !(1..=64).contains(&width) {
            return Err(TraceError::BadWidth {
                signal: full,
                width,
            });
        }
        if !self.seen.insert(full.clone()) {
            return Err(TraceError::Duplicate { signal: full });
        }
        if !self.selected(scope, &full) {
            return Ok(SignalId::OFF);
        }
        self.decls.push(Decl {
            scope: scope.into(),
            name: name.into(),
            width,
        });
        Ok(SignalId(self.decls.len() as u32 - 1))
    }
}

/// Where a component reports its signals' values after an edge.
pub struct TraceFrame<'a> {
    values: &'a mut [u64],
    masks: &'a [u64],
    dirty: &'a mut Vec<u32>,
}

impl TraceFrame<'_> {
    /// Reports the value of a signal; bits above its width are dropped, as on a wire that narrow.
    #[inline]
    pub fn set(&mut self, id: SignalId, value: u64) {
        if id == SignalId::OFF {
            return;
        }
        let i = id.0 as usize;
        let v = value & self.masks[i];
        debug_assert_eq!(v, value, "value {value:#x} wider than its signal");
        if self.values[i] != v {
            self.values[i] = v;
            self.dirty.push(id.0);
        }
    }

    #[inline]
    pub fn set_bool(&mut self, id: SignalId, value: bool) {
        self.set(id, value as u64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the window: nothing sampled or written.
    Waiting,
    /// In the window: changes written.
    Open,
    /// After the window, or finished.
    Closed,
}

/// The declared signals and their current values: what components report into, what a VCD
/// sink writes from, and what a probe (`Scheduler::probe`) reads.
pub(crate) struct SignalTable {
    decls: Vec<Decl>,
    masks: Vec<u64>,
    pub(crate) values: Vec<u64>,
    dirty: Vec<u32>,
    index: std::collections::HashMap<String, u32>,
}

/// A declared signal, as a probe sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The full VCD path: `top.chip.pe_array.pe_r0_c0.psum_spad_wr_data`.
    pub path: String,
    pub width: u32,
    /// The current value (bits above `width` are zero).
    pub value: u64,
}

impl SignalTable {
    /// Lets `declare` register every signal the scope globs select (all when empty).
    pub(crate) fn declare(
        globs: &[String],
        declare: impl FnOnce(&mut SignalRegistry) -> Result<(), TraceError>,
    ) -> Result<SignalTable, TraceError> {
        let mut reg = SignalRegistry::new(globs)?;
        declare(&mut reg)?;
        let masks: Vec<u64> = reg
            .decls
            .iter()
            .map(|d| {
                if d.width == 64 {
                    u64::MAX
                } else {
                    (1u64 << d.width) - 1
                }
            })
            .collect();
        let index = reg
            .decls
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("{}.{}", d.scope, d.name), i as u32))
            .collect();
        let n = masks.len();
        Ok(SignalTable {
            decls: reg.decls,
            masks,
            values: vec![0; n],
            dirty: Vec::with_capacity(n),
            index,
        })
    }

    pub(crate) fn frame(&mut self) -> TraceFrame<'_> {
        TraceFrame {
            values: &mut self.values,
            masks: &self.masks,
            dirty: &mut self.dirty,
        }
    }

    pub(crate) fn clear_dirty(&mut self) {
        self.dirty.clear();
    }

    pub(crate) fn info(&self, i: usize) -> SignalInfo {
        let d = &self.decls[i];
        SignalInfo {
            path: format!("{}.{}", d.scope, d.name),
            width: d.width,
            value: self.values[i],
        }
    }

    pub(crate) fn lookup(&self, path: &str) -> Option<usize> {
        self.index.get(path).map(|&i| i as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.decls.len()
    }

    /// Indices of the signals a set of scope globs selects (as [`TraceConfig::scopes`] would).
    pub(crate) fn select(&self, globs: &[String]) -> Result<Vec<usize>, TraceError> {
        let reg = SignalRegistry::new(globs)?;
        Ok((0..self.decls.len())
            .filter(|&i| {
                let d = &self.decls[i];
                reg.selected(&d.scope, &format!("{}.{}", d.scope, d.name))
            })
            .collect())
    }
}

/// Where the changes go: a VCD, or an FST.
enum Sink {
    Vcd(vcd::Writer<VcdFile>),
    /// `None` once finished (an FST's header is completed when it is closed).
    Fst(Option<Box<FstBodyWriter<BufWriter<File>>>>, Vec<u8>),
}

/// A signal's handle in the file.
#[derive(Clone, Copy)]
enum Code {
    Vcd(VcdId),
    Fst(FstSignalId),
}

/// A VCD identifier code as the file spells it (what `IdCode`'s `Display` writes), made once
/// per signal so that a change is written without the formatting machinery.
#[derive(Clone, Copy)]
struct VcdId {
    bytes: [u8; 12],
    len: u8,
}

impl VcdId {
    fn of(code: IdCode) -> VcdId {
        let s = code.to_string();
        let mut bytes = [0u8; 12];
        // A u64 code spells out in at most 10 of the 94 printable characters.
        let len = s.len().min(bytes.len());
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        VcdId {
            bytes,
            len: len as u8,
        }
    }
}

/// The two digits of each number below 100.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// `#<t>` and a newline, as `vcd::Writer::timestamp` writes it: the line in the buffer's first
/// bytes (at most 22: `#`, 20 digits, a newline), and its length. The digits are made two at a
/// time, from the last.
#[inline]
fn vcd_timestamp(t: u64) -> ([u8; 24], usize) {
    let mut buf = [0u8; 24];
    buf[0] = b'#';
    let end = 1 + t.checked_ilog10().map_or(1, |d| d as usize + 1);
    buf[end] = b'\n';
    let (mut i, mut v) = (end, t);
    while v >= 100 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        buf[i - 2..i].copy_from_slice(&DIGIT_PAIRS[v as usize]);
    } else {
        buf[i - 1] = b'0' + v as u8;
    }
    (buf, end + 1)
}

/// [`vcd_timestamp`] written to `w`.
#[cfg(test)]
fn write_vcd_timestamp<W: Write>(w: &mut W, t: u64) -> io::Result<()> {
    let (buf, n) = vcd_timestamp(t);
    w.write_all(&buf[..n])
}

/// The longest value line: `b`, 64 bits, a space, a code of at most 12 bytes, a newline.
const VCD_LINE: usize = 1 + 64 + 1 + 12 + 1;

/// A line's buffer: the line and room for the fixed-size copies that build it (8 bytes of bits
/// and 12 of code at a time, each possibly past the line's end).
type LineBuf = [u8; VCD_LINE + 8];

/// The eight characters (`0`/`1`, most significant first) of each byte value.
const BIT_CHARS: [[u8; 8]; 256] = {
    let mut t = [[b'0'; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            if (b >> (7 - i)) & 1 == 1 {
                t[b][i] = b'1';
            }
            i += 1;
        }
        b += 1;
    }
    t
};

/// A change of a signal `width` bits wide to `v`, as `vcd::Writer::change_scalar` (one bit) and
/// `change_vector` (wider; leading zeros dropped, as VCD zero-extends, at least one bit kept)
/// write it: the line in the buffer's first bytes, and its length. The bits are spelled a byte
/// at a time from a table, and every copy has a fixed length.
#[inline]
fn vcd_line(id: &VcdId, width: u32, v: u64) -> (LineBuf, usize) {
    let mut buf: LineBuf = [0; VCD_LINE + 8];
    let mut n;
    if width == 1 {
        buf[0] = b'0' + (v & 1) as u8;
        n = 1;
    } else {
        buf[0] = b'b';
        n = 1;
        // Bits from the highest set (at least one), in whole bytes but the first.
        let top = 64 - v.leading_zeros().min(63);
        let bytes = top.div_ceil(8);
        let first = top - 8 * (bytes - 1);
        // The first byte's characters for its `first` low bits: the table's last `first`.
        let chars = u64::from_le_bytes(BIT_CHARS[(v >> (8 * (bytes - 1))) as usize & 0xFF]);
        buf[n..n + 8].copy_from_slice(&(chars >> (8 * (8 - first))).to_le_bytes());
        n += first as usize;
        for k in (0..bytes - 1).rev() {
            buf[n..n + 8].copy_from_slice(&BIT_CHARS[(v >> (8 * k)) as usize & 0xFF]);
            n += 8;
        }
        buf[n] = b' ';
        n += 1;
    }
    buf[n..n + 12].copy_from_slice(&id.bytes);
    n += id.len as usize;
    buf[n] = b'\n';
    n += 1;
    (buf, n)
}

/// [`vcd_line`] written to `w`.
#[cfg(test)]
fn write_vcd_value<W: Write>(w: &mut W, id: &VcdId, width: u32, v: u64) -> io::Result<()> {
    let (buf, n) = vcd_line(id, width, v);
    w.write_all(&buf[..n])
}

/// A VCD's bytes on their way to its file, 64 KiB at a time (as a `BufWriter` of that size
/// writes them): a value line goes in as one copy of its whole fixed-size buffer, of which
/// only its own bytes are kept (no copy of a length known only at run time, which is a call).
struct VcdFile {
    buf: Box<[u8]>,
    len: usize,
    file: File,
}

impl VcdFile {
    const CAPACITY: usize = 1 << 16;

    fn new(file: File) -> Self {
        VcdFile {
            buf: vec![0; Self::CAPACITY + std::mem::size_of::<LineBuf>()].into_boxed_slice(),
            len: 0,
            file,
        }
    }

    /// Appends the first `n` bytes of `bytes` (`N` at most a [`LineBuf`]'s length, for which
    /// the buffer has room past its capacity).
    #[inline]
    fn put<const N: usize>(&mut self, bytes: &[u8; N], n: usize) -> io::Result<()> {
        const { assert!(N <= std::mem::size_of::<LineBuf>()) };
        if self.len >= Self::CAPACITY {
            self.write_out()?;
        }
        self.buf[self.len..self.len + N].copy_from_slice(bytes);
        self.len += n;
        Ok(())
    }

    /// Writes what the buffer holds to the file.
    fn write_out(&mut self) -> io::Result<()> {
        let r = self.file.write_all(&self.buf[..self.len]);
        self.len = 0;
        r
    }
}

impl Write for VcdFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.len + data.len() > Self::CAPACITY {
            self.write_out()?;
        }
        if data.len() >= Self::CAPACITY {
            return self.file.write(data);
        }
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.file.flush()
    }
}

impl Drop for VcdFile {
    /// What is still in the buffer goes to the file (as a `BufWriter` does when dropped): a
    /// run that ends without closing its trace leaves every change it made.
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

impl Sink {
    fn timestamp(&mut self, t: Picos) -> io::Result<()> {
        match self {
            Sink::Vcd(w) => {
                let (line, n) = vcd_timestamp(t);
                w.writer().put(&line, n)
            }
            Sink::Fst(Some(w), _) => w.time_change(t).map_err(fst_io),
            Sink::Fst(None, _) => Ok(()),
        }
    }

    fn begin_dumpvars(&mut self) -> io::Result<()> {
        match self {
            Sink::Vcd(w) => w.begin(SimulationCommand::Dumpvars),
            Sink::Fst(..) => Ok(()),
        }
    }

    fn end_dumpvars(&mut self) -> io::Result<()> {
        match self {
            Sink::Vcd(w) => w.end(),
            Sink::Fst(..) => Ok(()),
        }
    }

    fn value(&mut self, code: Code, width: u32, v: u64) -> io::Result<()> {
        match (self, code) {
            (Sink::Vcd(w), Code::Vcd(c)) => {
                let (line, n) = vcd_line(&c, width, v);
                w.writer().put(&line, n)
            }
            (Sink::Fst(Some(w), bits), Code::Fst(id)) => {
                bits.clear();
                bits.extend((0..width).rev().map(|b| b'0' + ((v >> b) & 1) as u8));
                w.signal_change(id, bits).map_err(fst_io)
            }
            _ => Ok(()),
        }
    }

    /// Flushes; an FST is finished (its header completed) and takes no more changes.
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Sink::Vcd(w) => w.flush(),
            Sink::Fst(w, _) => match w.take() {
                Some(w) => (*w).finish().map_err(fst_io)?.flush(),
                None => Ok(()),
            },
        }
    }
}

fn fst_io(e: fst_writer::FstWriteError) -> io::Error {
    match e {
        fst_writer::FstWriteError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// The trace sink: writes the changes of a selection of the table's signals within a window,
/// as VCD or FST. Created by the scheduler's `trace_to`.
pub struct Tracer {
    vcd_path: PathBuf,
    writer: Sink,
    /// The handle of each table signal this file holds.
    codes: Vec<Option<Code>>,
    widths: Vec<u32>,
    signals: usize,
    written: Vec<u64>,
    window: Range<Picos>,
    phase: Phase,
    last_stamp: Option<Picos>,
    last_instant: Picos,
    changes: u64,
}

/// What a finished trace holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSummary {
    pub vcd: PathBuf,
    pub gtkw: PathBuf,
    pub signals: usize,
    pub changes: u64,
    /// Time of the last instant the file covers.
    pub until: Picos,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Tracer {
    /// Opens the VCD for the table's signals `selected`, and writes the header and save file.
    /// `window` is in picoseconds: `[first instant, last instant]`, both inclusive.
    pub(crate) fn create(
        cfg: &TraceConfig,
        window: Range<Picos>,
        table: &SignalTable,
        selected: &[usize],
    ) -> Result<Tracer, TraceError> {
        let path = cfg.vcd.clone();
        let decls: Vec<&Decl> = selected.iter().map(|&i| &table.decls[i]).collect();
        let fst = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("fst"));
        let (w, file_codes) = if fst {
            let info = FstInfo {
                start_time: 0,
                timescale_exponent: -12,
                version: concat!("rowsim ", env!("CARGO_PKG_VERSION")).into(),
                date: String::new(),
                file_type: FstFileType::Verilog,
            };
            let mut h = fst_writer::open_fst(&path, &info)
                .map_err(fst_io)
                .map_err(io_err(&path))?;
            let ids = write_fst_header(&mut h, &decls)
                .map_err(fst_io)
                .map_err(io_err(&path))?;
            let body = h.finish().map_err(fst_io).map_err(io_err(&path))?;
            let codes: Vec<Code> = ids.into_iter().map(Code::Fst).collect();
            (
                Sink::Fst(Some(Box::new(body)), Vec::with_capacity(64)),
                codes,
            )
        } else {
            let file = File::create(&path).map_err(io_err(&path))?;
            let mut w = vcd::Writer::new(VcdFile::new(file));
            let codes = write_header(&mut w, &decls).map_err(io_err(&path))?;
            w.flush().map_err(io_err(&path))?;
            (
                Sink::Vcd(w),
                codes.into_iter().map(|c| Code::Vcd(VcdId::of(c))).collect(),
            )
        };
        let gtkw = path.with_extension("gtkw");
        write_gtkw(&gtkw, &path, &decls).map_err(io_err(&gtkw))?;
        let mut codes = vec![None; table.len()];
        for (k, &i) in selected.iter().enumerate() {
            codes[i] = Some(file_codes[k]);
        }
        Ok(Tracer {
            vcd_path: path,
            writer: w,
            codes,
            widths: table.decls.iter().map(|d| d.width).collect(),
            signals: selected.len(),
            written: vec![0; table.len()],
            window,
            phase: Phase::Waiting,
            last_stamp: None,
            last_instant: 0,
            changes: 0,
        })
    }

    /// Whether the instant at `t` needs a full sample (the window opens at it).
    pub(crate) fn opens_at(&self, t: Picos) -> bool {
        self.phase == Phase::Waiting && t >= self.window.start
    }

    /// Whether the instant at `t` is sampled from the components stepped at it.
    pub(crate) fn samples_at(&self, t: Picos) -> bool {
        self.phase == Phase::Open && t <= self.window.end
    }

    /// After a full sample at `t`: `#t` and `$dumpvars` with every value.
    pub(crate) fn dump_all(&mut self, t: Picos, table: &SignalTable) -> Result<(), TraceError> {
        self.phase = Phase::Open;
        self.last_instant = t;
        let r: io::Result<()> = (|| {
            self.writer.timestamp(t)?;
            self.writer.begin_dumpvars()?;
            for (i, code) in self.codes.iter().enumerate() {
                if let Some(code) = code {
                    self.writer.value(*code, self.widths[i], table.values[i])?;
                }
            }
            self.writer.end_dumpvars()
        })();
        r.map_err(io_err(&self.vcd_path))?;
        self.written.copy_from_slice(&table.values);
        self.changes += self.signals as u64;
        self.last_stamp = Some(t);
        Ok(())
    }

    /// After the components of the instant at `t` reported: writes what changed.
    pub(crate) fn write_changes(
        &mut self,
        t: Picos,
        table: &mut SignalTable,
    ) -> Result<(), TraceError> {
        self.last_instant = t;
        if table.dirty.is_empty() {
            return Ok(());
        }
        // Sorted, so the order components reported in (the step order) never reaches the file.
        table.dirty.sort_unstable();
        table.dirty.dedup();
        let mut r = Ok(());
        for &i in &table.dirty {
            let i = i as usize;
            let Some(code) = self.codes[i] else {
                continue;
            };
            if table.values[i] == self.written[i] {
                continue;
            }
            if self.last_stamp != Some(t) {
                r = self.writer.timestamp(t);
                self.last_stamp = Some(t);
            }
            r = r.and_then(|_| self.writer.value(code, self.widths[i], table.values[i]));
            if r.is_err() {
                break;
            }
            self.written[i] = table.values[i];
            self.changes += 1;
        }
        r.map_err(io_err(&self.vcd_path))
    }

    /// Closes the window after the instant at `t` if it was the last one in it.
    pub(crate) fn after_instant(&mut self, next: Picos) -> Result<(), TraceError> {
        if self.phase == Phase::Open && next > self.window.end {
            self.close()?;
        }
        Ok(())
    }

    /// Ends the file at the last instant it covers (a final `#t` if that instant changed nothing)
    /// and flushes it. Later instants are not written. Safe to call more than once.
    pub(crate) fn close(&mut self) -> Result<TraceSummary, TraceError> {
        if self.phase == Phase::Open && self.last_stamp != Some(self.last_instant) {
            self.writer
                .timestamp(self.last_instant)
                .map_err(io_err(&self.vcd_path))?;
            self.last_stamp = Some(self.last_instant);
        }
        self.phase = Phase::Closed;
        self.writer.finish().map_err(io_err(&self.vcd_path))?;
        Ok(self.summary())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub fn summary(&self) -> TraceSummary {
        TraceSummary {
            vcd: self.vcd_path.clone(),
            gtkw: self.vcd_path.with_extension("gtkw"),
            signals: self.signals,
            changes: self.changes,
            until: self.last_stamp.unwrap_or(0),
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Best effort: a trace dropped without `finish` (a panic elsewhere) is still flushed.
        let _ = self.close();
    }
}

struct ScopeNode {
    name: String,
    children: Vec<usize>,
    vars: Vec<usize>,
}

/// The scope tree of the declarations, children in order of first declaration; node 0 is the
/// root (no name).
fn scope_tree(decls: &[&Decl]) -> Vec<ScopeNode> {
    let mut nodes = vec![ScopeNode {
        name: String::new(),
        children: vec![],
        vars: vec![],
    }];
    for (i, d) in decls.iter().enumerate() {
        let mut at = 0;
        for seg in d.scope.split('.') {
            let found = nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| nodes[c].name == seg);
            at = match found {
                Some(c) => c,
                None => {
                    nodes.push(ScopeNode {
                        name: seg.into(),
                        children: vec![],
                        vars: vec![],
                    });
                    let c = nodes.len() - 1;
                    nodes[at].children.push(c);
                    c
                }
            };
        }
        nodes[at].vars.push(i);
    }
    nodes
}

/// The FST hierarchy: the same scopes and signals as the VCD's.
fn write_fst_header<W: Write + io::Seek>(
    w: &mut FstHeaderWriter<W>,
    decls: &[&Decl],
) -> fst_writer::Result<Vec<FstSignalId>> {
    fn walk<W: Write + io::Seek>(
        w: &mut FstHeaderWriter<W>,
        nodes: &[ScopeNode],
        at: usize,
        decls: &[&Decl],
        ids: &mut [Option<FstSignalId>],
    ) -> fst_writer::Result<()> {
        for &v in &nodes[at].vars {
            let d = &decls[v];
            let name = if d.width > 1 {
                format!("{}[{}:0]", d.name, d.width - 1)
            } else {
                d.name.clone()
            };
            ids[v] = Some(w.var(
                name,
                FstSignalType::bit_vec(d.width),
                FstVarType::Wire,
                FstVarDirection::Implicit,
                None,
            )?);
        }
        for &c in &nodes[at].children {
            w.scope(&nodes[c].name, "", FstScopeType::Module)?;
            walk(w, nodes, c, decls, ids)?;
            w.up_scope()?;
        }
        Ok(())
    }
    let nodes = scope_tree(decls);
    let mut ids = vec![None; decls.len()];
    walk(w, &nodes, 0, decls, &mut ids)?;
    Ok(ids
        .into_iter()
        .map(|i| i.expect("every signal declared"))
        .collect())
}

fn write_header<W: Write>(w: &mut vcd::Writer<W>, decls: &[&Decl]) -> io::Result<Vec<IdCode>> {
    w.version(concat!("rowsim ", env!("CARGO_PKG_VERSION")))?;
    w.timescale(1, TimescaleUnit::PS)?;
    let nodes = scope_tree(decls);
    let mut codes = vec![IdCode::FIRST; decls.len()];
    let mut next = IdCode::FIRST;
    fn walk<W: Write>(
        w: &mut vcd::Writer<W>,
        nodes: &[ScopeNode],
        at: usize,
        decls: &[&Decl],
        codes: &mut [IdCode],
        next: &mut IdCode,
    ) -> io::Result<()> {
        for &v in &nodes[at].vars {
            let d = &decls[v];
            let index = (d.width > 1).then(|| ReferenceIndex::Range(d.width as i32 - 1, 0));
            w.var_def(vcd::VarType::Wire, d.width, *next, &d.name, index)?;
            codes[v] = *next;
            *next = next.next();
        }
        for &c in &nodes[at].children {
            w.add_module(&nodes[c].name)?;
            walk(w, nodes, c, decls, codes, next)?;
            w.upscope()?;
        }
        Ok(())
    }
    walk(w, &nodes, 0, decls, &mut codes, &mut next)?;
    w.enddefinitions()?;
    Ok(codes)
}

/// GTKWave trace flags (gtkwave's `TR_*`): hex, binary, right-justified, and group markers.
const GTKW_HEX: u32 = 0x22;
const GTKW_BIN: u32 = 0x28;
const GTKW_GROUP_BEGIN: u32 = 0x80_0200;
const GTKW_GROUP_END: u32 = 0x100_0200;

fn write_gtkw(path: &Path, vcd: &Path, decls: &[&Decl]) -> io::Result<()> {
    let mut f = BufWriter::new(File::create(path)?);
    let dump = vcd.file_name().map(Path::new).unwrap_or(vcd);
    let save = path.file_name().map(Path::new).unwrap_or(path);
    writeln!(
        f,
        "[*] rowsim {}: open with `gtkwave {}`",
        env!("CARGO_PKG_VERSION"),
        save.display()
    )?;
    writeln!(f, "[dumpfile] \"{}\"", dump.display())?;
    writeln!(f, "[savefile] \"{}\"", save.display())?;
    writeln!(f, "[timestart] 0")?;
    writeln!(f, "[size] 1600 900")?;
    writeln!(f, "[pos] -1 -1")?;
    writeln!(f, "[sst_width] 260")?;
    writeln!(f, "[signals_width] 360")?;
    writeln!(f, "[sst_expanded] 1")?;
    writeln!(f, "[sst_vpaned_height] 240")?;
    if let Some(first) = decls.first() {
        let root = first.scope.split('.').next().unwrap_or("top");
        writeln!(f, "[treeopen] {root}.")?;
    }
    // One group per scope, in order of first declaration.
    let mut scopes: Vec<&str> = Vec::new();
    for d in decls {
        if !scopes.contains(&d.scope.as_str()) {
            scopes.push(&d.scope);
        }
    }
    for scope in scopes {
        writeln!(f, "@{GTKW_GROUP_BEGIN:x}\n-{scope}")?;
        let mut flags = 0;
        for d in decls.iter().filter(|d| d.scope == scope) {
            let want = if d.width == 1 { GTKW_BIN } else { GTKW_HEX };
            if want != flags {
                writeln!(f, "@{want:x}")?;
                flags = want;
            }
            if d.width == 1 {
                writeln!(f, "{}.{}", d.scope, d.name)?;
            } else {
                writeln!(f, "{}.{}[{}:0]", d.scope, d.name, d.width - 1)?;
            }
        }
        writeln!(f, "@{GTKW_GROUP_END:x}\n-{scope}")?;
    }
    writeln!(f, "[pattern_trace] 1\n[pattern_trace] 0")?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::{write_vcd_timestamp, write_vcd_value, VcdId};
    use vcd::{IdCode, Value};

    /// What the `vcd` crate writes for a change (the form rowsim's traces had before it wrote
    /// them itself).
    fn crate_value(code: IdCode, width: u32, v: u64) -> Vec<u8> {
        let mut w = vcd::Writer::new(Vec::new());
        let bit = |b: u64| if b & 1 == 1 { Value::V1 } else { Value::V0 };
        if width == 1 {
            w.change_scalar(code, bit(v)).unwrap();
        } else {
            let top = 64 - v.leading_zeros().min(63);
            w.change_vector(code, (0..top).rev().map(|b| bit(v >> b)))
                .unwrap();
        }
        w.writer().clone()
    }

    #[test]
    fn changes_and_timestamps_are_written_as_the_vcd_crate_writes_them() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let codes = [
            0u64,
            1,
            93,
            94,
            95,
            8835,
            8836,
            1 << 20,
            u32::MAX as u64,
            u64::MAX,
        ];
        for &c in &codes {
            let code = IdCode::from(c);
            let id = VcdId::of(code);
            for width in [1u32, 2, 7, 16, 33, 64] {
                for v in [0, 1, u64::MAX, next(), next() >> (64 - width)] {
                    let v = if width == 64 {
                        v
                    } else {
                        v & ((1 << width) - 1)
                    };
                    let mut ours = Vec::new();
                    write_vcd_value(&mut ours, &id, width, v).unwrap();
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        String::from_utf8(crate_value(code, width, v)).unwrap(),
                        "code {c}, width {width}, value {v:#x}"
                    );
                }
            }
        }
        for t in [
            0u64,
            9,
            10,
            99,
            100,
            101,
            999,
            5_000,
            123_456_789_012,
            u64::MAX,
            next(),
        ] {
            let mut w = vcd::Writer::new(Vec::new());
            w.timestamp(t).unwrap();
            let mut ours = Vec::new();
            write_vcd_timestamp(&mut ours, t).unwrap();
            assert_eq!(&ours, w.writer(), "timestamp {t}");
        }
    }
}
