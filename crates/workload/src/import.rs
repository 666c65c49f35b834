//! Layers from the files other tools use.
//!
//! - **SCALE-Sim topology CSV**: a header, then one layer a row:
//!   `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
//!   Strides,` (the trailing comma optional). SCALE-Sim has no padding and no groups: its IFMAP
//!   size is the padded size (AlexNet CONV2's 27 x 27 with padding 2 is 31 x 31), so layers come
//!   in with `pad = 0` and `H, W` the padded size; a grouped layer is written with its per-group
//!   channels and comes in as one ungrouped layer (the same filters, output and MACs). The first
//!   row is the network's first layer.
//! - **Timeloop problem YAML**: `problem: instance: {C, M, R, S, N, P, Q, Wstride, Hstride}`,
//!   with `Wdilation`/`Hdilation` (must be 1) and `G` (groups; `C` and `M` are then per group)
//!   optional; `problem.shape` and other top-level sections are ignored. The input size follows
//!   from the output size: `H = (P - 1) * Hstride + R`, so again `pad = 0`.
//!
//! A malformed file is refused with the file, the line (or field path) and what was expected.

use std::path::Path;

use crate::layer::ConvLayer;

/// Why a file could not be imported: the message names the file, the line or field, and what
/// was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

const SCALESIM_COLUMNS: [&str; 8] = [
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
];

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path)
        .map_err(|e| ImportError(format!("{}: cannot read: {e}", path.display())))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("imported")
        .to_string()
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Reads every layer of a SCALE-Sim topology file, named `<file stem>:<Layer name>`.
pub fn scalesim_csv(path: &Path) -> Result<Vec<ConvLayer>, ImportError> {
    parse_scalesim(&read(path)?, path)
}

