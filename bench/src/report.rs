//! Results of a run: the side-by-side table, the targets, and the JSON written to disk.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::load::{ListStats, PutStats};

/// The create/put rate BeeMesh must reach at this concurrency: etcd's own rate.
pub const TARGET_CONCURRENCY: usize = 64;
/// The list size whose latency has a target.
pub const TARGET_LIST_COUNT: u64 = 100_000;
/// Upper bound for a full list of `TARGET_LIST_COUNT` ConfigMaps.
pub const TARGET_LIST_SECONDS: f64 = 1.0;
/// Upper bound for resident memory per stored 1 KiB ConfigMap.
pub const TARGET_RSS_PER_OBJECT_BYTES: f64 = 1500.0;

/// Everything measured on one system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemResults {
    pub version: String,
    /// How the load loop reached it (protocol, TLS, API).
    pub transport: String,
    pub puts: Vec<PutStats>,
    pub lists: Vec<ListStats>,
    pub memory: Option<MemoryStats>,
}

/// Resident memory before and after storing `stored` objects.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryStats {
    pub stored: u64,
    pub empty_rss_bytes: u64,
    pub stored_rss_bytes: u64,
    pub after_lists_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub per_object_bytes: f64,
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_bytes: u64,
    pub kernel: String,
    /// `/proc/loadavg` at the start and end of the run: other work on the machine skews figures.
    pub load_average_start: String,
    pub load_average_end: String,
}

impl Machine {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            load_average_start: load_average(),
            load_average_end: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub unit: String,
    pub beemesh: Option<f64>,
    pub etcd: Option<f64>,
    /// Always oriented so that > 1 means BeeMesh is better.
    pub ratio: Option<f64>,
    pub ratio_formula: String,
}

/// A goal and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub goal: String,
    pub measured: String,
    pub met: Option<bool>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: String,
    pub machine: Machine,
    pub method: String,
    pub value_bytes: usize,
    pub put_seconds_per_round: f64,
    pub put_rounds: usize,
    pub beemesh: Option<SystemResults>,
    pub etcd: Option<SystemResults>,
    pub rows: Vec<Row>,
    pub targets: Vec<TargetCheck>,
}

#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

fn row(metric: String, unit: &str, b: Option<f64>, e: Option<f64>, better: Better) -> Row {
    let (ratio, ratio_formula) = match better {
        Better::Higher => (
            b.zip(e).filter(|(_, e)| *e > 0.0).map(|(b, e)| b / e),
            "beemesh/etcd",
        ),
        Better::Lower => (
            b.zip(e).filter(|(b, _)| *b > 0.0).map(|(b, e)| e / b),
            "etcd/beemesh",
        ),
    };
    Row {
        metric,
        unit: unit.into(),
        beemesh: b,
        etcd: e,
        ratio,
        ratio_formula: ratio_formula.into(),
    }
}

fn put_at(sys: Option<&SystemResults>, c: usize) -> Option<&PutStats> {
    sys?.puts.iter().find(|p| p.concurrency == c)
}

fn list_at(sys: Option<&SystemResults>, n: u64) -> Option<&ListStats> {
    sys?.lists.iter().find(|l| l.stored == n)
}

