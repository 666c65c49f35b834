//! `rowsim report`: statistics files as a table, and as SVG charts drawn the way the Eyeriss
//! papers draw their breakdowns (energy per MAC by level and by data type, stacked per layer;
//! cycles per layer).
//!
//! Reads what `rowsim run --stats-json` writes (a JSON array of layer statistics) and what
//! `rowsim sweep`/`rowsim merge` write (JSON lines whose `stats` field is one). Each row is
//! labelled by its layer, and by its point or machine when the rows come from several.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use plotters::prelude::*;
use rowsim_chip::LayerStats;
use rowsim_workload::printable;

use crate::node_report::{node_rows, node_table, nodes_svg, NodeRow};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Statistics files: `rowsim run --stats-json` output (a model run's too), or sweep JSON
    /// lines.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also draw the charts into this SVG file (with model runs, `STEM-density.svg` beside it:
    /// energy, cycles and accuracy against weight density, a line per machine and pruning; and
    /// `STEM-nodes.svg`: energy, cycles and MAC utilization per node, `-nodes-K` with several).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// One bar of the charts, one line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub stats: LayerStats,
}

/// A file's statistics, each with the sweep point it belongs to (if any).
pub type FileRows = Vec<(Option<String>, LayerStats)>;

/// Reads one statistics file: a JSON array of layer statistics, or JSON lines each holding one
/// (bare or as the `stats` field of a sweep record, whose `point` labels it).
pub fn read_rows(path: &Path) -> anyhow::Result<FileRows> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // A model run's statistics (`rowsim run --net model.onnx`): its per-layer list.
    if text.trim_start().starts_with('{') {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(layers) = m.get("layers") {
                let v: Vec<LayerStats> = serde_json::from_value(layers.clone()).map_err(|e| {
                    anyhow!(
                        "{}: `layers`: {e}; expected the layer statistics `rowsim run --net model.onnx --stats-json` writes",
                        path.display()
                    )
                })?;
                if v.is_empty() {
                    bail!("{}: no layers in the model's statistics", path.display());
                }
                return checked(path, v.into_iter().map(|s| (None, s)).collect());
            }
        }
    }
    if text.trim_start().starts_with('[') {
        let v: Vec<LayerStats> = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{}:{}:{}: {e}; expected the layer statistics `rowsim run --stats-json` writes",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if v.is_empty() {
            bail!(
                "{}: no layers in the statistics (an empty list)",
                path.display()
            );
        }
        let rows: FileRows = v.into_iter().map(|s| (None, s)).collect();
        return checked(path, rows);
    }
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: serde_json::Error| {
            anyhow!(
                "{}:{}:{}: {e}; expected a sweep record or layer statistics",
                path.display(),
                k + 1,
                e.column()
            )
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(at)?;
        if let Some(e) = v.get("error") {
            eprintln!(
                "{}:{}: skipping a point that did not run: {e}",
                path.display(),
                k + 1
            );
            continue;
        }
        let (point, stats) = match v.get("stats") {
            Some(s) => (
                v.get("point").map(|p| match p {
                    serde_json::Value::Object(m) => m
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                serde_json::from_value::<LayerStats>(s.clone()).map_err(at)?,
            ),
            None => (None, serde_json::from_value::<LayerStats>(v).map_err(at)?),
        };
        out.push((point, stats));
    }
    if out.is_empty() {
        bail!("{}: no statistics in the file", path.display());
    }
    checked(path, out)
}

/// Refuses rows no run writes: a layer of no MACs (every figure of the report is per MAC; a
/// layer rowsim runs has at least one).
fn checked(path: &Path, rows: FileRows) -> anyhow::Result<FileRows> {
    if let Some((_, s)) = rows.iter().find(|(_, s)| s.macs.total == 0) {
        bail!(
            "{}: layer `{}` has 0 MACs: the report gives energy and accesses per MAC, and a layer rowsim runs has at least one",
            path.display(),
            rowsim_workload::printable(&s.layer)
        );
    }
    Ok(rows)
}

/// Labels rows by layer, adding the point, the machine or the file when rows come from several.
pub fn label_rows(files: &[(PathBuf, FileRows)]) -> Vec<Row> {
    let hws: BTreeSet<&str> = files
        .iter()
        .flat_map(|f| f.1.iter().map(|r| r.1.hw.as_str()))
        .collect();
    let several_files = files.len() > 1;
    let mut rows = Vec::new();
    for (path, rs) in files {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        for (point, s) in rs {
            // Names from the file, printed: control characters escaped.
            let mut label = printable(&s.layer).into_owned();
            if let Some(p) = point {
                label = format!("{label} [{}]", printable(p));
            } else if hws.len() > 1 {
                label = format!("{} {label}", printable(&s.hw));
            } else if several_files {
                label = format!("{}: {label}", printable(stem));
            }
            rows.push(Row {
                label,
                stats: s.clone(),
            });
        }
    }
    rows
}

/// The table: per row, cycles, MACs, energy per MAC in all, by level and by data type, and DRAM
/// accesses per MAC.
pub fn table(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.label.len()).max().unwrap_or(5).max(5);
    let mut o = format!(
        "{:<w$} {:>12} {:>14} {:>9} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9}\n",
        "layer",
        "cycles",
        "MACs",
        "E/MAC",
        "DRAM",
        "GLB",
        "NoC",
        "spad",
        "MAC",
        "filter",
        "ifmap",
        "psum",
        "DRAM/MAC"
    );
    o.push_str(&format!(
        "{:<w$} {:>12} {:>14} {:>9} | {:^44} | {:^26} | {:>9}\n",
        "", "(core)", "", "", "energy per MAC by level", "energy per MAC by type", "accesses"
    ));
    for r in rows {
        let s = &r.stats;
        let macs = s.macs.total.max(1) as f64;
        let e = &s.energy;
        let (l, t) = (&e.by_level, &e.by_type);
        o.push_str(&format!(
            "{:<w$} {:>12} {:>14} {:>9.3} | {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} | {:>8.3} {:>8.3} {:>8.3} | {:>9.4}\n",
            r.label,
            s.cycles.core_total,
            s.macs.total,
            e.total / macs,
            l.dram / macs,
            l.glb / macs,
            l.noc / macs,
            l.spad / macs,
            l.mac / macs,
            t.filter / macs,
            t.ifmap / macs,
            t.psum / macs,
            s.accesses_words.dram.total() as f64 / macs,
        ));
    }
    if let Some(unit) = rows.first().map(|r| r.stats.energy.unit.as_str()) {
        o.push_str(&format!(
            "energy in units of one {unit} (the config's energy table); accesses in 16-bit words\n"
        ));
    }
    o
}

