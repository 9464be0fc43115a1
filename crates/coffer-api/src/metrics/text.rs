//! The Prometheus text exposition format (version 0.0.4): `# HELP` and
//! `# TYPE` lines per family, then one `name{label="value"} number` line
//! per sample.

use std::fmt::Write;

/// The media type of a scrape.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A scrape being written.
#[derive(Default)]
pub(crate) struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: `kind` is `counter`, `gauge` or `histogram`.
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Number) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_into(&mut self.out, text);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample's value as the format spells it.
pub(crate) trait Number {
    fn write_to(self, out: &mut String);
}

impl Number for u64 {
    fn write_to(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for i64 {
    fn write_to(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for f64 {
    fn write_to(self, out: &mut String) {
        if self.is_infinite() {
            out.push_str(if self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_labels() {
        let mut e = Exposition::default();
        e.family("coffer_x_total", "counter", "Things.");
        e.sample("coffer_x_total", &[("a", "b\"c\\d\ne")], 3u64);
        e.sample("coffer_y", &[], 0.25f64);
        e.sample("coffer_y", &[("le", "+Inf")], f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP coffer_x_total Things.\n# TYPE coffer_x_total counter\n\
             coffer_x_total{a=\"b\\\"c\\\\d\\ne\"} 3\ncoffer_y 0.25\ncoffer_y{le=\"+Inf\"} +Inf\n"
        );
    }
}
