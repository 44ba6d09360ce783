//! What a client printed, with the checks the cases make on it.

use std::fmt;

use crate::report::one_line;

/// The captured result of one client command.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line as run (for messages).
    pub command: String,
    /// Exit code; -1 when killed by a signal or the timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    /// Panics unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        if self.code != 0 {
            panic!("`{}` exited {}: {}", self.command, self.code, self.brief());
        }
        self
    }

    /// Panics unless the command exited non-zero.
    #[track_caller]
    pub fn failed(self) -> Output {
        if self.code == 0 {
            panic!(
                "`{}` succeeded but should have failed: {}",
                self.command,
                self.brief()
            );
        }
        self
    }

    /// Panics unless stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Output {
        if !self.stdout.contains(needle) {
            panic!(
                "`{}`: stdout lacks {needle:?}: {}",
                self.command,
                self.brief()
            );
        }
        self
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Output {
        if !self.stderr.contains(needle) {
            panic!(
                "`{}`: stderr lacks {needle:?}: {}",
                self.command,
                self.brief()
            );
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not JSON ({e}): {}",
                self.command,
                self.brief()
            )
        })
    }

    /// stdout parsed as YAML (into JSON values, for uniform access).
    #[track_caller]
    pub fn yaml(&self) -> serde_json::Value {
        serde_yaml::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not YAML ({e}): {}",
                self.command,
                self.brief()
            )
        })
    }

    /// stdout as a kubectl table.
    #[track_caller]
    pub fn table(&self) -> Table {
        Table::parse(&self.stdout).unwrap_or_else(|| {
            panic!(
                "`{}`: stdout is not a table: {}",
                self.command,
                self.brief()
            )
        })
    }

    /// stdout and stderr on one line, shortened, for failure messages.
    pub fn brief(&self) -> String {
        format!(
            "stdout: {:?} stderr: {:?}{}",
            one_line(&self.stdout, 300),
            one_line(&self.stderr, 300),
            if self.timed_out { " (timed out)" } else { "" }
        )
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited {}: {}",
            self.command,
            self.code,
            self.brief()
        )
    }
}

/// A table as kubectl prints it: a header line and rows, columns separated by 2+ spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses kubectl's human-readable output; `None` when there is no header line.
    pub fn parse(text: &str) -> Option<Table> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next()?;
        // Column starts are where header words begin after a gap of 2+ spaces.
        let starts = column_starts(header);
        let headers = split_at(header, &starts);
        let rows = lines.map(|l| split_at(l, &starts)).collect();
        Some(Table { headers, rows })
    }

    /// The index of a column by header name.
    #[track_caller]
    pub fn column(&self, name: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.headers))
    }

    /// The row whose first column (NAME, or NAMESPACE NAME with -A) is `name`.
    pub fn row(&self, name: &str) -> Option<&Vec<String>> {
        let idx = self.headers.iter().position(|h| h == "NAME").unwrap_or(0);
        self.rows
            .iter()
            .find(|r| r.get(idx).map(String::as_str) == Some(name))
    }

    /// The cell of row `name`, column `column`.
    #[track_caller]
    pub fn cell(&self, name: &str, column: &str) -> String {
        let col = self.column(column);
        let row = self
            .row(name)
            .unwrap_or_else(|| panic!("no row {name:?} in {:?}", self.rows));
        row.get(col).cloned().unwrap_or_default()
    }

    /// The NAME column of every row.
    pub fn names(&self) -> Vec<String> {
        let idx = self.headers.iter().position(|h| h == "NAME").unwrap_or(0);
        self.rows
            .iter()
            .filter_map(|r| r.get(idx).cloned())
            .collect()
    }
}

fn column_starts(header: &str) -> Vec<usize> {
    let bytes = header.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            let gap_start = i;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if i - gap_start >= 2 && i < bytes.len() {
                starts.push(i);
            }
        } else {
            i += 1;
        }
    }
    starts
}

/// Splits by the header's column starts, so an empty cell stays empty; falls back to
/// splitting on gaps of 2+ spaces when the line is not aligned with the header (watch
/// lines printed later may have other widths).
fn split_at(line: &str, starts: &[usize]) -> Vec<String> {
    let bytes = line.as_bytes();
    let aligned = starts
        .iter()
        .all(|&s| s == 0 || s >= bytes.len() || (line.is_char_boundary(s) && bytes[s - 1] == b' '));
    if aligned {
        starts
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let end = starts
                    .get(i + 1)
                    .copied()
                    .unwrap_or(line.len())
                    .min(line.len());
                line.get(s.min(end)..end).unwrap_or("").trim().to_string()
            })
            .collect()
    } else {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn parses_kubectl_tables() {
        let text =
            "NAME    READY   STATUS    RESTARTS   AGE\nweb-1   0/1     Pending   0          5s\n";
        let t = Table::parse(text).unwrap();
        assert_eq!(t.headers, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
        assert_eq!(t.cell("web-1", "STATUS"), "Pending");
    }

    #[test]
    fn keeps_multi_word_headers_and_empty_cells() {
        // As kubectl prints it: every column as wide as its widest cell plus three spaces.
        let text = "NAME       SHORTNAMES   APIVERSION   NAMESPACED   KIND\nbindings                v1           true         Binding\npods       po           v1           true         Pod\n";
        let t = Table::parse(text).unwrap();
        assert_eq!(t.cell("bindings", "SHORTNAMES"), "");
        assert_eq!(t.cell("bindings", "KIND"), "Binding");
        assert_eq!(t.cell("pods", "SHORTNAMES"), "po");
        let wide = "NAME   IP       NOMINATED NODE   READINESS GATES\np      <none>   <none>           <none>\n";
        let t = Table::parse(wide).unwrap();
        assert_eq!(t.headers[2], "NOMINATED NODE");
        assert_eq!(t.cell("p", "READINESS GATES"), "<none>");
    }
}
