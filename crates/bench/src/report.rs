//! The printed table: sections of measured rows, a verdict line per target, and notes.

use std::fmt::Write;
use std::time::Duration;

use crate::measure::Measurement;

const HEADERS: [&str; 9] = [
    "",
    "ops",
    "time",
    "rate/s",
    "p50",
    "p99",
    "cpu/op bench",
    "cpu/op nats",
    "x raw",
];

pub(crate) struct Report {
    title: String,
    sections: Vec<Section>,
    footer: Vec<String>,
}

pub(crate) struct Section {
    title: String,
    rows: Vec<[String; 9]>,
    lines: Vec<String>,
}

impl Report {
    pub(crate) fn new(title: String) -> Self {
        Self {
            title,
            sections: Vec::new(),
            footer: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    pub(crate) fn footer(&mut self, line: String) {
        self.footer.push(line);
    }

    /// Every section with one set of column widths, so the columns line up across sections.
    pub(crate) fn render(&self) -> String {
        let mut widths = HEADERS.map(str::len);
        for row in self.sections.iter().flat_map(|s| &s.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 9]| {
            let mut text = String::from("  ");
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width.saturating_sub(cell.chars().count());
                if i == 0 {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                } else {
                    text.push_str("  ");
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                }
            }
            text.trim_end().to_owned()
        };
        let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * widths.len());
        let mut out = String::new();
        let _ = writeln!(out, "\n{}", self.title);
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "{}", line(&HEADERS.map(str::to_owned)));
        for section in &self.sections {
            let _ = writeln!(out, "{rule}");
            let _ = writeln!(out, "{}", section.title);
            for row in &section.rows {
                let _ = writeln!(out, "{}", line(row));
            }
            for text in &section.lines {
                let _ = writeln!(out, "  {text}");
            }
        }
        let _ = writeln!(out, "{rule}");
        for text in &self.footer {
            let _ = writeln!(out, "{text}");
        }
        out
    }
}

impl Section {
    pub(crate) fn new(title: String) -> Self {
        Self {
            title,
            rows: Vec::new(),
            lines: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, label: &str, m: &Measurement, ratio: Option<f64>) {
        let per_op = |seconds: f64| {
            if seconds <= 0.0 {
                "-".to_owned()
            } else {
                format!("{:.1} us", seconds * 1e6 / m.ops as f64)
            }
        };
        self.rows.push([
            label.to_owned(),
            thousands(m.ops as f64),
            format!("{:.2} s", m.elapsed.as_secs_f64()),
            thousands(m.per_second()),
            m.percentile(0.5).map_or_else(|| "-".to_owned(), millis),
            m.percentile(0.99).map_or_else(|| "-".to_owned(), millis),
            per_op(m.cpu.bench),
            per_op(m.cpu.nats),
            ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
        ]);
    }

    /// A target and whether it was met.
    pub(crate) fn verdict(&mut self, text: String) {
        self.lines.push(format!("=> {text}"));
    }

    pub(crate) fn note(&mut self, text: String) {
        self.lines.push(text);
    }
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A rounded figure with thousands separators: 12345.6 -> "12,346".
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn separates_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
