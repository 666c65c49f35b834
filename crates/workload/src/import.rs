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

use serde::Deserialize;

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
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = rdr
        .headers()
        .map_err(|e| ImportError(format!("{file}: line 1: {e}")))?
        .clone();
    for (k, want) in SCALESIM_COLUMNS.iter().enumerate() {
        match header.get(k) {
            Some(h) if norm(h) == norm(want) => {}
            got => {
                return Err(ImportError(format!(
                    "{file}: line 1: column {} is `{}`; a SCALE-Sim topology starts with the columns `{}`",
                    k + 1,
                    got.unwrap_or(""),
                    SCALESIM_COLUMNS.join(", ")
                )))
            }
        }
    }
    let net = stem(path);
    let mut layers: Vec<ConvLayer> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ImportError(format!("{file}: line {line}: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let extra = rec.iter().skip(8).find(|f| !f.is_empty());
        if let Some(x) = extra {
            return Err(ImportError(format!(
                "{file}: line {line}: unexpected value `{x}` after the 8 columns ({})",
                SCALESIM_COLUMNS.join(", ")
            )));
        }
        let num = |k: usize| -> Result<u32, ImportError> {
            let v = rec.get(k).unwrap_or("");
            v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                ImportError(format!(
                    "{file}: line {line}: column `{}`: `{v}` is not a positive integer",
                    SCALESIM_COLUMNS[k]
                ))
            })
        };
        let name = rec.get(0).unwrap_or("");
        if name.is_empty() {
            return Err(ImportError(format!(
                "{file}: line {line}: column `Layer name` is empty"
            )));
        }
        let stride = num(7)?;
        let layer = ConvLayer {
            name: format!("{net}:{name}"),
            n: 1,
            c: num(5)?,
            h: num(1)?,
            w: num(2)?,
            m: num(6)?,
            r: num(3)?,
            s: num(4)?,
            stride_v: stride,
            stride_h: stride,
            pad: 0,
            groups: 1,
            ifmap_zero_fraction: if layers.is_empty() { 0.0 } else { 0.5 },
            first: layers.is_empty(),
        };
        layer
            .validate()
            .map_err(|e| ImportError(format!("{file}: line {line}: layer `{name}`: {e}")))?;
        if layers.iter().any(|l| l.name == layer.name) {
            return Err(ImportError(format!(
                "{file}: line {line}: a second layer named `{name}`"
            )));
        }
        layers.push(layer);
    }
    if layers.is_empty() {
        return Err(ImportError(format!("{file}: no layers under the header")));
    }
    Ok(layers)
}

#[derive(Deserialize)]
struct TimeloopFile {
    problem: TimeloopProblem,
}

#[derive(Deserialize)]
struct TimeloopProblem {
    instance: TimeloopInstance,
}

#[allow(non_snake_case)] // Timeloop's dimension names
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeloopInstance {
    C: u32,
    M: u32,
    R: u32,
    S: u32,
    N: u32,
    P: u32,
    Q: u32,
    #[serde(default = "one")]
    Wstride: u32,
    #[serde(default = "one")]
    Hstride: u32,
    #[serde(default = "one")]
    Wdilation: u32,
    #[serde(default = "one")]
    Hdilation: u32,
    #[serde(default = "one")]
    G: u32,
}

fn one() -> u32 {
    1
}

/// Reads the layer of a Timeloop problem file, named `<file stem>`.
pub fn timeloop_yaml(path: &Path) -> Result<ConvLayer, ImportError> {
    parse_timeloop(&read(path)?, path)
}

/// [`timeloop_yaml`] on text; `path` only names the source in errors and the layer.
pub fn parse_timeloop(text: &str, path: &Path) -> Result<ConvLayer, ImportError> {
    let file = path.display();
    let f: TimeloopFile = serde_norway::from_str(text).map_err(|e| {
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
    let i = f.problem.instance;
    for (name, v) in [
        ("C", i.C),
        ("M", i.M),
        ("R", i.R),
        ("S", i.S),
        ("N", i.N),
        ("P", i.P),
        ("Q", i.Q),
        ("Wstride", i.Wstride),
        ("Hstride", i.Hstride),
        ("G", i.G),
    ] {
        if v == 0 {
            return Err(ImportError(format!(
                "{file}: problem.instance.{name}: 0; expected a positive integer"
            )));
        }
    }
    for (name, v) in [("Wdilation", i.Wdilation), ("Hdilation", i.Hdilation)] {
        if v != 1 {
            return Err(ImportError(format!(
                "{file}: problem.instance.{name}: {v}; the machine runs undilated convolutions (1)"
            )));
        }
    }
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
        ifmap_zero_fraction: 0.5,
        first: false,
    };
    layer
        .validate()
        .map_err(|e| ImportError(format!("{file}: problem.instance: {e}")))?;
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
            "net.csv: line 2: column `Strides`: `four` is not a positive integer"
        );
        let e = parse_scalesim(&format!("{head}C, 5, 5, 7, 7, 3, 8, 1,\n"), p()).unwrap_err();
        assert!(e.0.starts_with("net.csv: line 2: layer `C`: "), "{e}");
        let e = parse_scalesim("Name, H, W\nC, 5, 5\n", p()).unwrap_err();
        assert!(
            e.0.starts_with("net.csv: line 1: column 1 is `Name`"),
            "{e}"
        );
        let e = parse_scalesim(head, p()).unwrap_err();
        assert_eq!(e.0, "net.csv: no layers under the header");
        let e = parse_scalesim(&format!("{head}C, 9, 9, 3, 3, 3, 8, 1, 7\n"), p()).unwrap_err();
        assert!(e.0.contains("line 2: unexpected value `7`"), "{e}");
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
        let e = parse_timeloop("problem:\n  instance:\n    C: 3\n    M: 8\n", y).unwrap_err();
        assert!(
            e.0.starts_with("l.yaml (line 3, column 5): problem.instance: missing field `R`"),
            "{e}"
        );
        let e = parse_timeloop(
            "problem:\n  instance: {C: 3, M: 8, R: 3, S: 3, N: 1, P: 5, Q: 5, K: 2}\n",
            y,
        )
        .unwrap_err();
        assert!(e.0.contains("unknown field `K`"), "{e}");
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
}