/// [`scalesim_csv`] on text; `path` only names the source in errors and layer names.
pub fn parse_scalesim(text: &str, path: &Path) -> Result<Vec<ConvLayer>, ImportError> {
    let file = path.display();
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, h)| h.trim_start_matches('\u{feff}'))
        .ok_or_else(|| ImportError(format!("{file}: empty; expected a SCALE-Sim topology")))?;
    // SCALE-Sim skips the header and reads columns by position; the header only tells a GEMM
    // file (`Layer, M, N, K`, SCALE-Sim's `-i gemm`) and what a 9th column holds.
    if !header.contains(',') && header.contains('\t') {
        return Err(ImportError(format!(
            "{file}: line 1: tab-separated; SCALE-Sim topologies are comma-separated"
        )));
    }
    let heads: Vec<String> = header.split(',').map(norm).collect();
    let gemm = heads.len() >= 4 && heads[1..4] == ["m", "n", "k"];
    let ninth = heads.get(8).cloned().unwrap_or_default();
    let columns: Vec<&str> = if gemm {
        vec!["Layer", "M", "N", "K"]
    } else {
        SCALESIM_COLUMNS.to_vec()
    };
    let net = stem(path);
    let mut layers: Vec<ConvLayer> = Vec::new();
    let mut seen: std::collections::BTreeMap<String, u32> = Default::default();
    for (k, raw) in lines {
        let line = k + 1;
        let row = raw.trim();
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = row.split(',').map(str::trim).collect();
        // What follows the last comma is dropped, as SCALE-Sim drops it: nothing, or a comment
        // such as `#dw`.
        if fields.len() > 1
            && fields
                .last()
                .is_some_and(|f| f.is_empty() || f.starts_with('#'))
        {
            fields.pop();
        }
        // A row with nothing but a name is a section label (MLPERF.csv joins networks so).
        if fields.iter().skip(1).all(|f| f.is_empty()) {
            continue;
        }
        let name = fields[0];
        if name.is_empty() {
            return Err(ImportError(format!(
                "{file}: line {line}: column 1 (the layer name) is empty"
            )));
        }
        if fields.len() < columns.len() {
            return Err(ImportError(format!(
                "{file}: line {line}: {} columns; a SCALE-Sim {} row has {}: {}",
                fields.len(),
                if gemm { "GEMM" } else { "convolution" },
                columns.len(),
                columns.join(", ")
            )));
        }
        let num = |k: usize| -> Result<u32, ImportError> {
            let v = fields[k];
            v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                ImportError(format!(
                    "{file}: line {line}: column {} (`{}`): `{v}` is not a positive integer",
                    k + 1,
                    columns[k]
                ))
            })
        };
        let ratio = |v: &str| -> Result<(), ImportError> {
            let ok = v.split_once(':').is_some_and(|(n, m)| {
                n.trim().parse::<u32>().is_ok() && m.trim().parse::<u32>().is_ok()
            });
            if ok {
                Ok(())
            } else {
                Err(ImportError(format!(
                    "{file}: line {line}: sparsity `{v}`: expected N:M"
                )))
            }
        };
        let unique = {
            let count = seen.entry(name.to_string()).or_insert(0);
            *count += 1;
            if *count == 1 {
                name.to_string()
            } else {
                format!("{name}_{count}")
            }
        };
        let mut layer = ConvLayer {
            name: format!("{net}:{unique}"),
            n: 1,
            c: 1,
            h: 1,
            w: 1,
            m: 1,
            r: 1,
            s: 1,
            stride_v: 1,
            stride_h: 1,
            pad: 0,
            groups: 1,
            ifmap_zero_fraction: if layers.is_empty() { 0.0 } else { 0.5 },
            first: layers.is_empty(),
        };
        if gemm {
            // An M x K by K x N product is the chip's FC layer over K values with N filters at
            // batch M, as a Timeloop GEMM problem is (SCALE-Sim's own lowering for its
            // systolic array, an M x K ifmap under N filters of 1 x K, is the same product;
            // the Eyeriss chip runs products as FC layers).
            let (m, n, k) = (num(1)?, num(2)?, num(3)?);
            (layer.n, layer.c, layer.m) = (m, k, n);
            if let Some(v) = fields.get(4).filter(|v| !v.is_empty()) {
                ratio(v)?;
            }
        } else {
            layer.h = num(1)?;
            layer.w = num(2)?;
            layer.r = num(3)?;
            layer.s = num(4)?;
            layer.c = num(5)?;
            layer.m = num(6)?;
            layer.stride_v = num(7)?;
            layer.stride_h = layer.stride_v;
            // The 9th column: a batch size, a v3 N:M sparsity (read, not modelled), or a v2
            // horizontal stride; further columns (derived sizes) are ignored.
            if let Some(v) = fields.get(8).filter(|v| !v.is_empty()) {
                if ninth.contains("batch") {
                    layer.n = v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        ImportError(format!(
                            "{file}: line {line}: column 9 (batch size): `{v}` is not a positive integer"
                        ))
                    })?;
                } else if ninth.contains("sparsity") || v.contains(':') {
                    ratio(v)?;
                } else if ninth.is_empty() || ninth.contains("stride") {
                    layer.stride_h = v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        ImportError(format!(
                            "{file}: line {line}: column 9 (horizontal stride): `{v}` is not a positive integer"
                        ))
                    })?;
                }
            }
        }
        layer.validate().map_err(|e| {
            ImportError(format!(
                "{file}: line {line}: layer `{}`: {e}",
                crate::layer::printable(name)
            ))
        })?;
        layers.push(layer);
    }
    if layers.is_empty() {
        return Err(ImportError(format!("{file}: no layers under the header")));
    }
    Ok(layers)
}

#[allow(non_snake_case)] // Timeloop's dimension names
struct TimeloopInstance {
    C: u32,
    M: u32,
    R: u32,
    S: u32,
    N: u32,
    P: u32,
    Q: u32,
    G: u32,
    Wstride: u32,
    Hstride: u32,
}

