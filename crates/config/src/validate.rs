//! Every field's allowed range, and the rules that tie fields together. The ranges are wide
//! enough for design-space sweeps and tight enough that a typo (a 0, a missing digit) is caught;
//! each rule says in its message what is allowed.

use crate::schema::*;

pub(crate) struct Problem {
    pub field: String,
    pub message: String,
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, field: &str, message: String) {
        self.problems.push(Problem {
            field: field.into(),
            message,
        });
    }

    fn range(&mut self, field: &str, v: u64, lo: u64, hi: u64) -> bool {
        if v < lo || v > hi {
            self.fail(
                field,
                format!("{v} is outside the allowed range {lo}..={hi}"),
            );
            return false;
        }
        true
    }

    fn rule(&mut self, field: &str, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(field, message());
        }
    }

    fn energy(&mut self, field: &str, v: f64) {
        self.rule(field, v.is_finite() && v >= 0.0, || {
            format!("{v} must be a finite, non-negative energy")
        });
    }
}

const MHZ: u64 = 1_000_000;

/// The largest global buffer a config may describe, in bytes.
pub const MAX_GLB_BYTES: u64 = 64 << 20;

/// The most ifmap-spad entries a PE runs: its zero buffer, one bit an entry, is one 64-bit word.
pub const MAX_IFMAP_ENTRIES: u32 = 64;