type Segment<'a> = (&'a str, RGBColor, Value);

/// What a chart's segment shows of a layer.
#[derive(Clone, Copy)]
enum Value {
    Stat(fn(&LayerStats) -> f64),
    /// A cause's share of the PE cycle account, in percent (runs only).
    PeShare(fn(&rowsim_chip::PeCycles) -> u64),
}

impl Value {
    fn of(self, s: &LayerStats) -> f64 {
        match self {
            Value::Stat(f) => f(s),
            Value::PeShare(f) => s
                .pe_cycles
                .as_ref()
                .map_or(0.0, |p| 100.0 * f(p) as f64 / p.total().max(1) as f64),
        }
    }
}

const LEVELS: [Segment; 5] = [
    (
        "DRAM",
        RGBColor(0x4c, 0x72, 0xb0),
        Value::Stat(|s| s.energy.by_level.dram),
    ),
    (
        "GLB",
        RGBColor(0xdd, 0x84, 0x52),
        Value::Stat(|s| s.energy.by_level.glb),
    ),
    (
        "NoC",
        RGBColor(0x55, 0xa8, 0x68),
        Value::Stat(|s| s.energy.by_level.noc),
    ),
    (
        "spad (RF)",
        RGBColor(0xc4, 0x4e, 0x52),
        Value::Stat(|s| s.energy.by_level.spad),
    ),
    (
        "MAC (ALU)",
        RGBColor(0x81, 0x72, 0xb3),
        Value::Stat(|s| s.energy.by_level.mac),
    ),
];

