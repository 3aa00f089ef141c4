//! Rendering reports as a terminal table, JSON or a Markdown case note.

mod markdown;
mod table;

use crate::model::Report;

pub use markdown::render_markdown;
pub use table::render_table;

/// Output formats of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// Renders reports; several reports become a JSON array or consecutive
/// sections.
pub fn render(reports: &[Report], format: Format, width: Option<u16>) -> String {
    match format {
        Format::Json => render_json(reports),
        Format::Table => reports
            .iter()
            .map(|report| render_table(report, width))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Markdown => reports
            .iter()
            .map(render_markdown)
            .collect::<Vec<_>>()
            .join("\n---\n\n"),
    }
}

/// Renders one report as an object, several as an array.
pub fn render_json(reports: &[Report]) -> String {
    let text = match reports {
        [single] => serde_json::to_string_pretty(single),
        many => serde_json::to_string_pretty(many),
    };
    // Serializing plain data with string keys cannot fail; keep a message
    // rather than a panic should that ever change.
    text.unwrap_or_else(|err| format!("{{\"error\": \"cannot serialize report: {err}\"}}")) + "\n"
}

/// Escapes control characters so text from a bundle cannot move the cursor,
/// change colours or clear the engineer's terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\t' => out.push(' '),
            c if c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_terminal_sequences() {
        let escaped = printable("ok\u{1b}[2J\u{7}done\r\n");
        assert!(!escaped.contains('\u{1b}'));
        assert!(!escaped.contains('\r'));
        assert!(escaped.contains("\\u{1b}"));
        assert!(escaped.starts_with("ok"));
    }
}