impl Report {
    /// Builds the comparison rows and target checks from the raw results.
    pub fn compare(&mut self) {
        let b = self.beemesh.as_ref();
        let e = self.etcd.as_ref();
        let mut levels: Vec<usize> = b
            .into_iter()
            .chain(e)
            .flat_map(|s| s.puts.iter().map(|p| p.concurrency))
            .collect();
        levels.sort_unstable();
        levels.dedup();
        let mut rows = Vec::new();
        for &c in &levels {
            let (pb, pe) = (put_at(b, c), put_at(e, c));
            let clients = format!("{c} client{}", if c == 1 { "" } else { "s" });
            rows.push(row(
                format!("writes/s, {clients}"),
                "1/s",
                pb.map(|p| p.per_second),
                pe.map(|p| p.per_second),
                Better::Higher,
            ));
            rows.push(row(
                format!("write p50 latency, {clients}"),
                "ms",
                pb.map(|p| p.p50_ms),
                pe.map(|p| p.p50_ms),
                Better::Lower,
            ));
            rows.push(row(
                format!("write p99 latency, {clients}"),
                "ms",
                pb.map(|p| p.p99_ms),
                pe.map(|p| p.p99_ms),
                Better::Lower,
            ));
        }
        let mut counts: Vec<u64> = b
            .into_iter()
            .chain(e)
            .flat_map(|s| s.lists.iter().map(|l| l.stored))
            .collect();
        counts.sort_unstable();
        counts.dedup();
        for &n in &counts {
            rows.push(row(
                format!("full list of {n} (median)"),
                "s",
                list_at(b, n).map(|l| l.median_seconds),
                list_at(e, n).map(|l| l.median_seconds),
                Better::Lower,
            ));
        }
        let mb = b.and_then(|s| s.memory.as_ref());
        let me = e.and_then(|s| s.memory.as_ref());
        if let Some(stored) = mb.or(me).map(|m| m.stored) {
            rows.push(row(
                "RSS, empty".into(),
                "MiB",
                mb.map(|m| m.empty_rss_bytes as f64 / 1048576.0),
                me.map(|m| m.empty_rss_bytes as f64 / 1048576.0),
                Better::Lower,
            ));
            rows.push(row(
                format!("RSS, {stored} objects stored"),
                "MiB",
                mb.map(|m| m.stored_rss_bytes as f64 / 1048576.0),
                me.map(|m| m.stored_rss_bytes as f64 / 1048576.0),
                Better::Lower,
            ));
            rows.push(row(
                "RSS per stored object".into(),
                "B",
                mb.map(|m| m.per_object_bytes),
                me.map(|m| m.per_object_bytes),
                Better::Lower,
            ));
        }
        self.rows = rows;

        let mut targets = Vec::new();
        let (pb, pe) = (put_at(b, TARGET_CONCURRENCY), put_at(e, TARGET_CONCURRENCY));
        targets.push(TargetCheck {
            goal: format!(
                "BeeMesh creates/s at {TARGET_CONCURRENCY} clients >= etcd puts/s at {TARGET_CONCURRENCY} clients"
            ),
            measured: match (pb, pe) {
                (Some(pb), Some(pe)) => {
                    format!("{:.0} vs {:.0}", pb.per_second, pe.per_second)
                }
                _ => "not measured".into(),
            },
            met: pb.zip(pe).map(|(pb, pe)| pb.per_second >= pe.per_second),
        });
        let largest = b.and_then(|s| s.lists.iter().max_by_key(|l| l.stored));
        targets.push(TargetCheck {
            goal: format!(
                "BeeMesh full list of {TARGET_LIST_COUNT} ConfigMaps <= {TARGET_LIST_SECONDS} s"
            ),
            measured: match largest {
                Some(l) if l.stored == TARGET_LIST_COUNT => format!("{:.3} s", l.median_seconds),
                Some(l) => format!(
                    "{:.3} s for {} (smaller run; target not judged)",
                    l.median_seconds, l.stored
                ),
                None => "not measured".into(),
            },
            met: largest
                .filter(|l| l.stored == TARGET_LIST_COUNT)
                .map(|l| l.median_seconds <= TARGET_LIST_SECONDS),
        });
        targets.push(TargetCheck {
            goal: format!(
                "BeeMesh RSS per stored 1 KiB ConfigMap <= {TARGET_RSS_PER_OBJECT_BYTES} B"
            ),
            measured: mb.map_or("not measured".into(), |m| {
                format!("{:.0} B over {} objects", m.per_object_bytes, m.stored)
            }),
            met: mb.map(|m| m.per_object_bytes <= TARGET_RSS_PER_OBJECT_BYTES),
        });
        self.targets = targets;
    }

