//! Import benchmark: `orglink account import` of a 10,000-row file, in
//! process through the CLI's own entry (read, parse, judge every row
//! against the store, one transaction, flush, render the table); the same
//! file as a dry run; and one with a bad last row (everything judged,
//! nothing written). The issue asks for 10,000 rows in at most 5 s.
//!
//! `cargo bench --bench import` (`ORGLINK_BENCH_ROWS` changes the count).
//! Prints the figures and writes `target/bench/import.json`.

#[path = "support/figures.rs"]
mod figures;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use figures::Figures;
use orglink::cli::{Io, run_with};

fn main() {
    let rows: usize = std::env::var("ORGLINK_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut text = String::from("account_id,customer,support,email,price_book,kind\n");
    for i in 0..rows {
        let id = 100_000_000_000u64 + i as u64;
        let _ = writeln!(text, "{id},\"Customer {i}, Ltd\",business,root+{i}@customer.example,EMEA,standalone");
    }
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, &text).expect("the file is written");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{text}12345,Bad,business,,,\n")).expect("the file is written");
    let data = dir.path().join("data");
    let mut figures = Figures::new("import");
    figures.set("rows", rows as f64);

    let run = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["orglink", "--data-dir", data.to_str().unwrap(), "account", "import"];
        args.extend_from_slice(&[file.to_str().unwrap(), "--tenant", "acme"]);
        args.extend_from_slice(extra);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let started = Instant::now();
        let code = run_with(
            args.iter().map(Into::into),
            &BTreeMap::new(),
            &mut Io { out: &mut out, err: &mut err, bold: false },
        );
        (code, started.elapsed(), out.len())
    };
    // The store exists before the timed runs, as it does in use.
    let mut args = vec!["orglink", "--data-dir", data.to_str().unwrap(), "account", "add", "999999999999"];
    args.extend_from_slice(&["--tenant", "other", "--customer", "Other", "--support", "basic"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        run_with(args.iter().map(Into::into), &BTreeMap::new(), &mut Io { out: &mut out, err: &mut err, bold: false });
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));

    let (code, dry, _) = run(&file, &["--dry-run"]);
    assert_eq!(code, 0);
    figures.seconds("dry_run_seconds", dry);
    let (code, rejected, _) = run(&bad, &[]);
    assert_eq!(code, 2);
    figures.seconds("rejected_seconds", rejected);
    let (code, import, printed) = run(&file, &[]);
    assert_eq!(code, 0, "the import succeeds");
    figures.seconds("import_seconds", import);
    figures.set("printed_bytes", printed as f64);
    figures.set("rows_per_second", rows as f64 / import.as_secs_f64());

    println!("{rows} rows: dry run {dry:.2?}, refused (bad last row) {rejected:.2?}, imported {import:.2?}");
    figures.write();
}