const TYPES: [Segment; 3] = [
    (
        "filters",
        RGBColor(0x4c, 0x72, 0xb0),
        Value::Stat(|s| s.energy.by_type.filter),
    ),
    (
        "ifmaps",
        RGBColor(0xdd, 0x84, 0x52),
        Value::Stat(|s| s.energy.by_type.ifmap),
    ),
    (
        "psums",
        RGBColor(0x55, 0xa8, 0x68),
        Value::Stat(|s| s.energy.by_type.psum),
    ),
];

/// The PE cycle account's causes, each once (`PeCycles::CAUSES`): the chart's segments, a
/// share of `pes_used * core_total` (runs only).
fn pe_cycle_segments() -> Vec<Segment<'static>> {
    rowsim_chip::PeCycles::CAUSES
        .iter()
        .map(|c| {
            let (r, g, b) = c.rgb;
            (c.label, RGBColor(r, g, b), Value::PeShare(c.get))
        })
        .collect()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A y-axis value, scaled to the axis's top: 1.4G, 2.5M, 12k or 3.2.
pub(crate) fn axis_label(v: f64, top: f64) -> String {
    if top >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if top >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if top >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// The most characters of a bar's label drawn under it (the table prints it whole).
const LABEL_CHARS: usize = 72;

/// A label cut to [`LABEL_CHARS`] (with `...` where it was cut).
fn short_label(l: &str) -> String {
    cut(l, LABEL_CHARS)
}

/// `l` cut to `n` characters, `...` ending it where it was cut.
pub(crate) fn cut(l: &str, n: usize) -> String {
    if l.chars().count() <= n {
        l.to_string()
    } else {
        l.chars().take(n.saturating_sub(3)).collect::<String>() + "..."
    }
}

/// Pixels of a bar's slot on the x axis, and of a character of a 13-pixel label (a bound on
/// sans-serif's average width, so labels never reach their neighbours).
const SLOT_PX: usize = 90;
const CHAR_PX: usize = 8;

/// The height of the x-label area, and whether labels are drawn turned a quarter (when the
/// longest does not fit its bar's slot): turned, each takes a line's height across, so none
/// overlaps, and the area is as tall as the longest label, so none is clipped.
pub(crate) fn label_layout(labels: &[String]) -> (u32, bool) {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    if longest * CHAR_PX <= SLOT_PX - 10 {
        (70, false)
    } else {
        ((longest * CHAR_PX + 20) as u32, true)
    }
}

/// A turned label's style: a quarter clockwise, anchored at its start.
pub(crate) fn label_style() -> TextStyle<'static> {
    TextStyle::from(
        ("sans-serif", 13)
            .into_font()
            .transform(FontTransform::Rotate90),
    )
    .pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Top,
    ))
}

/// The charts' height: each panel's plot and its label area.
fn chart_height(labels: &[String], panels: u32) -> u32 {
    panels * (380 + label_layout(labels).0)
}

/// The x labels under a chart's bars (bar `i` at x = `i`), turned a quarter clockwise: each
/// reads downwards from under its bar.
pub(crate) fn turned_labels(
    area: &Area,
    chart: &ChartContext<
        SVGBackend,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    labels: &[String],
) -> anyhow::Result<()> {
    let base = area.get_base_pixel();
    for (i, l) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64, 0.0));
        area.draw(&Text::new(
            l.clone(),
            (x - base.0 - 6, y - base.1 + 8),
            label_style(),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}

pub(crate) fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart: {e:?}")
}