pub(crate) fn validate(hw: &HwConfig) -> Vec<Problem> {
    let mut c = Checker::default();
    c.rule("machine.name", !hw.machine.name.trim().is_empty(), || {
        "must not be empty".into()
    });

    if let Some(d) = &hw.machine.dataflow {
        c.rule(
            "machine.dataflow",
            ["rs", "ws", "osa", "osb", "osc", "nlr"].contains(&d.as_str()),
            || format!("`{d}` is not one of rs, ws, osa, osb, osc, nlr"),
        );
    }
    if let Some(a) = &hw.area {
        for (field, v) in [
            ("area.rf_per_byte", a.rf_per_byte),
            ("area.glb_per_byte", a.glb_per_byte),
        ] {
            c.rule(field, v.is_finite() && v > 0.0, || {
                format!("{v} must be a finite, positive area")
            });
        }
    }
    c.range("clocks.core_hz", hw.clocks.core_hz, MHZ, 10_000 * MHZ);
    c.range("clocks.link_hz", hw.clocks.link_hz, MHZ, 10_000 * MHZ);

    c.range("array.rows", hw.array.rows as u64, 1, 256);
    c.range("array.cols", hw.array.cols as u64, 1, 256);

    let d = &hw.datapath;
    let word = d.word_bits;
    // The datapath crate implements the chip's 16-bit fixed point; other widths would parse
    // and then fail later, so they are refused here.
    c.range("datapath.word_bits", word as u64, 16, 16);
    c.rule("datapath.product_bits", d.product_bits == 2 * word, || {
        format!(
            "{} must be twice datapath.word_bits ({}): a full {word}x{word} product",
            d.product_bits,
            2 * word
        )
    });
    if c.range(
        "datapath.pe_pipeline_stages",
        d.pe_pipeline_stages as u64,
        2,
        8,
    ) {
        c.range(
            "datapath.mac_stages",
            d.mac_stages as u64,
            1,
            d.pe_pipeline_stages as u64 - 1,
        );
    }
    c.rule(
        "datapath.zero_buffer_bits",
        d.zero_buffer_bits == hw.spad.ifmap.entries,
        || {
            format!(
                "{} must equal spad.ifmap.entries ({}): one bit per ifmap-spad entry",
                d.zero_buffer_bits, hw.spad.ifmap.entries
            )
        },
    );

    for (name, s) in [
        ("filter", &hw.spad.filter),
        ("ifmap", &hw.spad.ifmap),
        ("psum", &hw.spad.psum),
    ] {
        c.range(&format!("spad.{name}.entries"), s.entries as u64, 1, 65_536);
        if name == "ifmap" {
            // What the PE can run, refused here rather than at the first pass.
            c.rule("spad.ifmap.entries", s.entries <= MAX_IFMAP_ENTRIES, || {
                format!(
                    "{} is above {MAX_IFMAP_ENTRIES}: the PE keeps its zero buffer (one bit per ifmap-spad entry) in one 64-bit word",
                    s.entries
                )
            });
        }
        c.rule(
            &format!("spad.{name}.width_bits"),
            s.width_bits == word,
            || {
                format!(
                    "{} must equal datapath.word_bits ({word}): a spad entry holds one word",
                    s.width_bits
                )
            },
        );
    }

    for (name, s) in [("ifmap", &hw.spad.ifmap), ("psum", &hw.spad.psum)] {
        c.rule(&format!("spad.{name}.compressed"), !s.compressed, || {
            "only the filter spad holds compressed data".into()
        });
        c.rule(
            &format!("spad.{name}.mask_bits"),
            s.mask_bits.is_none(),
            || "only the filter spad has a weight zero mask".into(),
        );
    }
    let fs = &hw.spad.filter;
    match (fs.compressed, fs.mask_bits) {
        (true, Some(bits)) => {
            c.range(
                "spad.filter.mask_bits",
                bits as u64,
                fs.entries as u64,
                65_536,
            );
        }
        (true, None) => c.rule("spad.filter.mask_bits", false, || {
            "must be given when spad.filter.compressed is on (bits of the weight zero mask)".into()
        }),
        (false, Some(_)) => c.rule("spad.filter.mask_bits", false, || {
            "is only read when spad.filter.compressed is on".into()
        }),
        (false, None) => {}
    }
    c.rule(
        "rlc.code_first_layer_input",
        hw.rlc.code_feature_maps || !hw.rlc.code_first_layer_input,
        || "asks for the first layer's input coded, but rlc.code_feature_maps is false (feature maps cross the DRAM bus raw)".into(),
    );
    if fs.compressed {
        c.rule("spad.filter.compressed", hw.datapath.zero_skipping, || {
            "needs datapath.zero_skipping: a PE holding compressed weights walks their mask".into()
        });
        c.rule("rlc.code_filters", !hw.rlc.code_filters, || {
            "must be off with spad.filter.compressed: the filter stream on the DRAM bus is already compressed".into()
        });
    }

    for (name, v) in [
        ("filter_fifo_depth", hw.pe.filter_fifo_depth),
        ("ifmap_fifo_depth", hw.pe.ifmap_fifo_depth),
        ("psum_in_fifo_depth", hw.pe.psum_in_fifo_depth),
        ("psum_out_fifo_depth", hw.pe.psum_out_fifo_depth),
    ] {
        c.range(&format!("pe.{name}"), v as u64, 1, 1024);
    }
    // A GIN beat goes only when every destination has room for all its words, so a PE input
    // FIFO shallower than a beat could never take one (the run would deadlock).
    for (fifo, depth, gin, width) in [
        (
            "pe.filter_fifo_depth",
            hw.pe.filter_fifo_depth,
            "noc.filter_gin.width_bits",
            hw.noc.filter_gin.width_bits,
        ),
        (
            "pe.ifmap_fifo_depth",
            hw.pe.ifmap_fifo_depth,
            "noc.ifmap_gin.width_bits",
            hw.noc.ifmap_gin.width_bits,
        ),
        (
            "pe.psum_in_fifo_depth",
            hw.pe.psum_in_fifo_depth,
            "noc.psum_gin.width_bits",
            hw.noc.psum_gin.width_bits,
        ),
    ] {
        let beat = (width / word.max(1)) as u64;
        c.rule(fifo, depth as u64 >= beat, || {
            format!(
                "{depth} words cannot take one beat of {gin} ({width} bits = {beat} words): a beat goes only when its destination has room for all of it"
            )
        });
    }

    let g = &hw.glb;
    c.range("glb.shared_banks", g.shared_banks as u64, 1, 1024);
    c.range("glb.filter_banks", g.filter_banks as u64, 1, 1024);
    c.range("glb.bank_entries", g.bank_entries as u64, 1, 1 << 20);
    multiple_of_word(&mut c, "glb.bank_width_bits", g.bank_width_bits, word, 1024);
    c.range("glb.ports_per_bank", g.ports_per_bank as u64, 1, 4);
    // The whole buffer is allocated on the host when a layer runs: each field in range can still
    // multiply to hundreds of GiB, so the product has a limit too (64 MiB, ~600 times Eyeriss v1's
    // 108 kB).
    let glb_bytes = (g.shared_banks as u64 + g.filter_banks as u64)
        .saturating_mul(g.bank_entries as u64)
        .saturating_mul(g.bank_width_bits as u64 / 8);
    c.rule("glb.bank_entries", glb_bytes <= MAX_GLB_BYTES, || {
        format!(
            "(glb.shared_banks + glb.filter_banks) x glb.bank_entries x glb.bank_width_bits / 8 = {glb_bytes} bytes of global buffer; at most {MAX_GLB_BYTES}"
        )
    });

    let n = &hw.noc;
    if c.range("noc.row_id_bits", n.row_id_bits as u64, 1, 16) {
        c.rule(
            "noc.row_id_bits",
            (hw.array.rows as u64) <= 1u64 << n.row_id_bits,
            || {
                format!(
                    "{} bits name only {} X-buses, but array.rows is {}",
                    n.row_id_bits,
                    1u64 << n.row_id_bits,
                    hw.array.rows
                )
            },
        );
    }
    for (name, gin, must_cover_cols) in [
        ("filter_gin", &n.filter_gin, true),
        ("ifmap_gin", &n.ifmap_gin, false),
        ("psum_gin", &n.psum_gin, true),
    ] {
        multiple_of_word(
            &mut c,
            &format!("noc.{name}.width_bits"),
            gin.width_bits,
            word,
            1024,
        );
        let f = format!("noc.{name}.col_id_bits");
        if c.range(&f, gin.col_id_bits as u64, 1, 16) && must_cover_cols {
            c.rule(
                &f,
                (hw.array.cols as u64) <= 1u64 << gin.col_id_bits,
                || {
                    format!(
                        "{} bits name only {} PEs per X-bus, but array.cols is {}",
                        gin.col_id_bits,
                        1u64 << gin.col_id_bits,
                        hw.array.cols
                    )
                },
            );
        }
    }
    multiple_of_word(&mut c, "noc.gon.width_bits", n.gon.width_bits, word, 1024);
    multiple_of_word(
        &mut c,
        "noc.local_link.width_bits",
        n.local_link.width_bits,
        word,
        1024,
    );

    let dr = &hw.dram;
    multiple_of_word(&mut c, "dram.bus_width_bits", dr.bus_width_bits, word, 1024);
    c.range(
        "dram.access_latency_cycles",
        dr.access_latency_cycles as u64,
        1,
        100_000,
    );
    c.range(
        "dram.request_queue_depth",
        dr.request_queue_depth as u64,
        1,
        4096,
    );
    c.range("dram.async_fifo_depth", dr.async_fifo_depth as u64, 1, 4096);
    c.range("dram.sync_stages", dr.sync_stages as u64, 1, 4);
    c.range("dram.write_buffers", dr.write_buffers as u64, 1, 16);

    let r = &hw.rlc;
    c.range("rlc.run_bits", r.run_bits as u64, 1, 16);
    c.rule("rlc.level_bits", r.level_bits == word, || {
        format!(
            "{} must equal datapath.word_bits ({word}): a level is one word",
            r.level_bits
        )
    });
    c.range("rlc.pairs_per_word", r.pairs_per_word as u64, 1, 16);
    c.rule("rlc.word_bits", r.word_bits == dr.bus_width_bits, || {
        format!(
            "{} must equal dram.bus_width_bits ({}): a coded word is one bus word",
            r.word_bits, dr.bus_width_bits
        )
    });
    let used = r.pairs_per_word as u64 * (r.run_bits + r.level_bits) as u64 + 1;
    c.rule("rlc.pairs_per_word", used <= r.word_bits as u64, || {
        format!(
            "{} pairs of {}+{} bits plus the last-word flag take {used} bits, more than rlc.word_bits ({})",
            r.pairs_per_word, r.run_bits, r.level_bits, r.word_bits
        )
    });

    c.range("scan_chain.bits", hw.scan_chain.bits as u64, 1, 1 << 20);
    c.range(
        "scan_chain.load_time_limit_us",
        hw.scan_chain.load_time_limit_us as u64,
        1,
        1_000_000,
    );
    if c.range(
        "scan_chain.shift_hz",
        hw.scan_chain.shift_hz,
        MHZ / 1000,
        10_000 * MHZ,
    ) {
        let sc = &hw.scan_chain;
        // bits / shift_hz <= limit, in integers: bits * 10^6 <= limit * shift_hz.
        c.rule(
            "scan_chain.shift_hz",
            sc.bits as u128 * 1_000_000 <= sc.load_time_limit_us as u128 * sc.shift_hz as u128,
            || {
                format!(
                    "{} bits at {} Hz take longer than scan_chain.load_time_limit_us ({} us)",
                    sc.bits, sc.shift_hz, sc.load_time_limit_us
                )
            },
        );
    }

    let l = &hw.limits;
    c.range(
        "limits.max_filter_height",
        l.max_filter_height as u64,
        1,
        hw.array.rows as u64,
    );
    c.range(
        "limits.max_filter_width",
        l.max_filter_width as u64,
        1,
        1024,
    );
    c.range("limits.max_filters", l.max_filters as u64, 1, 1 << 20);
    c.range("limits.max_channels", l.max_channels as u64, 1, 1 << 20);
    c.rule(
        "limits.vertical_strides",
        !l.vertical_strides.is_empty(),
        || "must list at least one stride".into(),
    );
    for s in &l.vertical_strides {
        c.range("limits.vertical_strides", *s as u64, 1, 64);
    }
    c.range(
        "limits.max_horizontal_stride",
        l.max_horizontal_stride as u64,
        1,
        64,
    );

    let e = &hw.energy;
    c.rule("energy.unit", !e.unit.trim().is_empty(), || {
        "must not be empty".into()
    });
    c.energy("energy.dram", e.dram);
    c.energy("energy.glb", e.glb);
    c.energy("energy.noc", e.noc);
    c.energy("energy.spad", e.spad);
    c.energy("energy.mac", e.mac);
    match e.skip_index {
        Some(v) => {
            c.energy("energy.skip_index", v);
        }
        None => c.rule("energy.skip_index", !hw.datapath.zero_skipping, || {
            "must be given when datapath.zero_skipping is on (the cost of an index read)".into()
        }),
    }
    if hw.datapath.zero_skipping {
        let df = hw.machine.dataflow.as_deref().unwrap_or("rs");
        c.rule("datapath.zero_skipping", df == "rs", || {
            format!(
                "zero skipping is modelled for the row-stationary PE; machine.dataflow is `{df}`"
            )
        });
    }
    for (k, v) in &e.reference_pj {
        c.energy(&format!("energy.reference_pj.{k}"), *v);
    }
    c.problems
}

fn multiple_of_word(c: &mut Checker, field: &str, v: u32, word: u32, max: u32) {
    if c.range(field, v as u64, word as u64, max as u64) {
        c.rule(field, v.is_multiple_of(word), || {
            format!("{v} must be a multiple of datapath.word_bits ({word})")
        });
    }
}
