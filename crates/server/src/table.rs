//! Plain-text tables for the CLI and startup output, with columns as wide as their widest cell.

/// How a column's cells sit in their width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left, so digits line up.
    Right,
}

/// A table built row by row and rendered once, so that no long name pushes a column out of line.
#[derive(Debug, Clone)]
pub struct TextTable {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table with these column headers and alignments.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            align: columns.iter().map(|(_, align)| *align).collect(),
            rows: vec![columns.iter().map(|(name, _)| (*name).to_owned()).collect()],
        }
    }

    /// Appends a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.align.len(), String::new());
        self.rows.push(cells);
    }

    /// The table, one line per row with a newline after each; columns are separated by two
    /// spaces and the last one is not padded (no trailing blanks).
    pub fn render(&self) -> String {
        let width = |c: &str| c.chars().count();
        let widths: Vec<usize> = (0..self.align.len())
            .map(|i| self.rows.iter().map(|r| width(&r[i])).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[i] - width(cell));
                if self.align[i] == Align::Right {
                    line.push_str(&pad);
                }
                line.push_str(cell);
                if self.align[i] == Align::Left {
                    line.push_str(&pad);
                }
                line.push_str("  ");
            }
            line.truncate(line.trim_end().len());
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_whatever_the_widest_cell() {
        let mut table = TextTable::new(&[
            ("service", Align::Left),
            ("tokens", Align::Right),
            ("expiring ≤30 days", Align::Right),
            ("note", Align::Left),
        ]);
        table.row(vec!["a".into(), "1".into(), "0".into(), "-".into()]);
        table.row(vec![
            "payments-reconciliation (unlisted)".into(),
            "12345".into(),
            "7".into(),
            "service at 2026-12-06T06:05:58Z".into(),
        ]);
        table.row(vec!["short".into()]);
        let text = table.render();
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        assert_eq!(lines.len(), 4, "{text}");
        // Every row's second column ends where the header's does; the fourth starts where the
        // header's does, counted in characters (the header holds a multi-byte `≤`).
        let header: String = lines[0].iter().collect();
        let tokens_end = header.find("tokens").unwrap() + "tokens".len();
        let note_start = header.chars().count() - "note".len();
        for (n, line) in lines.iter().enumerate().skip(1).take(2) {
            assert_ne!(line[tokens_end - 1], ' ', "row {n}: {text}");
            assert_eq!(line[tokens_end], ' ', "row {n}: {text}");
            assert_eq!(line[note_start - 1], ' ', "row {n}: {text}");
            assert_ne!(line[note_start], ' ', "row {n}: {text}");
        }
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
        assert!(text.lines().nth(3).unwrap().starts_with("short"));
    }
}
