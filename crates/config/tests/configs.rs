//! The shipped configs parse to SPEC.md's numbers, and bad configs fail with file:line:column and
//! the field's name.

use std::path::{Path, PathBuf};

use rowsim_config::{load, parse, ConfigError, SpadKind};

fn hw_configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs")
}

fn eyeriss_text() -> String {
    std::fs::read_to_string(hw_configs().join("eyeriss-v1.toml")).unwrap()
}

/// The errors of the eyeriss config with `from` replaced by `to` (which must occur once).
fn broken_all(from: &str, to: &str) -> Vec<ConfigError> {
    let text = eyeriss_text();
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
    let bad = text.replace(from, to);
    parse(&bad, Path::new("bad.toml"))
        .expect_err("must be refused")
        .0
}

fn broken(from: &str, to: &str) -> ConfigError {
    broken_all(from, to).remove(0)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn eyeriss_v1_holds_every_number_of_the_spec() {
    let hw = load(hw_configs().join("eyeriss-v1.toml")).unwrap();
    assert_eq!((hw.array.rows, hw.array.cols, hw.pes()), (12, 14, 168));
    assert_eq!((hw.datapath.word_bits, hw.datapath.product_bits), (16, 32));
    assert_eq!(
        (hw.datapath.pe_pipeline_stages, hw.datapath.mac_stages),
        (3, 2)
    );
    assert_eq!(hw.datapath.zero_buffer_bits, 12);
    let s = &hw.spad;
    assert_eq!(
        (s.filter.entries, s.filter.width_bits, s.filter.kind),
        (224, 16, SpadKind::Sram)
    );
    assert_eq!((s.ifmap.entries, s.ifmap.kind), (12, SpadKind::Register));
    assert_eq!((s.psum.entries, s.psum.kind), (24, SpadKind::Register));
    // 108 kB: 25 + 2 banks of 512 x 64b.
    assert_eq!(hw.glb_bank_bytes(), 4096);
    assert_eq!(hw.glb_bytes(), 108 * 1024);
    assert_eq!((hw.glb.shared_banks, hw.glb.filter_banks), (25, 2));
    let n = &hw.noc;
    assert_eq!(n.row_id_bits, 4);
    assert_eq!((n.filter_gin.width_bits, n.filter_gin.col_id_bits), (64, 4));
    assert_eq!((n.ifmap_gin.width_bits, n.ifmap_gin.col_id_bits), (16, 5));
    assert_eq!((n.psum_gin.width_bits, n.psum_gin.col_id_bits), (64, 4));
    assert_eq!((n.gon.width_bits, n.local_link.width_bits), (64, 64));
    assert_eq!(
        (hw.clocks.core_hz, hw.clocks.link_hz),
        (200_000_000, 60_000_000)
    );
    assert_eq!(hw.dram.bus_width_bits, 64);
    let r = &hw.rlc;
    assert_eq!(
        (r.run_bits, r.level_bits, r.pairs_per_word, r.word_bits),
        (5, 16, 3, 64)
    );
    assert!(r.code_feature_maps && !r.code_first_layer_input && !r.code_filters);
    assert_eq!(
        (hw.scan_chain.bits, hw.scan_chain.load_time_limit_us),
        (1794, 100)
    );
    let l = &hw.limits;
    assert_eq!((l.max_filter_height, l.max_filter_width), (12, 32));
    assert_eq!((l.max_filters, l.max_channels), (1024, 1024));
    assert_eq!(
        (l.vertical_strides.as_slice(), l.max_horizontal_stride),
        (&[1, 2, 4][..], 12)
    );
    let e = &hw.energy;
    assert_eq!(
        (e.dram, e.glb, e.noc, e.spad, e.mac),
        (200.0, 6.0, 2.0, 1.0, 1.0)
    );
    assert_eq!(e.reference_pj["int32_mult"], 3.1);
    assert_eq!(e.reference_pj.len(), 12);
    // 168 PEs x 200 MHz.
    assert_eq!(hw.peak_macs_per_s(), 33.6e9);
}

#[test]
fn tiny_is_a_valid_small_machine() {
    let hw = load(hw_configs().join("tiny.toml")).unwrap();
    assert_eq!((hw.array.rows, hw.array.cols), (3, 4));
    assert!(hw.glb_bytes() < 4096);
}

#[test]
fn a_misspelled_key_names_file_line_column_and_field() {
    let e = broken("entries = 224", "entires = 224");
    assert_eq!(e.file, Path::new("bad.toml"));
    assert_eq!(e.line, line_of(&eyeriss_text(), "entries = 224"));
    assert_eq!(e.column, 1);
    assert_eq!(e.field, "spad.filter.entires");
    assert!(
        e.message.contains("unknown field `entires`"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("entries"),
        "suggests the valid keys: {}",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "bad.toml:{}:1: field `spad.filter.entires`",
            e.line
        )),
        "{shown}"
    );
}