/// A stacked bar per row: each segment's value per MAC (or the raw value when `per_mac` is
/// false, for one segment).
fn stacked(
    area: &Area,
    rows: &[Row],
    title: &str,
    y_desc: &str,
    segments: &[Segment],
    per_mac: bool,
    headroom: f64,
) -> anyhow::Result<()> {
    let n = rows.len();
    let value = |r: &Row, f: Value| {
        let v = f.of(&r.stats);
        if per_mac {
            v / r.stats.macs.total.max(1) as f64
        } else {
            v
        }
    };
    let top = rows
        .iter()
        .map(|r| segments.iter().map(|s| value(r, s.2)).sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-9)
        * headroom;
    let labels: Vec<String> = rows.iter().map(|r| short_label(&r.label)).collect();
    let (label_area, rotate) = label_layout(&labels);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(label_area)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let k = x.round();
            if !rotate && (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() {
                labels[k as usize].clone()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 13))
        .y_desc(y_desc)
        .y_label_formatter(&|v| axis_label(*v, top))
        .draw()
        .map_err(draw_err)?;
    if rotate {
        turned_labels(area, &chart, &labels)?;
    }
    for (name, color, f) in segments {
        let bars: Vec<(f64, f64, f64)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let below: f64 = segments
                    .iter()
                    .take_while(|s| s.0 != *name)
                    .map(|s| value(r, s.2))
                    .sum();
                (i as f64, below, below + value(r, *f))
            })
            .collect();
        let color = *color;
        chart
            .draw_series(bars.into_iter().map(move |(x, y0, y1)| {
                Rectangle::new([(x - 0.35, y0), (x + 0.35, y1)], color.filled())
            }))
            .map_err(draw_err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    if segments.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// A heatmap per row of the PEs' utilization (MAC slots over core cycles) on the array, in the
/// style of the papers' PE-array figures; white is idle, dark blue is a MAC slot every cycle.
fn heatmaps(area: &Area, rows: &[Row]) -> anyhow::Result<()> {
    let with: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.stats.pe_utilization.is_empty())
        .collect();
    area.titled(
        "PE utilization (MAC slots / core cycles) on the array",
        ("sans-serif", 22),
    )
    .map_err(draw_err)?;
    if with.is_empty() {
        return Ok(());
    }
    let inner = area.margin(40, 10, 10, 10);
    let cells = inner.split_evenly((1, with.len()));
    for (cell, r) in cells.iter().zip(with) {
        let u = &r.stats.pe_utilization;
        let [rows_n, cols_n] = r.stats.array.unwrap_or([
            u.iter().map(|p| p.row + 1).max().unwrap_or(1),
            u.iter().map(|p| p.col + 1).max().unwrap_or(1),
        ]);
        let cycles = r.stats.cycles.core_total.max(1) as f64;
        // The caption cut to the cell's width (the table has the whole label), so captions
        // never run into each other.
        let fit = (cell.dim_in_pixel().0 as usize / CHAR_PX).max(4);
        let caption = cut(&r.label, fit);
        let mut chart = ChartBuilder::on(cell)
            .caption(caption, ("sans-serif", 13))
            .margin(6)
            .build_cartesian_2d(0f64..cols_n as f64, 0f64..rows_n as f64)
            .map_err(draw_err)?;
        // A cell per PE, row 0 at the top, a little inset so the grid shows.
        let cell_at = |row: u32, col: u32| {
            let (x, y) = (col as f64, (rows_n - 1 - row) as f64);
            [(x + 0.06, y + 0.06), (x + 0.94, y + 0.94)]
        };
        chart
            .draw_series((0..rows_n).flat_map(|row| {
                (0..cols_n).map(move |col| {
                    Rectangle::new(cell_at(row, col), RGBColor(0xee, 0xee, 0xee).filled())
                })
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(u.iter().map(|p| {
                let f = (p.mac_slots as f64 / cycles).clamp(0.0, 1.0);
                let mix = |lo: f64, hi: f64| (lo + (hi - lo) * f) as u8;
                Rectangle::new(
                    cell_at(p.row, p.col),
                    RGBColor(
                        mix(255.0, 0x1f as f64),
                        mix(255.0, 0x3a as f64),
                        mix(255.0, 0x93 as f64),
                    )
                    .filled(),
                )
            }))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// Draws the charts into one SVG.
pub fn svg(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let width = (220 + SLOT_PX as u32 * rows.len() as u32).max(900);
    let labels: Vec<String> = rows.iter().map(|r| short_label(&r.label)).collect();
    let height = chart_height(&labels, 5) + 450;
    {
        let root = SVGBackend::new(path, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (charts, heat) = root.split_vertically(height - 450);
        let mut panels = charts.split_evenly((5, 1));
        panels.push(heat);
        let unit = rows
            .first()
            .map(|r| r.stats.energy.unit.clone())
            .unwrap_or_default();
        stacked(
            &panels[0],
            rows,
            "Energy per MAC by level",
            &format!("energy / MAC ({unit} units)"),
            &LEVELS,
            true,
            1.15,
        )?;
        stacked(
            &panels[1],
            rows,
            "Data-movement energy per MAC by data type",
            &format!("energy / MAC ({unit} units)"),
            &TYPES,
            true,
            1.15,
        )?;
        // A network's energy breakdown, layer by layer (not per MAC: where the energy goes).
        stacked(
            &panels[2],
            rows,
            "Energy per layer by level",
            &format!("energy ({unit} units)"),
            &LEVELS,
            false,
            1.15,
        )?;
        stacked(
            &panels[3],
            rows,
            "Core cycles per layer",
            "core cycles",
            &[(
                "cycles",
                RGBColor(0x4c, 0x72, 0xb0),
                Value::Stat(|s| s.cycles.core_total as f64),
            )],
            false,
            1.15,
        )?;
        stacked(
            &panels[4],
            rows,
            "PE cycles by what the PEs did (simulated runs)",
            "% of PEs used x core cycles",
            &pe_cycle_segments(),
            false,
            2.0,
        )?;
        heatmaps(&panels[5], rows)?;
        root.present()
            .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
    }
    Ok(())
}

pub fn run(a: &ReportArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for f in &a.files {
        files.push((f.clone(), read_rows(f)?));
    }
    let rows = label_rows(&files);
    print!("{}", table(&rows));
    let points: Vec<ModelPoint> = a.files.iter().filter_map(|f| model_point(f)).collect();
    if !points.is_empty() {
        print!("{}", density_table(&points));
    }
    // Each model run's nodes: where each ran, and a chip node's energy, cycles, utilization.
    let models: Vec<(&PathBuf, Vec<NodeRow>, String)> = a
        .files
        .iter()
        .filter_map(|f| node_rows(f).map(|(rows, unit)| (f, rows, unit)))
        .collect();
    for (f, rows, unit) in &models {
        print!("{}", node_table(&f.display().to_string(), rows, unit));
    }
    if let Some(p) = &a.svg {
        svg(&rows, p)?;
        eprintln!("charts: {}", p.display());
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("report");
        for (k, (f, rows, unit)) in models.iter().enumerate() {
            let name = if models.len() == 1 {
                format!("{stem}-nodes.svg")
            } else {
                format!("{stem}-nodes-{}.svg", k + 1)
            };
            let out = p.with_file_name(name);
            nodes_svg(rows, unit, &out)?;
            eprintln!("per-node charts of {}: {}", f.display(), out.display());
        }
        if !points.is_empty() {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("report");
            let d = p.with_file_name(format!("{stem}-density.svg"));
            density_svg(&points, &d)?;
            eprintln!("charts against weight density: {}", d.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A model run's figures (`rowsim run --net model.onnx --stats-json`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPoint {
    pub hw: String,
    /// `dense`, or how `rowsim prune` pruned it.
    pub pruning: String,
    pub density: f64,
    pub accuracy: Option<f64>,
    pub energy: f64,
    pub cycles: f64,
    pub unit: String,
}

/// The figures of a model run's statistics file; `None` for any other file.
pub fn model_point(path: &Path) -> Option<ModelPoint> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let t = v.get("totals")?;
    Some(ModelPoint {
        hw: v.get("hw")?.as_str()?.to_string(),
        pruning: v
            .get("pruning")
            .and_then(|p| p.as_str())
            .unwrap_or("dense")
            .to_string(),
        density: v.get("weight_density")?.as_f64()?,
        accuracy: v
            .get("accuracy")
            .and_then(|a| a.get("chip"))
            .and_then(|a| a.as_f64()),
        energy: t.get("energy_per_inference")?.as_f64()?,
        cycles: t.get("core_cycles_per_inference")?.as_f64()?,
        unit: t.get("unit")?.as_str()?.to_string(),
    })
}

/// The series of the density charts: per machine and pruning method (its first word), each
/// machine's dense runs starting every line of that machine; points by density, high first.
pub fn density_series(points: &[ModelPoint]) -> Vec<(String, Vec<ModelPoint>)> {
    let method = |p: &ModelPoint| {
        p.pruning
            .split_whitespace()
            .next()
            .unwrap_or("dense")
            .to_string()
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    for p in points {
        let k = (p.hw.clone(), method(p));
        if k.1 != "dense" && !keys.contains(&k) {
            keys.push(k);
        }
    }
    for p in points {
        if !keys.iter().any(|k| k.0 == p.hw) {
            let k = (p.hw.clone(), "dense".to_string());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.into_iter()
        .map(|(hw, m)| {
            let mut pts: Vec<ModelPoint> = points
                .iter()
                .filter(|p| p.hw == hw && (method(p) == m || method(p) == "dense"))
                .cloned()
                .collect();
            pts.sort_by(|a, b| b.density.total_cmp(&a.density));
            (format!("{hw}, {m}"), pts)
        })
        .collect()
}

fn density_table(points: &[ModelPoint]) -> String {
    let mut s = String::from(
        "\nmodel runs by weight density:\nmachine            pruning                         density   accuracy   energy/inference   cycles/inference\n",
    );
    for p in points {
        s += &format!(
            "{:<18} {:<31} {:>7.3} {:>10} {:>18.4e} {:>18.0}\n",
            p.hw,
            cut(&p.pruning, 31),
            p.density,
            p.accuracy
                .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            p.energy,
            p.cycles
        );
    }
    s
}

/// A chart's legend, boxed, where it is put.
fn legend<'a, 'b: 'a>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    at: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)
}

/// A density chart: its title, its y axis, and a point's value.
type DensityChart = (&'static str, String, fn(&ModelPoint) -> Option<f64>);

/// Energy and cycles per inference and top-1 accuracy against weight density, a line per
/// machine and pruning method.
pub fn density_svg(points: &[ModelPoint], path: &Path) -> anyhow::Result<()> {
    let series = density_series(points);
    let root = SVGBackend::new(path, (900, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((3, 1));
    let unit = points.first().map(|p| p.unit.clone()).unwrap_or_default();
    let charts: [DensityChart; 3] = [
        (
            "Energy per inference",
            format!("energy ({unit} units)"),
            |p| Some(p.energy),
        ),
        ("Core cycles per inference", "core cycles".into(), |p| {
            Some(p.cycles)
        }),
        ("Top-1 accuracy (the chip's)", "accuracy (%)".into(), |p| {
            p.accuracy.map(|a| 100.0 * a)
        }),
    ];
    for (area, (title, y_desc, f)) in panels.iter().zip(charts) {
        let vals: Vec<f64> = points.iter().filter_map(f).collect();
        let top = vals.iter().cloned().fold(0.0, f64::max).max(1e-9) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..1.05f64, 0f64..top)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("weight density")
            .y_desc(y_desc.as_str())
            .y_label_formatter(&|v| axis_label(*v, top))
            .draw()
            .map_err(draw_err)?;
        for (k, (name, pts)) in series.iter().enumerate() {
            let color = series_color(k);
            let xy: Vec<(f64, f64)> = pts
                .iter()
                .filter_map(|p| f(p).map(|v| (p.density, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                .map_err(draw_err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            chart
                .draw_series(
                    xy.into_iter()
                        .map(|(x, y)| Circle::new((x, y), 4, color.filled())),
                )
                .map_err(draw_err)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
    Ok(())
}

/// A grouped chart: its title, its y axis, and the value of one bar.
type Chart = (&'static str, String, fn(&LayerStats) -> f64);

/// The colour of the `k`-th series of a grouped chart (Tableau-like, distinguishable in print).
fn series_color(k: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(0x4c, 0x72, 0xb0),
        RGBColor(0xdd, 0x84, 0x52),
        RGBColor(0x55, 0xa8, 0x68),
        RGBColor(0xc4, 0x4e, 0x52),
        RGBColor(0x81, 0x72, 0xb3),
        RGBColor(0x93, 0x78, 0x60),
        RGBColor(0xda, 0x8b, 0xc3),
        RGBColor(0x8c, 0x8c, 0x8c),
    ];
    C[k % C.len()]
}

/// Bars grouped by layer (along x) and coloured by series (a dataflow, a machine), with a legend:
/// energy per MAC and core cycles. `points` are (layer, series, statistics); a missing pair
/// leaves its slot empty.
pub fn grouped_svg(points: &[(String, String, LayerStats)], path: &Path) -> anyhow::Result<()> {
    let mut layers: Vec<&str> = Vec::new();
    let mut series: Vec<&str> = Vec::new();
    for (l, s, _) in points {
        if !layers.contains(&l.as_str()) {
            layers.push(l);
        }
        if !series.contains(&s.as_str()) {
            series.push(s);
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let width = (260 + 40 * points.len() as u32 + 30 * layers.len() as u32).max(900);
    let root = SVGBackend::new(path, (width, 1100)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((2, 1));
    let unit = points
        .first()
        .map(|p| p.2.energy.unit.clone())
        .unwrap_or_default();
    let charts: [Chart; 2] = [
        (
            "Energy per MAC, by layer and dataflow",
            format!("energy / MAC ({unit} units)"),
            |s| s.energy.total / s.macs.total.max(1) as f64,
        ),
        (
            "Core cycles, by layer and dataflow",
            "core cycles".into(),
            |s| s.cycles.core_total as f64,
        ),
    ];
    let k = series.len().max(1) as f64;
    let slot = 0.8 / k;
    for (panel, (title, y_desc, value)) in panels.iter().zip(charts) {
        let top = points
            .iter()
            .map(|p| value(&p.2))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.25;
        // Layer names along x, each centred under its group; long names are shortened to
        // their last part so neighbours never overlap.
        let labels: Vec<String> = layers
            .iter()
            .map(|l| {
                let short = l.rsplit(':').next().unwrap_or(l);
                if short.chars().count() > 14 {
                    format!("{}…", short.chars().take(13).collect::<String>())
                } else {
                    short.to_string()
                }
            })
            .collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(layers.len() as f64 - 0.5), 0f64..top)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(layers.len() + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_label_style(("sans-serif", 13))
            .y_desc(y_desc.as_str())
            .y_label_formatter(&|v| axis_label(*v, top))
            .draw()
            .map_err(draw_err)?;
        for (si, name) in series.iter().enumerate() {
            let color = series_color(si);
            let bars: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.1 == *name)
                .filter_map(|p| {
                    let li = layers.iter().position(|l| *l == p.0)?;
                    let x = li as f64 - 0.4 + slot * (si as f64 + 0.5);
                    Some((x, value(&p.2)))
                })
                .collect();
            chart
                .draw_series(bars.into_iter().map(move |(x, y)| {
                    Rectangle::new(
                        [(x - slot * 0.45, 0.0), (x + slot * 0.45, y)],
                        color.filled(),
                    )
                }))
                .map_err(draw_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod label_tests {
    use super::*;

    /// The PE-cycle chart has a segment for every cause of the account (its one list,
    /// `PeCycles::CAUSES`, which the summary and the JSON follow too), each with a label and a
    /// colour of its own, so that its legend tells them apart.
    #[test]
    fn the_pe_cycle_chart_tells_every_cause_apart() {
        let segments = pe_cycle_segments();
        assert_eq!(segments.len(), rowsim_chip::PeCycles::CAUSES.len());
        for (i, a) in segments.iter().enumerate() {
            for b in &segments[i + 1..] {
                assert_ne!(a.0, b.0);
                assert_ne!(a.1, b.1, "{} and {} share a colour", a.0, b.0);
            }
        }
    }

    /// Labels that do not fit their bar's slot are turned, and the area under the chart is as
    /// tall as the longest (so none overlaps a neighbour or is clipped); short ones stay flat.
    #[test]
    fn long_labels_are_turned_and_given_room() {
        let short = vec!["conv1".to_string(), "conv2".to_string()];
        assert_eq!(label_layout(&short), (70, false));
        let long = vec![
            "tiny:conv [array.cols=3,glb.bank_entries=64]".to_string(),
            "x".to_string(),
        ];
        let (area, turned) = label_layout(&long);
        assert!(turned);
        assert!(area as usize >= long[0].len() * CHAR_PX);
        let huge = "y".repeat(500);
        assert_eq!(short_label(&huge).chars().count(), LABEL_CHARS);
        assert!(short_label(&huge).ends_with("..."));
        assert_eq!(cut("abcdef", 10), "abcdef");
        assert_eq!(cut("abcdefghijk", 6), "abc...");
    }
}
