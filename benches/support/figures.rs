//! A benchmark's figures, machine-readable: `target/bench/<name>.json`,
//! flat keys, numbers in base units (seconds, bytes, counts).

// Each benchmark uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Figures {
    name: &'static str,
    values: BTreeMap<String, f64>,
}

impl Figures {
    pub fn new(name: &'static str) -> Self {
        Self { name, values: BTreeMap::new() }
    }

    pub fn set(&mut self, key: &str, value: f64) {
        self.values.insert(key.to_owned(), value);
    }

    pub fn seconds(&mut self, key: &str, value: std::time::Duration) {
        self.set(key, value.as_secs_f64());
    }

    /// Writes the file and says where.
    pub fn write(&self) {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")))
            .join("bench");
        std::fs::create_dir_all(&dir).expect("target/bench can be created");
        let path = dir.join(format!("{}.json", self.name));
        let json = serde_json::to_string_pretty(&self.values).expect("numbers serialise");
        std::fs::write(&path, json + "\n").expect("the figures can be written");
        println!("figures written to {}", path.display());
    }
}

/// Peak resident set size of this process, in bytes (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("/proc/self/status", "VmHWM:").map(|kib| kib * 1024)
}

/// Resident set size of process `pid`, in bytes (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