#[test]
fn a_wrong_type_names_the_field() {
    let e = broken("rows = 12 ", "rows = \"twelve\" ");
    assert_eq!(e.line, line_of(&eyeriss_text(), "rows = 12 "));
    assert_eq!(e.column, 8);
    assert_eq!(e.field, "array.rows");
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[test]
fn a_zero_spad_names_the_field_and_the_range() {
    let errs = broken_all("entries = 12\n", "entries = 0\n");
    // The zero buffer must then also shrink to 0 bits: both are reported.
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].field, "datapath.zero_buffer_bits");
    let e = &errs[1];
    assert_eq!(
        e.line,
        line_of(&eyeriss_text(), "entries = 12\n".trim_end())
    );
    assert_eq!(e.column, 11);
    assert_eq!(e.field, "spad.ifmap.entries");
    assert!(
        e.message
            .contains("0 is outside the allowed range 1..=65536"),
        "{}",
        e.message
    );
}

#[test]
fn every_problem_is_reported_and_cross_field_rules_hold() {
    let text = eyeriss_text()
        .replace("cols = 14 ", "cols = 40 ")
        .replace("pairs_per_word = 3 ", "pairs_per_word = 4 ")
        .replace("dram = 200.0", "dram = -1.0");
    let errs = parse(&text, Path::new("x.toml")).unwrap_err();
    let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "noc.filter_gin.col_id_bits",
            "noc.psum_gin.col_id_bits",
            "rlc.pairs_per_word",
            "energy.dram"
        ]
    );
    assert!(errs.0[0]
        .message
        .contains("name only 16 PEs per X-bus, but array.cols is 40"));
    assert!(errs.0[2].message.contains("take 85 bits"));
    // Each error points at its own line.
    assert_eq!(errs.0[3].line, line_of(&text, "dram = -1.0"));
}

#[test]
fn missing_fields_files_and_broken_toml_are_errors_too() {
    let e = broken("zero_gating = true\n", "");
    assert_eq!(e.field, "datapath.zero_gating");
    assert!(e.message.contains("missing field"), "{}", e.message);

    let e = broken("[array]", "[array");
    assert_eq!(e.line, line_of(&eyeriss_text(), "[array]"));
    assert!(e.message.contains("unclosed table"), "{e}");

    let errs = load("no/such/config.toml").unwrap_err();
    assert!(
        errs.to_string()
            .starts_with("no/such/config.toml: cannot read"),
        "{errs}"
    );
}

