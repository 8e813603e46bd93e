//! The markdown table (ready to paste into the README) and its notes.

use std::fmt::Write as _;

use crate::measure::{Row, Stat};

const MB: f64 = 1024.0 * 1024.0;

fn stat(s: Stat) -> String {
    format!("{:.1} / {:.1}", s.min, s.median)
}

/// The table of `rows`, `min / median` ms per cell.
pub fn markdown(rows: &[Row], in_process: bool) -> String {
    let mut out = String::new();
    let iterations = rows.first().map_or(0, |r| r.iterations);
    let _ = writeln!(
        out,
        "Times in ms, `min / median` of {iterations} iterations; peak RSS is VmHWM of a \
         process that measured only that size{}.\n",
        if in_process {
            " (in-process run: cumulative)"
        } else {
            ""
        }
    );
    out.push_str(
        "| apps | services | JSON MB | config MB | parse ms | interpret wasm ms | \
         interpret native ms | ratio | render ms | render+map ms | total ms | total+map ms | \
         peak RSS MB |\n",
    );
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let ratio = if r.native.min > 0.0 {
            r.wasm.min / r.native.min
        } else {
            f64::NAN
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1}× | {} | {} | {} | {} | {:.0} |",
            r.apps,
            r.services,
            r.json_bytes as f64 / MB,
            r.config_bytes as f64 / MB,
            stat(r.parse),
            stat(r.wasm),
            stat(r.native),
            ratio,
            stat(r.render),
            stat(r.render_map),
            stat(r.total),
            stat(r.total_map),
            r.peak_rss_kb as f64 / 1024.0,
        );
    }
    out.push('\n');
    for r in rows {
        let _ = writeln!(
            out,
            "- {} apps: {} tasks, {} diagnostics; plugin load (compile + pre-link, once) \
             {:.0} ms; renderer setup (once) {:.1} ms; with `--haproxy-map` config {:.1} MB + \
             maps {:.2} MB; RSS with the input loaded {:.0} MB, after plugin load {:.0} MB ({:.0} MB of it file-backed); \
             peak RSS per stage (parse, wasm, native, render, render+map, generate) {}. \
             Full regeneration with native rules {:.0} / {:.0} ms (WASM/native {:.2}×). \
             WASM in calls of 1,000 apps: one at a time {:.1} / {:.1} ms ({:.2}× native), two at a \
             time {:.1} / {:.1} ms ({:.2}× native). \
             Steady state (one app changed, unchanged apps reused): interpret WASM {:.2} / {:.2} ms, \
             native {:.2} / {:.2} ms.",
            r.apps,
            r.tasks,
            r.diagnostics,
            r.plugin_load_ms,
            r.renderer_new_ms,
            r.config_map_bytes as f64 / MB,
            r.maps_bytes as f64 / MB,
            r.input_rss_kb as f64 / 1024.0,
            r.loaded_rss_kb as f64 / 1024.0,
            r.loaded_rss_file_kb as f64 / 1024.0,
            if r.stage_peak_rss_kb.is_empty() {
                "n/a".to_owned()
            } else {
                r.stage_peak_rss_kb
                    .iter()
                    .map(|kb| format!("{:.0}", *kb as f64 / 1024.0))
                    .collect::<Vec<_>>()
                    .join(" / ")
                    + " MB"
            },
            r.total_native.min,
            r.total_native.median,
            if r.total_native.min > 0.0 {
                r.total.min / r.total_native.min
            } else {
                0.0
            },
            r.wasm_batched.min,
            r.wasm_batched.median,
            r.wasm_batched.min / r.native.min.max(f64::MIN_POSITIVE),
            r.wasm_split.min,
            r.wasm_split.median,
            r.wasm_split.min / r.native.min.max(f64::MIN_POSITIVE),
            r.wasm_one_change.min,
            r.wasm_one_change.median,
            r.native_one_change.min,
            r.native_one_change.median,
        );
    }
    out.push_str(
        "\n`total` is `pipeline::generate` end to end (parse + WASM plugin + render); \
         `ratio` is WASM / native interpretation (min).\n",
    );
    out
}