/// The most text a Timeloop problem may hold once its includes are expanded, and how deep
/// includes may nest: a problem file is a few kB; more is refused, not read.
const TIMELOOP_MAX_BYTES: usize = 1 << 20;
const TIMELOOP_MAX_INCLUDE_DEPTH: u32 = 4;
const TIMELOOP_MAX_NESTING: usize = 64;

/// Expands timeloopfe's Jinja-style `{{include_text('FILE')}}` (FILE relative to the including
/// file), as Timeloop's front end does before it parses the YAML.
fn expand_includes(text: &str, path: &Path, depth: u32) -> Result<String, ImportError> {
    let file = path.display();
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    if depth >= TIMELOOP_MAX_INCLUDE_DEPTH {
        return Err(ImportError(format!(
            "{file}: includes nest deeper than {TIMELOOP_MAX_INCLUDE_DEPTH}"
        )));
    }
    let mut out = String::new();
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        let inner = t
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .map(str::trim)
            .and_then(|r| r.strip_prefix("include_text("))
            .and_then(|r| r.strip_suffix(')'))
            .map(|r| r.trim().trim_matches(|c| c == '\'' || c == '"'));
        match inner {
            Some(rel) => {
                let inc = path.parent().unwrap_or(Path::new(".")).join(rel);
                let meta = std::fs::metadata(&inc).map_err(|e| {
                    ImportError(format!(
                        "{file}: line {}: include_text('{rel}'): {}: {e}",
                        k + 1,
                        inc.display()
                    ))
                })?;
                if meta.len() as usize > TIMELOOP_MAX_BYTES {
                    return Err(ImportError(format!(
                        "{}: {} bytes; a problem file holds at most {TIMELOOP_MAX_BYTES}",
                        inc.display(),
                        meta.len()
                    )));
                }
                out += &expand_includes(&read(&inc)?, &inc, depth + 1)?;
                out.push('\n');
            }
            None if t.starts_with("{{") => {
                return Err(ImportError(format!(
                    "{file}: line {}: `{t}`: the only template supported is {{{{include_text('FILE')}}}}",
                    k + 1
                )))
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
        if out.len() > TIMELOOP_MAX_BYTES {
            return Err(ImportError(format!(
                "{file}: more than {TIMELOOP_MAX_BYTES} bytes with its includes"
            )));
        }
    }
    Ok(out)
}

/// One spelling for each dimension: `HStride` is `Hstride`, pytorch2timeloop's `Groups` is `G`.
fn canonical(key: &str) -> String {
    match key.to_ascii_lowercase().as_str() {
        "hstride" => "Hstride".into(),
        "wstride" => "Wstride".into(),
        "hdilation" => "Hdilation".into(),
        "wdilation" => "Wdilation".into(),
        "groups" => "G".into(),
        _ => key.to_string(),
    }
}

/// Resolves merge keys: timeloopfe's recursive `<<<` and YAML's `<<` take the mapping they name
/// beneath the keys written beside them (those win), merging nested mappings key by key; keys
/// are given their canonical spelling first.
fn resolve_merges(v: serde_norway::Value) -> serde_norway::Value {
    use serde_norway::{Mapping, Value};
    match v {
        Value::Mapping(m) => {
            let mut base: Option<Value> = None;
            let mut own = Mapping::new();
            for (k, v) in m {
                let v = resolve_merges(v);
                match k.as_str() {
                    Some("<<<") | Some("<<") => {
                        base = Some(match base {
                            Some(b) => deep_merge(b, v),
                            None => v,
                        })
                    }
                    Some(s) => {
                        own.insert(Value::String(canonical(s)), v);
                    }
                    None => {
                        own.insert(k, v);
                    }
                }
            }
            match base {
                Some(b) => deep_merge(b, Value::Mapping(own)),
                None => Value::Mapping(own),
            }
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(resolve_merges).collect()),
        Value::Tagged(t) => resolve_merges(t.value),
        other => other,
    }
}

/// `over` on top of `base`: mappings merge key by key, anything else is replaced.
fn deep_merge(base: serde_norway::Value, over: serde_norway::Value) -> serde_norway::Value {
    use serde_norway::Value;
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => deep_merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// A Timeloop problem file: the classic layout (`problem: instance: {C, M, ...}`) and
/// timeloopfe's (`{{include_text('../problem_base.yaml')}}`, `<<<: *problem_base`, an
/// `instance` with only the dimensions that differ). Dimensions left out are 1, as in Timeloop.
pub fn timeloop_yaml(path: &Path) -> Result<ConvLayer, ImportError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ImportError(format!("{}: cannot read: {e}", path.display())))?;
    if meta.len() as usize > TIMELOOP_MAX_BYTES {
        return Err(ImportError(format!(
            "{}: {} bytes; a problem file holds at most {TIMELOOP_MAX_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let text = expand_includes(&read(path)?, path, 0)?;
    parse_timeloop(&text, path)
}

pub fn parse_timeloop(text: &str, path: &Path) -> Result<ConvLayer, ImportError> {
    use serde_norway::Value;
    let file = path.display();
    if text.len() > TIMELOOP_MAX_BYTES {
        return Err(ImportError(format!(
            "{file}: {} bytes; a problem file holds at most {TIMELOOP_MAX_BYTES}",
            text.len()
        )));
    }
    // A problem file is a few levels deep; a pathological nesting is refused before the parser
    // (which would take seconds to give up on it).
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let indent = text
        .lines()
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .max()
        .unwrap_or(0);
    if deepest > TIMELOOP_MAX_NESTING || indent > 8 * TIMELOOP_MAX_NESTING {
        return Err(ImportError(format!(
            "{file}: nested {deepest} brackets deep, indented {indent} columns; a problem file nests at most {TIMELOOP_MAX_NESTING} levels"
        )));
    }
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ImportError(format!(
            "{file}{at}: {msg}; expected `problem: instance: {{C, M, R, S, N, P, Q, Wstride, Hstride}}`"
        ))
    })?;
    let doc = resolve_merges(doc);
    let instance = doc
        .get("problem")
        .and_then(|p| p.get("instance"))
        .and_then(Value::as_mapping)
        .ok_or_else(|| {
            ImportError(format!(
                "{file}: no `problem: instance:` mapping; expected `problem: instance: {{C, M, R, S, N, P, Q, Wstride, Hstride}}`"
            ))
        })?;
    if instance.keys().any(|k| k.as_str() == Some("K")) {
        return gemm(instance, path);
    }
    let mut dims: std::collections::BTreeMap<&str, u32> = [
        "C",
        "M",
        "R",
        "S",
        "N",
        "P",
        "Q",
        "G",
        "Wstride",
        "Hstride",
        "Wdilation",
        "Hdilation",
    ]
    .into_iter()
    .map(|d| (d, 1))
    .collect();
    let mut zero_fraction = 0.5;
    for (k, v) in instance {
        let key = k.as_str().unwrap_or("");
        match key {
            // Timeloop's convolution never uses them (inputs are indexed by P, R, Q, S).
            "H" | "W" => continue,
            "densities" => {
                // Sparseloop: the input density makes the ifmap's zeros.
                let d = v
                    .get("Inputs")
                    .and_then(|i| i.get("density").or(Some(i)))
                    .and_then(Value::as_f64);
                match d {
                    Some(d) if (0.0..=1.0).contains(&d) => zero_fraction = 1.0 - d,
                    Some(d) => {
                        return Err(ImportError(format!(
                        "{file}: problem.instance.densities.Inputs: {d}; a density is from 0 to 1"
                    )))
                    }
                    None => {}
                }
                continue;
            }
            _ => {}
        }
        // (K makes a GEMM problem, read above.)
        let Some(slot) = dims.get_mut(key) else {
            return Err(ImportError(format!(
                "{file}: problem.instance.{key}: unknown dimension; expected C, M, R, S, N, P, Q, G, Wstride, Hstride, Wdilation, Hdilation (or M, N, K for a GEMM)"
            )));
        };
        *slot = dim(&file.to_string(), key, v)?;
    }
    for name in ["Wdilation", "Hdilation"] {
        if dims[name] != 1 {
            return Err(ImportError(format!(
                "{file}: problem.instance.{name}: {}; the machine runs undilated convolutions (1)",
                dims[name]
            )));
        }
    }
    let i = TimeloopInstance {
        C: dims["C"],
        M: dims["M"],
        R: dims["R"],
        S: dims["S"],
        N: dims["N"],
        P: dims["P"],
        Q: dims["Q"],
        G: dims["G"],
        Wstride: dims["Wstride"],
        Hstride: dims["Hstride"],
    };
    let big = |what: &str| {
        ImportError(format!(
            "{file}: problem.instance: {what} overflows 32 bits"
        ))
    };
    let h = (i.P - 1)
        .checked_mul(i.Hstride)
        .and_then(|v| v.checked_add(i.R))
        .ok_or_else(|| big("(P - 1) * Hstride + R"))?;
    let w = (i.Q - 1)
        .checked_mul(i.Wstride)
        .and_then(|v| v.checked_add(i.S))
        .ok_or_else(|| big("(Q - 1) * Wstride + S"))?;
    let layer = ConvLayer {
        name: stem(path),
        n: i.N,
        c: i.C.checked_mul(i.G).ok_or_else(|| big("G * C"))?,
        h,
        w,
        m: i.M.checked_mul(i.G).ok_or_else(|| big("G * M"))?,
        r: i.R,
        s: i.S,
        stride_v: i.Hstride,
        stride_h: i.Wstride,
        pad: 0,
        groups: i.G,
        ifmap_zero_fraction: zero_fraction,
        first: false,
    };
    layer
        .validate()
        .map_err(|e| ImportError(format!("{file}: problem.instance: {e}")))?;
    Ok(layer)
}

/// A positive 32-bit dimension of a problem file.
fn dim(file: &str, key: &str, v: &serde_norway::Value) -> Result<u32, ImportError> {
    match v.as_u64() {
        Some(n) if n >= 1 && n <= u32::MAX as u64 => Ok(n as u32),
        Some(n) if n >= 1 => Err(ImportError(format!(
            "{file}: problem.instance.{key}: {n} overflows 32 bits"
        ))),
        Some(0) => Err(ImportError(format!(
            "{file}: problem.instance.{key}: 0; expected a positive integer"
        ))),
        _ => Err(ImportError(format!(
            "{file}: problem.instance.{key}: invalid type: `{}`; expected a positive integer",
            serde_norway::to_string(v).unwrap_or_default().trim()
        ))),
    }
}

/// A Timeloop GEMM problem (`gemm_ABZ`: `Z[M][N] = sum over K of A[M][K] B[N][K]`, as in
/// timeloop-accelergy-exercises' `layer_shapes/MM/`) as the FC layer the chip runs it as: `A`
/// the activations, its `M` rows the batch and its `K` columns the channels; `B` the weights,
/// its `N` rows the filters. `densities: A` (Sparseloop) makes the activations' zeros; a
/// density of `B` is refused (synthetic weights are dense: prune them with
/// `--weight-density`).
fn gemm(instance: &serde_norway::Mapping, path: &Path) -> Result<ConvLayer, ImportError> {
    use serde_norway::Value;
    let file = path.display().to_string();
    let mut d = [1u32; 3]; // M, N, K
    let mut zero_fraction = 0.5;
    for (k, v) in instance {
        let key = k.as_str().unwrap_or("");
        match key {
            "M" => d[0] = dim(&file, key, v)?,
            "N" => d[1] = dim(&file, key, v)?,
            "K" => d[2] = dim(&file, key, v)?,
            "densities" => {
                for (t, dv) in v.as_mapping().into_iter().flatten() {
                    let t = t.as_str().unwrap_or("");
                    let density = dv.get("density").or(Some(dv)).and_then(Value::as_f64);
                    match (t, density) {
                        ("A", Some(x)) if (0.0..=1.0).contains(&x) => zero_fraction = 1.0 - x,
                        ("A", _) => {
                            return Err(ImportError(format!(
                                "{file}: problem.instance.densities.A: expected a density from 0 to 1"
                            )))
                        }
                        ("B", Some(1.0)) => {}
                        ("B", _) => {
                            return Err(ImportError(format!(
                                "{file}: problem.instance.densities.B: the weights' density is not taken from a problem file (synthetic weights are dense); prune them with --weight-density"
                            )))
                        }
                        (other, _) => {
                            return Err(ImportError(format!(
                                "{file}: problem.instance.densities.{other}: expected A (the activations) or B (the weights)"
                            )))
                        }
                    }
                }
            }
            other => {
                return Err(ImportError(format!(
                    "{file}: problem.instance.{other}: unknown dimension of a GEMM problem; expected M, N, K (and densities)"
                )))
            }
        }
    }
    let [m, n, k] = d;
    // The project's FC layer over K values with N filters, at batch M.
    let layer = ConvLayer {
        name: stem(path),
        n: m,
        ifmap_zero_fraction: zero_fraction,
        ..crate::layer::fc("timeloop", "gemm", k, 1, n)
    };
    layer.validate().map_err(|e| {
        ImportError(format!(
            "{file}: problem.instance (a GEMM, M x K times K x N as an FC layer of batch M): {e}"
        ))
    })?;
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("net.csv")
    }

    #[test]
    fn a_scalesim_row_becomes_a_layer() {
        let t = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
                 Conv1, 227, 227, 11, 11, 3, 96, 4,\n\
                 Conv2, 31, 31, 5, 5, 48, 256, 1,\n";
        let l = parse_scalesim(t, p()).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "net:Conv1");
        assert!(l[0].first && !l[1].first);
        assert_eq!(
            (l[1].c, l[1].h, l[1].m, l[1].r, l[1].stride_v),
            (48, 31, 256, 5, 1)
        );
        assert_eq!((l[1].e(), l[1].f()), (27, 27));
    }

    #[test]
    fn malformed_scalesim_files_name_the_line_and_column() {
        let head = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";
        let e = parse_scalesim(
            &format!("{head}Conv1, 227, 227, 11, 11, 3, 96, four,\n"),
            p(),
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "net.csv: line 2: column 8 (`Strides`): `four` is not a positive integer"
        );
        let e = parse_scalesim(&format!("{head}C, 5, 5, 7, 7, 3, 8, 1,\n"), p()).unwrap_err();
        assert!(e.0.starts_with("net.csv: line 2: layer `C`: "), "{e}");
        let e = parse_scalesim("Name, H, W\nC, 5, 5\n", p()).unwrap_err();
        assert!(
            e.0.starts_with("net.csv: line 2: 3 columns; a SCALE-Sim convolution row has 8"),
            "{e}"
        );
        let e = parse_scalesim(head, p()).unwrap_err();
        assert_eq!(e.0, "net.csv: no layers under the header");
        let e = parse_scalesim(&format!("{head}C, 9, 9, 3, 3, 3, 8, 1, 7:x,\n"), p()).unwrap_err();
        assert!(e.0.contains("line 2: sparsity `7:x`: expected N:M"), "{e}");
        let e = parse_scalesim("Layer name\tIFMAP Height\t\nC\t5\t\n", p()).unwrap_err();
        assert!(e.0.contains("tab-separated"), "{e}");
    }

    /// As SCALE-Sim reads them: the header skipped whatever it says, columns by position, what
    /// follows the last comma dropped (`#dw`), name-only rows skipped, a 9th column read by its
    /// header (batch, sparsity, horizontal stride), repeated names made unique, and GEMM files
    /// (`Layer, M, N, K`) as FC layers of batch M (as Timeloop's GEMM problems).
    #[test]
    fn scalesim_files_read_as_scalesim_reads_them() {
        let t = "Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\
                 AlphaGoZero,\n\
                 Conv2_dw, 112, 112, 3, 3, 1, 1, 1,#dw\n\
                 Conv2_dw, 112, 112, 3, 3, 1, 1, 2\n\
                 ,,,,,,,\n\
                 V2, 9, 9, 3, 3, 2, 4, 1, 2,\n";
        let l = parse_scalesim(t, p()).unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["net:Conv2_dw", "net:Conv2_dw_2", "net:V2"]);
        assert_eq!((l[1].stride_v, l[1].stride_h), (2, 2));
        assert_eq!((l[2].stride_v, l[2].stride_h), (1, 2));
        let b = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, Batch Size,\n\
                 E, 8, 8, 1, 1, 3, 16, 1, 4,\n";
        assert_eq!(parse_scalesim(b, p()).unwrap()[0].n, 4);
        let sp = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, Sparsity,\n\
                  C1, 9, 9, 3, 3, 3, 8, 1, 2:4,\n";
        assert_eq!(parse_scalesim(sp, p()).unwrap()[0].m, 8);
        let g = parse_scalesim("Layer,M,N,K,\nQKT,128,256,64,\n", p()).unwrap();
        assert_eq!(
            (
                g[0].n,
                g[0].h,
                g[0].w,
                g[0].r,
                g[0].s,
                g[0].c,
                g[0].m,
                g[0].e(),
                g[0].f()
            ),
            (128, 1, 1, 1, 1, 64, 256, 1, 1)
        );
        assert_eq!(g[0].macs(), 128 * 256 * 64);
    }

    #[test]
    fn a_timeloop_problem_becomes_a_layer() {
        let t = "problem:\n  shape:\n    name: CNN-Layer\n  instance:\n    C: 48\n    M: 128\n    G: 2\n    R: 5\n    S: 5\n    N: 4\n    P: 27\n    Q: 27\n    Wstride: 1\n    Hstride: 1\n";
        let l = parse_timeloop(t, Path::new("dir/conv2.yaml")).unwrap();
        assert_eq!(l.name, "conv2");
        assert_eq!((l.n, l.c, l.m, l.groups, l.h, l.w), (4, 96, 256, 2, 31, 31));
        assert_eq!((l.e(), l.f()), (27, 27));
    }

    #[test]
    fn malformed_timeloop_files_name_the_field() {
        let y = Path::new("l.yaml");
        // Dimensions left out are 1, as in Timeloop: this is a 1x1 convolution of a 1x1 input.
        let l = parse_timeloop("problem:\n  instance:\n    C: 3\n    M: 8\n", y).unwrap();
        assert_eq!((l.c, l.m, l.r, l.h, l.e()), (3, 8, 1, 1, 1));
        // K makes it a GEMM problem, whose dimensions are M, N and K only.
        let e = parse_timeloop(
            "problem:\n  instance: {C: 3, M: 8, R: 3, S: 3, N: 1, P: 5, Q: 5, K: 2}\n",
            y,
        )
        .unwrap_err();
        assert!(
            e.0.contains(
                "problem.instance.C: unknown dimension of a GEMM problem; expected M, N, K"
            ),
            "{e}"
        );
        // timeloop-accelergy-exercises' MM/ResNet50_repr/M1024-K512-N256.yaml, as it is laid
        // out (its instance: K 1024, M 512, N 256, A half dense).
        let mm = "problem:\n  version: 0.4\n  instance:\n    K: 1024\n    M: 512\n    N: 256\n    densities:\n      A:\n        density: 0.5\n        distribution: fixed_structured\n  shape:\n    name: gemm_ABZ\n    dimensions:\n    - M\n    - N\n    - K\n";
        let l = parse_timeloop(mm, Path::new("M1024-K512-N256.yaml")).unwrap();
        assert_eq!(
            (l.n, l.c, l.h, l.w, l.m, l.r, l.s),
            (512, 1024, 1, 1, 256, 1, 1)
        );
        assert_eq!(l.ifmap_zero_fraction, 0.5);
        assert_eq!(l.macs(), 512 * 1024 * 256);
        let e = parse_timeloop("problem:\n  shape: {}\n", y).unwrap_err();
        assert!(e.0.contains("no `problem: instance:` mapping"), "{e}");
        let e = parse_timeloop(
            "problem:\n  instance: {C: 3, M: 8, R: 3, S: 3, N: 1, P: 0, Q: 5}\n",
            y,
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "l.yaml: problem.instance.P: 0; expected a positive integer"
        );
        let e = parse_timeloop(
            "problem:\n  instance: {C: 3, M: 8, R: 3, S: 3, N: 1, P: 5, Q: 5, Hdilation: 2}\n",
            y,
        )
        .unwrap_err();
        assert!(e.0.contains("Hdilation: 2"), "{e}");
        let e = parse_timeloop("problem:\n  instance: {C: x}\n", y).unwrap_err();
        assert!(e.0.contains("problem.instance.C: invalid type"), "{e}");
    }

    /// timeloopfe's layout: the base problem included by path, merged with `<<<`, the instance
    /// holding only what differs, `HStride` spelled so; Sparseloop's densities; `Groups`.
    #[test]
    fn a_timeloopfe_problem_with_an_include_and_a_merge_key_imports() {
        let dir = std::env::temp_dir().join(format!("rowsim-tlfe-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("alexnet")).unwrap();
        std::fs::write(
            dir.join("problem_base.yaml"),
            "problem_base_ignore: &problem_base\n  version: 0.4\n  instance:\n    N: 1\n    C: 1\n    H: 1\n    W: 1\n    G: 1\n    R: 1\n    S: 1\n    Hdilation: 1\n    Hstride: 1\n    Wdilation: 1\n    Wstride: 1\n    M: 1\n    P: 1\n    Q: 1\n  shape:\n    dimensions: [C, M, R, S]\n",
        )
        .unwrap();
        let f = dir.join("alexnet/0.yaml");
        std::fs::write(
            &f,
            "{{include_text('../problem_base.yaml')}}\nproblem:\n  <<<: *problem_base\n  instance: {C: 3, M: 64, P: 55, Q: 55, R: 11, S: 11, HStride: 4, WStride: 4}\n\n",
        )
        .unwrap();
        let l = timeloop_yaml(&f).unwrap();
        assert_eq!(
            (l.n, l.c, l.m, l.r, l.s, l.stride_v, l.stride_h, l.h, l.e()),
            (1, 3, 64, 11, 11, 4, 4, 227, 55)
        );
        let g = dir.join("alexnet/dw.yaml");
        std::fs::write(
            &g,
            "{{include_text('../problem_base.yaml')}}\nproblem:\n  <<<: *problem_base\n  instance: {Groups: 16, P: 112, Q: 112, R: 3, S: 3, densities: {Inputs: {density: 0.3}}}\n",
        )
        .unwrap();
        let l = timeloop_yaml(&g).unwrap();
        assert_eq!((l.c, l.m, l.groups), (16, 16, 16));
        assert!((l.ifmap_zero_fraction - 0.7).abs() < 1e-9);
        let bad = dir.join("alexnet/bad.yaml");
        std::fs::write(&bad, "{{include_text('../nope.yaml')}}\nproblem: {}\n").unwrap();
        let e = timeloop_yaml(&bad).unwrap_err();
        assert!(
            e.0.contains("bad.yaml: line 1: include_text('../nope.yaml')"),
            "{e}"
        );
        let selfref = dir.join("alexnet/loop.yaml");
        std::fs::write(&selfref, "{{include_text('loop.yaml')}}\n").unwrap();
        let e = timeloop_yaml(&selfref).unwrap_err();
        assert!(e.0.contains("includes nest deeper than"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