/// The ISCA 2016 comparison machines: 256 PEs each, RS with 512 B of RF per PE and a 128 kB
/// GLB, and every other machine within one GLB bank of RS's storage area under the area model
/// (computed here from the raw sizes), with less RF and more GLB.
#[test]
fn the_isca2016_machines_have_equal_storage_area() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hw-configs/isca2016");
    let area = |hw: &rowsim_config::HwConfig| {
        let a = hw.area.as_ref().expect("an [area] table");
        let s = &hw.spad;
        let rf_bits = (s.filter.entries * s.filter.width_bits
            + s.ifmap.entries * s.ifmap.width_bits
            + s.psum.entries * s.psum.width_bits) as f64;
        let banks = (hw.glb.shared_banks + hw.glb.filter_banks) as f64;
        let glb = banks * hw.glb.bank_entries as f64 * hw.glb.bank_width_bits as f64 / 8.0;
        let pes = (hw.array.rows * hw.array.cols) as f64;
        (
            rf_bits / 8.0,
            glb,
            pes * rf_bits / 8.0 * a.rf_per_byte + glb * a.glb_per_byte,
        )
    };
    let rs = rowsim_config::load(dir.join("rs.toml")).unwrap();
    let (rs_rf, rs_glb, rs_area) = area(&rs);
    assert_eq!((rs_rf, rs_glb), (512.0, 128.0 * 1024.0));
    assert_eq!(rs.storage_area(), Some(rs_area));
    let bank = rs.glb_bank_bytes() as f64 * rs.area.as_ref().unwrap().glb_per_byte;
    for df in ["rs", "ws", "osa", "osb", "osc", "nlr"] {
        let hw = rowsim_config::load(dir.join(format!("{df}.toml"))).unwrap();
        assert_eq!(hw.machine.dataflow.as_deref(), Some(df));
        assert_eq!(hw.array.rows * hw.array.cols, 256, "{df}");
        let (rf, glb, a) = area(&hw);
        assert_eq!(hw.storage_area(), Some(a), "{df}");
        assert!(
            a <= rs_area && rs_area - a < bank,
            "{df}: area {a} vs RS {rs_area}"
        );
        if df != "rs" {
            assert!(
                rf < rs_rf && glb > rs_glb,
                "{df} trades RF ({rf} B) for GLB ({glb} B)"
            );
        }
        // Everything but the array, spads, GLB size and tag widths is Eyeriss v1's.
        let v1 = rowsim_config::load(dir.join("../eyeriss-v1.toml")).unwrap();
        assert_eq!(
            (&hw.energy, &hw.dram, &hw.rlc, &hw.clocks),
            (&v1.energy, &v1.dram, &v1.rlc, &v1.clocks)
        );
    }
}

#[test]
fn a_pe_fifo_shallower_than_its_gins_beat_is_refused() {
    // A 64-bit filter beat is 4 words; a GIN beat goes only when the FIFO has room for all of it.
    let e = broken("filter_fifo_depth = 4", "filter_fifo_depth = 3");
    assert_eq!(e.field, "pe.filter_fifo_depth");
    assert!(
        e.message.contains(
            "3 words cannot take one beat of noc.filter_gin.width_bits (64 bits = 4 words)"
        ),
        "{e}"
    );
    let e = broken("psum_in_fifo_depth = 24", "psum_in_fifo_depth = 2");
    assert_eq!(e.field, "pe.psum_in_fifo_depth");
    // The ifmap GIN carries one word a beat: a 1-word FIFO is legal.
    let text = eyeriss_text().replace("ifmap_fifo_depth = 4", "ifmap_fifo_depth = 1");
    let hw = parse(&text, Path::new("ok.toml")).unwrap();
    assert_eq!(hw.pe.ifmap_fifo_depth, 1);
}

/// Zero skipping needs the price of an index read, and the row-stationary PE.
#[test]
fn zero_skipping_needs_its_energy_and_the_rs_pe() {
    let e = broken(
        "zero_gating = true\n",
        "zero_gating = true\nzero_skipping = true\n",
    );
    assert_eq!(e.field, "energy.skip_index");
    assert!(
        e.message
            .contains("must be given when datapath.zero_skipping is on"),
        "{e}"
    );
    let skip = load(hw_configs().join("eyeriss-v1-skip.toml")).unwrap();
    assert!(skip.datapath.zero_skipping && skip.rlc.code_filters);
    let text = std::fs::read_to_string(hw_configs().join("isca2016/ws.toml"))
        .unwrap()
        .replace(
            "zero_gating = true\n",
            "zero_gating = true\nzero_skipping = true\n",
        )
        .replace("mac = 1.0\n", "mac = 1.0\nskip_index = 0.5\n");
    let e = parse(&text, Path::new("ws-skip.toml"))
        .unwrap_err()
        .0
        .remove(0);
    assert_eq!(e.field, "datapath.zero_skipping");
    assert!(e.message.contains("row-stationary"), "{e}");
}

