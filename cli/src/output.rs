//! Output: aligned tables for people, JSON (serde on the generated types) for scripts.
//!
//! Everything goes through [`line`], so a closed stdout (`gregorctl ... | head`) ends the
//! command quietly instead of panicking as `println!` would.

use std::io::{IsTerminal, Write};

use gregor_protocol::Uuid;
use serde::Serialize;

use crate::client::{Error, Result};

/// Writes one line to stdout.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::io("writing to stdout", e))
}

/// Writes raw bytes and a newline to stdout (record values need not be UTF-8).
pub fn bytes_line(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| Error::io("writing to stdout", e))
}

/// Flushes stdout.
pub fn flush() -> Result<()> {
    std::io::stdout()
        .flush()
        .map_err(|e| Error::io("writing to stdout", e))
}

/// Writes `value` as one line of JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Protocol(format!("cannot write JSON: {e}")))?;
    line(&text)
}

/// Writes `value` as indented JSON (a whole response, for people who asked for JSON).
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Protocol(format!("cannot write JSON: {e}")))?;
    line(&text)
}

/// Whether stdout is a terminal (live progress lines, human summaries).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// A table printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, columns separated by two spaces; no trailing
    /// spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// Prints the table.
    pub fn print(&self) -> Result<()> {
        let text = self.render();
        line(text.trim_end_matches('\n'))
    }
}

/// A Kafka id as Kafka prints it: URL-safe base64 without padding (22 characters).
pub fn kafka_uuid(id: &Uuid) -> String {
    gregor_protocol::uuid_text::to_text(id)
}

/// A list of ids as `1,2,3` (`-` when empty).
pub fn id_list(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Bytes as text when they are UTF-8, else as `0x` and hex.
pub fn text_or_hex(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => {
            let mut out = String::from("0x");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["NAME", "PARTITIONS"]);
        table.row(vec!["events".into(), "3".into()]);
        table.row(vec!["a".into(), "12".into()]);
        assert_eq!(
            table.render(),
            "NAME    PARTITIONS\nevents  3\na       12\n"
        );
    }

    #[test]
    fn uuids_print_as_kafka_does() {
        assert_eq!(kafka_uuid(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            kafka_uuid(&Uuid::from_u64_pair(0, 1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(
            kafka_uuid(&Uuid::from_u128(u128::MAX)),
            "_____________________w"
        );
    }

    #[test]
    fn bytes_print_as_text_or_hex() {
        assert_eq!(text_or_hex(b"abc"), "abc");
        assert_eq!(text_or_hex(&[0xff, 0x00]), "0xff00");
    }
}
