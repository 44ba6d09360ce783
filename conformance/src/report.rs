//! The pass/fail report: one line per case, appended by every test process.

use std::io::Write;
use std::path::PathBuf;

/// `$BEEMESH_CONFORMANCE_REPORT`, else `conformance/report.txt`.
pub fn report_path() -> PathBuf {
    std::env::var_os("BEEMESH_CONFORMANCE_REPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/report.txt")))
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// Appends `PASS case [client]` / `FAIL case [client]: reason` / `SKIP case [client]: reason`.
///
/// One `write` of one line with O_APPEND, so concurrent test processes do not interleave.
pub fn record(verdict: Verdict, case: &str, client: &str, reason: &str) {
    let word = match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "SKIP",
    };
    let mut line = format!("{word} {case} [{client}]");
    if !reason.is_empty() {
        line.push_str(": ");
        line.push_str(&one_line(reason, 400));
    }
    line.push('\n');
    let path = report_path();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot append to {}: {e}", path.display());
    }
}

/// Collapses whitespace runs (newlines included) and cuts to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        collapsed
    } else {
        let mut cut: String = collapsed.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_collapses_and_truncates() {
        assert_eq!(one_line("a\n  b\tc", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
