//! VCDs read back with `wellen`, an independent reader, as value changes per signal.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Every signal of a VCD (by full dotted name, vectors without their `[msb:lsb]`), with its
/// value changes as (time in the file's units, value).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Waves {
    pub signals: BTreeMap<String, Vec<(u64, u64)>>,
    pub widths: BTreeMap<String, u32>,
    /// The last timestamp in the file.
    pub end: u64,
}

/// Reads a VCD with wellen. Values with x or z bits are an error: rowsim writes only 0 and 1.
pub fn read(path: &Path) -> Result<Waves, String> {
    // wellen panics on a file it cannot open; say so plainly instead.
    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut wave = wellen::simple::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let h = wave.hierarchy();
    let vars: Vec<(String, u32, wellen::SignalRef)> = h
        .all_vars()
        .map(|v| {
            let var = &h[v];
            (
                var.full_name(h),
                var.length(h).unwrap_or(0),
                var.signal_ref(),
            )
        })
        .collect();
    let refs: Vec<_> = vars.iter().map(|v| v.2).collect();
    wave.load_signals(&refs);
    let times = wave.time_table().to_vec();
    let mut out = Waves {
        end: times.last().copied().unwrap_or(0),
        ..Default::default()
    };
    for (name, width, r) in vars {
        let sig = wave
            .get_signal(r)
            .ok_or_else(|| format!("{}: signal {name} did not load", path.display()))?;
        let mut changes = Vec::new();
        for (ti, value) in sig.iter_changes() {
            let bits = value
                .to_bit_string()
                .ok_or_else(|| format!("{name}: not a bit vector"))?;
            let v = u64::from_str_radix(&bits, 2).map_err(|_| {
                format!(
                    "{name} at {}: value `{bits}` is not 0/1 bits",
                    times[ti as usize]
                )
            })?;
            changes.push((times[ti as usize], v));
        }
        out.widths.insert(name.clone(), width);
        out.signals.insert(name, changes);
    }
    Ok(out)
}

/// The same waves with any `[msb:lsb]` left on a signal's name dropped (an FST keeps a
/// vector's range in its name, as vcd2fst writes it; a VCD keeps it apart).
pub fn without_ranges(w: Waves) -> Waves {
    let strip = |n: String| match n.rfind('[') {
        Some(i) if n.ends_with(']') => n[..i].to_string(),
        _ => n,
    };
    Waves {
        signals: w.signals.into_iter().map(|(k, v)| (strip(k), v)).collect(),
        widths: w.widths.into_iter().map(|(k, v)| (strip(k), v)).collect(),
        end: w.end,
    }
}

impl Waves {
    /// The value `signal` holds at time `t`: its last change at or before `t`.
    pub fn value_at(&self, signal: &str, t: u64) -> Option<u64> {
        let changes = self.signals.get(signal)?;
        changes.iter().take_while(|c| c.0 <= t).last().map(|c| c.1)
    }
}

/// The first place two traces disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub time: u64,
    pub signal: String,
    pub expected: Option<u64>,
    pub got: Option<u64>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or("(no change)".to_string(), |v| format!("{v:#x}"));
        write!(
            f,
            "first difference at t={} signal {}: expected {}, got {}",
            self.time,
            self.signal,
            show(self.expected),
            show(self.got)
        )
    }
}

/// Compares two traces signal by signal and returns the earliest difference (ties broken by
/// signal name): a signal missing on one side, a change at a different time, a different value.
pub fn first_difference(expected: &Waves, got: &Waves) -> Option<Difference> {
    let mut best: Option<Difference> = None;
    let mut consider = |d: Difference| {
        if best
            .as_ref()
            .is_none_or(|b| (d.time, &d.signal) < (b.time, &b.signal))
        {
            best = Some(d);
        }
    };
    let names: std::collections::BTreeSet<&String> =
        expected.signals.keys().chain(got.signals.keys()).collect();
    for name in names {
        let (e, g) = (expected.signals.get(name), got.signals.get(name));
        let (Some(e), Some(g)) = (e, g) else {
            let first = e.or(g).and_then(|c| c.first()).copied().unwrap_or((0, 0));
            consider(Difference {
                time: first.0,
                signal: format!(
                    "{name} (only in the {} trace)",
                    if e.is_some() { "expected" } else { "new" }
                ),
                expected: e.map(|_| first.1),
                got: g.map(|_| first.1),
            });
            continue;
        };
        let n = e.len().max(g.len());
        for i in 0..n {
            let (ei, gi) = (e.get(i), g.get(i));
            if ei == gi {
                continue;
            }
            let time = match (ei, gi) {
                (Some(a), Some(b)) => a.0.min(b.0),
                (Some(a), None) | (None, Some(a)) => a.0,
                (None, None) => unreachable!(),
            };
            let at = |c: Option<&(u64, u64)>| c.filter(|c| c.0 == time).map(|c| c.1);
            consider(Difference {
                time,
                signal: name.clone(),
                expected: at(ei),
                got: at(gi),
            });
            break;
        }
    }
    best
}

/// The golden folder of the workspace (`golden/`).
pub fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// Compares a fresh trace with its golden file (`golden/<name>`), signal by signal, and returns
/// the fresh trace's waves. With `ROWSIM_BLESS` set, the fresh trace and its `.gtkw` replace the
/// golden ones first (review the diff before committing: golden files change only on purpose).
/// Panics with the first difference as (time, signal, expected, got).
pub fn check_golden(fresh: &Path, name: &str) -> Waves {
    let golden = golden_dir().join(name);
    if std::env::var_os("ROWSIM_BLESS").is_some() {
        let dir = golden.parent().expect("a golden file sits in a folder");
        std::fs::create_dir_all(dir).expect("cannot create the golden folder");
        std::fs::copy(fresh, &golden).expect("cannot bless the golden VCD");
        std::fs::copy(fresh.with_extension("gtkw"), golden.with_extension("gtkw"))
            .expect("cannot bless the golden save file");
    }
    let want = read(&golden).unwrap_or_else(|e| panic!("{e}"));
    let got = read(fresh).unwrap_or_else(|e| panic!("{e}"));
    if let Some(d) = first_difference(&want, &got) {
        panic!(
            "{d}\n(golden {}, new {})",
            golden.display(),
            fresh.display()
        );
    }
    got
}
