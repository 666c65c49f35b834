//! The per-node part of `rowsim report` for a model run (`rowsim run --net model.onnx
//! --stats-json`): each node of the model in order, where it ran (the chip or the host), and for
//! a node on the chip its energy, core cycles and MAC utilization over the run; as a table, and
//! as an SVG chart of the three beside the layer charts.
//!
//! MAC utilization is the share of the array's MAC slots that the node's runs filled: its PE
//! cycles of a MAC (zero-gated ones included: a slot a zero took) over the array's PEs times
//! its core cycles. Host nodes (pooling, activations, normalizations, Softmax) run in the host's
//! fixed point and have no chip energy or cycles: the table says `host`, the chart leaves their
//! slot empty and marks their label.

use std::path::Path;

use anyhow::{anyhow, Context};
use plotters::prelude::*;

use crate::report::{axis_label, cut, draw_err, label_layout, turned_labels};

/// One node of a model run.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    pub name: String,
    pub op: String,
    /// `chip` or `host`.
    pub on: String,
    /// A chip node's figures over the run; `None` on the host.
    pub chip: Option<ChipFigures>,
}

/// A chip node's energy (the config's units), core cycles and MAC utilization (0 to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChipFigures {
    pub energy: f64,
    pub cycles: u64,
    pub utilization: f64,
}

/// The nodes of a model run's statistics file, in model order, and the energy unit; `None` for
/// any other file (or a model file without its nodes).
pub fn node_rows(path: &Path) -> Option<(Vec<NodeRow>, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let nodes = v.get("nodes")?.as_array()?;
    let layers = v.get("layers")?.as_array()?;
    let unit = v
        .get("totals")
        .and_then(|t| t.get("unit"))
        .and_then(|u| u.as_str())
        .unwrap_or("MAC")
        .to_string();
    let rows = nodes
        .iter()
        .map(|n| {
            let name = n.get("name")?.as_str()?.to_string();
            let on = n.get("on")?.as_str()?.to_string();
            let chip = if on == "chip" {
                let l = layers.iter().find(|l| l["layer"] == name.as_str())?;
                Some(figures(l)?)
            } else {
                None
            };
            Some(NodeRow {
                op: n.get("op")?.as_str()?.to_string(),
                name,
                on,
                chip,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((rows, unit))
}

/// A layer's energy, cycles and MAC utilization from its statistics.
fn figures(l: &serde_json::Value) -> Option<ChipFigures> {
    let cycles = l["cycles"]["core_total"].as_u64()?;
    let pes = l["array"][0].as_u64()? * l["array"][1].as_u64()?;
    let slots = l["pe_cycles"]["mac"].as_u64()? + l["pe_cycles"]["gated"].as_u64()?;
    let all = pes.saturating_mul(cycles).max(1);
    Some(ChipFigures {
        energy: l["energy"]["total"].as_f64()?,
        cycles,
        utilization: slots as f64 / all as f64,
    })
}

/// The per-node table of one model run (`label` names the file).
pub fn node_table(label: &str, rows: &[NodeRow], unit: &str) -> String {
    let mut s = format!(
        "\nnodes of {label} (energy in {unit} units over the run; MAC utilization: the array's MAC slots filled):\nnode                 op                    on        energy        cycles   MAC util.\n"
    );
    for r in rows {
        let figures = match &r.chip {
            Some(f) => format!(
                "{:>12.4e} {:>13} {:>10.1}%",
                f.energy,
                f.cycles,
                100.0 * f.utilization
            ),
            None => format!("{:>12} {:>13} {:>11}", "-", "-", "-"),
        };
        s += &format!(
            "{:<20} {:<20} {:<5} {figures}\n",
            cut(&r.name, 20),
            cut(&r.op, 20),
            r.on
        );
    }
    let chip: Vec<&ChipFigures> = rows.iter().filter_map(|r| r.chip.as_ref()).collect();
    s += &format!(
        "{} nodes: {} on the chip ({:.4e} {unit} units, {} core cycles), {} on the host\n",
        rows.len(),
        chip.len(),
        chip.iter().map(|f| f.energy).sum::<f64>(),
        chip.iter().map(|f| f.cycles).sum::<u64>(),
        rows.len() - chip.len()
    );
    s
}

/// The chart: energy, core cycles and MAC utilization per node, a bar per chip node, host nodes'
/// labels marked `(host)`.
pub fn nodes_svg(rows: &[NodeRow], unit: &str, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.chip.is_some() {
                cut(&r.name, 40)
            } else {
                format!("{} (host)", cut(&r.name, 33))
            }
        })
        .collect();
    let (label_area, rotate) = label_layout(&labels);
    let n = rows.len().max(1);
    let width = (200 + 60 * n as u32).max(900);
    let height = 3 * (380 + label_area);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((3, 1));
    type Panel = (&'static str, String, fn(&ChipFigures) -> f64);
    let charts: [Panel; 3] = [
        (
            "Energy per node (over the run)",
            format!("energy ({unit} units)"),
            |f| f.energy,
        ),
        ("Core cycles per node", "core cycles".into(), |f| {
            f.cycles as f64
        }),
        (
            "MAC utilization per node (the array's MAC slots filled)",
            "utilization (%)".into(),
            |f| 100.0 * f.utilization,
        ),
    ];
    let chip = RGBColor(0x4c, 0x72, 0xb0);
    for (area, (title, y_desc, value)) in panels.iter().zip(charts) {
        let top = rows
            .iter()
            .filter_map(|r| r.chip.as_ref().map(value))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.15;
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
            .y_desc(y_desc.as_str())
            .y_label_formatter(&|v| {
                if top < 10.0 {
                    // Small percentages: enough digits to tell the ticks apart.
                    format!("{v:.2}")
                } else {
                    axis_label(*v, top)
                }
            })
            .draw()
            .map_err(draw_err)?;
        if rotate {
            turned_labels(area, &chart, &labels)?;
        }
        let bars: Vec<(f64, f64)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.chip.as_ref().map(|f| (i as f64, value(f))))
            .collect();
        chart
            .draw_series(
                bars.into_iter().map(move |(x, y)| {
                    Rectangle::new([(x - 0.35, 0.0), (x + 0.35, y)], chip.filled())
                }),
            )
            .map_err(draw_err)?;
    }
    root.present()
        .map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures of a chip node from its layer statistics, by hand: 3 x 4 PEs for 1000
    /// cycles are 12000 slots, of which 3000 MACs and 600 gated ones filled 30%.
    #[test]
    fn a_chip_nodes_figures_are_its_layers() {
        let l = serde_json::json!({
            "layer": "conv",
            "array": [3, 4],
            "cycles": {"core_total": 1000},
            "pe_cycles": {"mac": 3000, "gated": 600},
            "energy": {"total": 5.5e4},
        });
        let f = figures(&l).unwrap();
        assert_eq!(f.cycles, 1000);
        assert_eq!(f.energy, 5.5e4);
        assert!((f.utilization - 0.3).abs() < 1e-12);
    }
}
