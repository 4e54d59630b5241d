//! CPU and memory of a process from /proc: utime+stime of the whole
//! process and of each thread (grouped by thread name), VmRSS, and the
//! host's busy time, so that a measurement window can say who used what.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};

/// Linux's USER_HZ: /proc times are in 1/100 s on every architecture we run on.
pub const HZ: f64 = 100.0;

#[derive(Clone, Debug, Default)]
pub struct ProcSample {
    /// utime + stime, in ticks.
    pub ticks: u64,
    pub rss_kib: u64,
    /// Thread name -> utime + stime of the threads of that name.
    pub threads: BTreeMap<String, u64>,
}

/// `pid` may be "self".
pub fn sample(pid: &str) -> Result<ProcSample> {
    let (_, ticks) = stat_ticks(&format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut threads = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in dir.flatten() {
            // A thread may end between the listing and the read.
            if let Ok((name, t)) = stat_ticks(&format!("{}/stat", entry.path().display())) {
                *threads.entry(name).or_insert(0) += t;
            }
        }
    }
    Ok(ProcSample {
        ticks,
        rss_kib,
        threads,
    })
}

/// (comm, utime + stime) from a stat file.
fn stat_ticks(path: &str) -> Result<(String, u64)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let open = text.find('(').ok_or_else(|| anyhow!("{path}: no comm"))?;
    let close = text.rfind(')').ok_or_else(|| anyhow!("{path}: no comm"))?;
    let comm = text.get(open + 1..close).unwrap_or("").to_string();
    // After the comm: state (field 3), …, utime (14), stime (15).
    let fields: Vec<&str> = text
        .get(close + 1..)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("{path}: field {} missing", i + 3))
    };
    Ok((comm, num(11)? + num(12)?))
}

/// Busy ticks of the whole host (all CPUs): user, nice, system, irq,
/// softirq, steal; and the steal alone (the hypervisor ran someone else).
pub fn host_busy() -> Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text
        .lines()
        .next()
        .ok_or_else(|| anyhow!("/proc/stat is empty"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok((at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(7)))
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