/// Compressed weights: only the filter spad, with a mask of at least its entries, zero skipping
/// on and the bus coding of filters off; each refusal names the field and the limit.
#[test]
fn compressed_weights_are_checked_field_by_field() {
    let text = std::fs::read_to_string(hw_configs().join("eyeriss-v1-sparse.toml")).unwrap();
    let hw = parse(&text, Path::new("sparse.toml")).unwrap();
    assert!(hw.spad.filter.compressed && hw.spad.filter.mask_bits == Some(288));
    assert!(
        hw.describe().contains("288-bit zero mask"),
        "{}",
        hw.describe()
    );
    let refused = |from: &str, to: &str| {
        assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
        parse(&text.replace(from, to), Path::new("bad.toml"))
            .expect_err("must be refused")
            .0
            .remove(0)
    };
    let e = refused("mask_bits = 288 ", "mask_bits = 100 ");
    assert_eq!(e.field, "spad.filter.mask_bits");
    assert!(e.to_string().contains("224"), "{e}");
    let e = refused("mask_bits = 288 ", "mask_bits = 70000 ");
    assert_eq!(e.field, "spad.filter.mask_bits");
    assert!(e.to_string().contains("65536"), "{e}");
    let e = refused("mask_bits = 288 ", "# no mask ");
    assert_eq!(e.field, "spad.filter.mask_bits");
    assert!(e.message.contains("must be given"), "{e}");
    let e = refused("compressed = true ", "compressed = false ");
    assert_eq!(e.field, "spad.filter.mask_bits");
    assert!(e.message.contains("only read when"), "{e}");
    let e = refused("zero_skipping = true ", "zero_skipping = false ");
    assert!(
        e.field == "spad.filter.compressed" || e.field == "energy.skip_index",
        "{e}"
    );
    let all = parse(
        &text.replace("zero_skipping = true ", "zero_skipping = false "),
        Path::new("bad.toml"),
    )
    .unwrap_err()
    .0;
    assert!(
        all.iter().any(|e| e.field == "spad.filter.compressed"
            && e.message.contains("needs datapath.zero_skipping")),
        "{all:?}"
    );
    let e = refused("code_filters = false ", "code_filters = true ");
    assert_eq!(e.field, "rlc.code_filters");
    let e = refused(
        "entries = 12\n",
        "entries = 12\ncompressed = true\nmask_bits = 12\n",
    );
    assert_eq!(e.field, "spad.ifmap.compressed");
}

/// The dense mode (`rlc.code_feature_maps = false`): optional (on by default), and refused
/// beside a coded first-layer input.
#[test]
fn feature_maps_are_coded_unless_the_config_says_raw() {
    let text = eyeriss_text();
    let without = text.replace("code_feature_maps = true ", "");
    let hw = parse(&without, Path::new("old.toml")).unwrap();
    assert!(hw.rlc.code_feature_maps && hw.rlc.codes_ofmap());
    assert!(hw.rlc.codes_ifmap(false) && !hw.rlc.codes_ifmap(true));
    let dense = parse(
        &text.replace("code_feature_maps = true ", "code_feature_maps = false "),
        Path::new("dense.toml"),
    )
    .unwrap();
    assert!(!dense.rlc.codes_ofmap() && !dense.rlc.codes_ifmap(false));
    let mut both = text.replace("code_feature_maps = true ", "code_feature_maps = false ");
    both = both.replace(
        "code_first_layer_input = false",
        "code_first_layer_input = true",
    );
    let e = parse(&both, Path::new("bad.toml"))
        .expect_err("must be refused")
        .0
        .remove(0);
    assert_eq!(e.field, "rlc.code_first_layer_input");
    assert!(e.to_string().contains("code_feature_maps is false"), "{e}");
}