    /// The plain-text table printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "BeeMesh vs etcd — {} ({} run)", self.date, self.mode);
        let _ = writeln!(
            out,
            "machine: {} CPUs, {}, {:.1} GiB, Linux {}",
            self.machine.cpus,
            self.machine.cpu_model,
            self.machine.memory_bytes as f64 / 1073741824.0,
            self.machine.kernel
        );
        let _ = writeln!(
            out,
            "load average: {} at start, {} at end (other work on the machine skews figures)",
            self.machine.load_average_start, self.machine.load_average_end
        );
        let _ = writeln!(out, "method: {}", self.method);
        for (name, sys) in [("beemesh", &self.beemesh), ("etcd", &self.etcd)] {
            if let Some(s) = sys {
                let _ = writeln!(out, "{name}: {} — {}", s.version, s.transport);
            }
        }
        let _ = writeln!(out);
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), format_number);
        let header = ["metric", "unit", "beemesh", "etcd", "ratio", "ratio is"];
        let body: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.metric.clone(),
                    r.unit.clone(),
                    fmt(r.beemesh),
                    fmt(r.etcd),
                    r.ratio.map_or("-".into(), |x| format!("{x:.2}x")),
                    r.ratio_formula.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &body {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let print_line = |out: &mut String, cells: [&str; 6]| {
            let mut parts = Vec::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 || i == 1 || i == 5 {
                    parts.push(format!("{cell:<w$}"));
                } else {
                    parts.push(format!("{cell:>w$}"));
                }
            }
            let _ = writeln!(out, "{}", parts.join(" | ").trim_end());
        };
        print_line(&mut out, header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("-|-"));
        for line in &body {
            print_line(
                &mut out,
                [&line[0], &line[1], &line[2], &line[3], &line[4], &line[5]],
            );
        }
        let _ = writeln!(out, "(ratio > 1 means BeeMesh is better)");
        for (name, sys) in [("beemesh", &self.beemesh), ("etcd", &self.etcd)] {
            for p in sys.iter().flat_map(|s| &s.puts) {
                if p.round_rates.len() > 1 {
                    let rates: Vec<String> =
                        p.round_rates.iter().map(|r| format!("{r:.0}")).collect();
                    let _ = writeln!(
                        out,
                        "rounds, {name} at {} client{} (writes/s): {}",
                        p.concurrency,
                        if p.concurrency == 1 { "" } else { "s" },
                        rates.join(" ")
                    );
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "targets:");
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "MET    ",
                Some(false) => "MISSED ",
                None => "n/a    ",
            };
            let _ = writeln!(out, "  {verdict} {} — {}", t.goal, t.measured);
        }
        for (name, sys) in [("beemesh", &self.beemesh), ("etcd", &self.etcd)] {
            for p in sys.iter().flat_map(|s| &s.puts) {
                if p.errors > 0 {
                    let _ = writeln!(
                        out,
                        "warning: {name} had {} failed writes at {} clients; first: {}",
                        p.errors,
                        p.concurrency,
                        p.first_error.as_deref().unwrap_or("?")
                    );
                }
            }
        }
        out
    }

    /// Writes the report as pretty JSON, creating the directory if needed.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

fn format_number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puts(c: usize, rate: f64, p50: f64) -> PutStats {
        PutStats {
            concurrency: c,
            ok: 100,
            errors: 0,
            seconds: 1.0,
            per_second: rate,
            p50_ms: p50,
            p99_ms: p50 * 2.0,
            first_error: None,
            round_rates: vec![rate],
        }
    }

    fn system(rate64: f64, list_s: f64, per_obj: f64) -> SystemResults {
        SystemResults {
            version: "v".into(),
            transport: "t".into(),
            puts: vec![puts(64, rate64, 4.0)],
            lists: vec![ListStats {
                stored: TARGET_LIST_COUNT,
                items: 100_000,
                response_bytes: 1,
                runs_seconds: vec![list_s],
                median_seconds: list_s,
            }],
            memory: Some(MemoryStats {
                stored: TARGET_LIST_COUNT,
                empty_rss_bytes: 1,
                stored_rss_bytes: 2,
                after_lists_rss_bytes: 2,
                peak_rss_bytes: 2,
                per_object_bytes: per_obj,
            }),
        }
    }

    fn report(b: SystemResults, e: SystemResults) -> Report {
        let mut r = Report {
            date: "d".into(),
            mode: "full".into(),
            machine: Machine::probe(),
            method: "m".into(),
            value_bytes: 1024,
            put_seconds_per_round: 1.0,
            put_rounds: 1,
            beemesh: Some(b),
            etcd: Some(e),
            rows: vec![],
            targets: vec![],
        };
        r.compare();
        r
    }

    #[test]
    fn ratios_are_oriented_so_above_one_favours_beemesh() {
        let r = report(system(2000.0, 0.5, 1000.0), system(1000.0, 2.0, 4000.0));
        let rate = r
            .rows
            .iter()
            .find(|r| r.metric == "writes/s, 64 clients")
            .unwrap();
        assert_eq!(rate.ratio, Some(2.0));
        let list = r
            .rows
            .iter()
            .find(|r| r.metric.starts_with("full list of 100000"))
            .unwrap();
        assert_eq!(list.ratio, Some(4.0));
        let rss = r
            .rows
            .iter()
            .find(|r| r.metric == "RSS per stored object")
            .unwrap();
        assert_eq!(rss.ratio, Some(4.0));
        assert!(r.targets.iter().all(|t| t.met == Some(true)));
        assert!(r.render().contains("MET"));
    }

    #[test]
    fn missed_targets_are_reported_as_missed() {
        let r = report(system(500.0, 1.5, 2000.0), system(1000.0, 2.0, 4000.0));
        assert!(r.targets.iter().all(|t| t.met == Some(false)));
        assert!(r.render().contains("MISSED"));
    }
}
