//! Every sentence a user reads, rendered from `templates/<lang>/`.
//!
//! The templates are compiled into the binary; an optional directory (config
//! `templates_dir`) overrides them file by file, laid out the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::Lang;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The names of the embedded templates of one language, e.g. `registered.md`.
pub fn names(lang: Lang) -> Vec<&'static str> {
    let prefix = format!("{}/", lang.code());
    embedded::EMBEDDED.iter().filter_map(|(name, _)| name.strip_prefix(prefix.as_str())).collect()
}

fn embedded(lang: Lang, name: &str) -> Option<&'static str> {
    let full = format!("{}/{name}", lang.code());
    embedded::EMBEDDED.iter().find(|(n, _)| *n == full).map(|(_, body)| *body)
}

/// `value` as one shell word: single-quoted, each `'` written `'\''`.
/// Inside single quotes the shell expands nothing, so the word is the
/// value whatever it holds (`$(...)`, backticks, `;`, `#`).
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Where a rendering is read: Discord renders Markdown, a terminal does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Terminal,
    Discord,
}

/// Characters Discord's Markdown gives a meaning to, inline: emphasis,
/// code, spoilers, quotes, headings, masked links (`[x](y)`), mentions
/// (`@everyone`, `<@id>`) and autolinks (`https:`). Escaped, each shows as
/// itself.
const MARKDOWN_SPECIAL: &str = "\\*_~`|>#[]()@<:";

/// `text` as Discord shows it literally: each character Markdown gives a
/// meaning to behind a backslash. Free text goes through it (the `md`
/// filter) wherever a `.md` template shows it outside a code span.
/// A character free text may no longer hold (a value stored under older
/// rules: a direction override, a line separator) is shown by its code.
pub fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !crate::domain::names::allowed_in_free_text(c) {
            escaped.push('\\');
            escaped.extend(c.escape_unicode());
            continue;
        }
        if MARKDOWN_SPECIAL.contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Free text on a terminal is data between these two noncharacters (which
/// free text refuses): the `md` filter puts it there, and
/// [`terminal_text`] passes it through as typed while it turns the
/// template's own Markdown into plain text, then drops them.
const DATA_START: char = '\u{FDD0}';
const DATA_END: char = '\u{FDD1}';

/// `text` marked as data for [`terminal_text`]; a character free text may
/// no longer hold (a value stored under older rules: an escape sequence's
/// control character, a direction override) is shown by its code, so a
/// stored value never drives the terminal.
fn terminal_data(text: &str) -> String {
    let mut marked = String::with_capacity(text.len() + 8);
    marked.push(DATA_START);
    for c in text.chars() {
        if crate::domain::names::allowed_in_free_text(c) {
            marked.push(c);
        } else {
            marked.extend(c.escape_unicode());
        }
    }
    marked.push(DATA_END);
    marked
}

/// A Markdown template's rendering as a terminal shows it: bold as bold
/// (`bold`: the output is a terminal) or plain, code spans and fences
/// without their backticks, `[text](url)` as `text (url)`. Only the
/// template's own text is read as Markdown: data (see [`DATA_START`]) is
/// kept as it is, whatever characters it holds.
pub fn terminal_text(rendered: &str, bold: bool) -> String {
    // Each character, and whether the template wrote it (not data).
    let mut chars = Vec::with_capacity(rendered.len());
    let mut in_data = false;
    for c in rendered.chars() {
        match c {
            DATA_START => in_data = true,
            DATA_END => in_data = false,
            c => chars.push((c, !in_data)),
        }
    }
    let mut shown = String::with_capacity(rendered.len());
    let mut bold_open = false;
    let mut lines_shown = 0;
    for line in chars.split(|&(c, literal)| c == '\n' && literal) {
        let literal_at = |i: usize, c: char| line.get(i).is_some_and(|&(d, literal)| literal && d == c);
        // A code fence's line goes; what it fences stays.
        let text: String = line.iter().map(|(c, _)| *c).collect();
        if text.trim_start().starts_with("```") && line.iter().all(|(_, literal)| *literal) {
            continue;
        }
        if lines_shown > 0 {
            shown.push('\n');
        }
        lines_shown += 1;
        // A link's `](` and `)`, found from its `[`.
        let mut link: Option<(usize, usize)> = None;
        // Inside a code span the template's text is shown as written too.
        let mut in_code = false;
        let mut i = 0;
        while i < line.len() {
            let (c, literal) = line[i];
            match (c, literal) {
                (_, false) => shown.push(c),
                ('`', true) => in_code = !in_code,
                (_, true) if in_code => shown.push(c),
                ('*', true) if literal_at(i + 1, '*') => {
                    bold_open = !bold_open;
                    if bold {
                        shown.push_str(if bold_open { "\x1b[1m" } else { "\x1b[22m" });
                    }
                    i += 1;
                }
                ('[', true) if link.is_none() => match link_from(line, i) {
                    Some(found) => link = Some(found),
                    None => shown.push(c),
                },
                (']', true) if link.is_some_and(|(middle, _)| middle == i) => {
                    shown.push_str(" (");
                    i += 1;
                }
                (')', true) if link.is_some_and(|(_, end)| end == i) => {
                    shown.push(')');
                    link = None;
                }
                _ => shown.push(c),
            }
            i += 1;
        }
    }
    if bold && bold_open {
        shown.push_str("\x1b[22m");
    }
    shown
}

/// Where the `](` and the closing `)` of a link whose `[` is at `start`
/// are, all three the template's own characters on one line.
fn link_from(line: &[(char, bool)], start: usize) -> Option<(usize, usize)> {
    let literal = |i: usize, c: char| line.get(i).is_some_and(|&(d, literal)| literal && d == c);
    let middle = (start + 1..line.len()).find(|&i| literal(i, ']'))?;
    if !literal(middle + 1, '(') {
        return None;
    }
    let end = (middle + 2..line.len()).find(|&i| literal(i, ')'))?;
    Some((middle, end))
}

/// `value` as a YAML double-quoted scalar: JSON's quoting (a subset of
/// YAML's), with every character free text may not hold written as an
/// escape, so that a value stored under older rules (a line separator,
/// U+FFFE) can neither end the scalar's line for a YAML 1.1 parser nor
/// make the document unreadable.
pub fn yaml_quote(value: &str) -> String {
    let json = serde_json::to_string(value).expect("a string serialises");
    let mut quoted = String::with_capacity(json.len());
    for c in json.chars() {
        match u32::from(c) {
            _ if crate::domain::names::allowed_in_free_text(c) => quoted.push(c),
            n if n <= 0xFFFF => quoted.push_str(&format!("\\u{n:04X}")),
            n => quoted.push_str(&format!("\\U{n:08X}")),
        }
    }
    quoted
}

/// `value` as an HCL (Terraform) quoted string: `"` and `\` escaped, line
/// breaks and tabs as `\n`, `\r`, `\t`, any other control character and
/// any character free text may not hold (a value stored under older rules)
/// as `\uNNNN` or `\UNNNNNNNN`, and the template sequences `${` and `%{`
/// written `$${` and `%%{`, so the string is the value, never an
/// interpolation or a directive.
pub fn hcl_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                quoted.push(c);
                quoted.push(c);
            }
            c if c.is_control() || !crate::domain::names::allowed_in_free_text(c) => match u32::from(c) {
                n if n <= 0xFFFF => quoted.push_str(&format!("\\u{n:04X}")),
                n => quoted.push_str(&format!("\\U{n:08X}")),
            },
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// An RFC 3339 instant (as views write them) laid out by `pattern`, where
/// `YYYY`, `MM`, `DD`, `hh`, `mm` and `ss` stand for its parts and the
/// rest is kept: the `utc` filter, so each language's `labels.md` says how
/// its dates read without slicing text in the template. A value of
/// another shape is shown as it is.
pub fn utc(timestamp: &str, pattern: &str) -> String {
    let b = timestamp.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shaped = digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    if !shaped {
        return timestamp.to_owned();
    }
    const PARTS: [(&str, std::ops::Range<usize>); 6] =
        [("YYYY", 0..4), ("MM", 5..7), ("DD", 8..10), ("hh", 11..13), ("mm", 14..16), ("ss", 17..19)];
    let mut laid_out = String::with_capacity(pattern.len() + 4);
    let mut rest = pattern;
    // Text up to the next letter a part can start with is copied whole.
    while let Some(at) = rest.bytes().position(|b| matches!(b, b'Y' | b'M' | b'D' | b'h' | b'm' | b's')) {
        laid_out.push_str(&rest[..at]);
        rest = &rest[at..];
        match PARTS.iter().find(|(token, _)| rest.starts_with(token)) {
            Some((token, range)) => {
                laid_out.push_str(&timestamp[range.clone()]);
                rest = &rest[token.len()..];
            }
            None => {
                laid_out.push_str(&rest[..1]);
                rest = &rest[1..];
            }
        }
    }
    laid_out.push_str(rest);
    laid_out
}

/// The values labels.md sets (not its macros), by name: those of `env`'s
/// labels.md over the embedded one's, so an override of labels.md written
/// before a value moved into it still leaves the value to the templates
/// that read it.
fn label_data(env: &Environment<'static>, lang: Lang) -> Result<minijinja::Value, minijinja::Error> {
    let set_values = |template: minijinja::Template<'_, '_>| -> Result<_, minijinja::Error> {
        let captured = template.render_captured(())?;
        let state = captured.state();
        Ok(state
            .exports()
            .into_iter()
            .filter_map(|name| state.lookup(name).map(|value| (name.to_owned(), value)))
            .filter(|(_, value)| {
                use minijinja::value::ValueKind as K;
                matches!(value.kind(), K::String | K::Number | K::Bool | K::Seq | K::Map)
            })
            .collect::<std::collections::BTreeMap<String, minijinja::Value>>())
    };
    let mut bare = Environment::new();
    bare.set_undefined_behavior(UndefinedBehavior::Strict);
    let source = embedded(lang, "labels.md").unwrap_or_default();
    let mut data = set_values(bare.template_from_str(source)?)?;
    data.extend(set_values(env.get_template("labels.md")?)?);
    Ok(minijinja::Value::from(data))
}

#[derive(Clone)]
pub struct Templates {
    en: Arc<Environment<'static>>,
    es: Arc<Environment<'static>>,
    /// The same templates with `md` escaping for Discord.
    en_discord: Arc<Environment<'static>>,
    es_discord: Arc<Environment<'static>>,
    surface: Surface,
    /// On a terminal, whether bold shows as bold (the output is one).
    bold: bool,
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Self {
        Self::build(None)
    }

    /// The embedded templates, overridden by files in `dir/<lang>/`.
    pub fn with_overrides(dir: &Path) -> Self {
        Self::build(Some(dir.to_owned()))
    }

    fn build(overrides: Option<PathBuf>) -> Self {
        let make = |lang: Lang, surface: Surface| {
            let overrides = overrides.clone();
            let mut env = Environment::new();
            // Free text in Markdown: escaped for Discord; a terminal shows
            // it as typed.
            env.add_filter("md", move |value: &str| match surface {
                Surface::Discord => escape_markdown(value),
                Surface::Terminal => terminal_data(value),
            });
            // Where the text is read, for the few sentences that differ:
            // on a terminal, the reader is the distributor's operator.
            env.add_global(
                "surface",
                match surface {
                    Surface::Terminal => "terminal",
                    Surface::Discord => "discord",
                },
            );
            env.set_undefined_behavior(UndefinedBehavior::Strict);
            env.set_trim_blocks(true);
            env.set_lstrip_blocks(true);
            env.set_keep_trailing_newline(false);
            env.set_auto_escape_callback(
                |name| {
                    if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
                },
            );
            env.add_filter("sh", shell_quote);
            env.add_filter("utc", utc);
            env.add_filter("yaml", yaml_quote);
            env.add_filter("hcl", hcl_quote);
            env.add_filter("csv", |value: &str| crate::domain::import::csv_field(value));
            env.set_loader(move |name| {
                if let Some(dir) = &overrides {
                    let path = dir.join(lang.code()).join(name);
                    match std::fs::read_to_string(&path) {
                        Ok(body) => return Ok(Some(body)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(minijinja::Error::new(
                                minijinja::ErrorKind::InvalidOperation,
                                format!("cannot read template override {}", path.display()),
                            )
                            .with_source(e));
                        }
                    }
                }
                Ok(embedded(lang, name).map(str::to_owned))
            });
            // The glossary's data (labels.md's `{% set %}` values: label
            // maps, date layouts) as the global `labels`, read once: a
            // template that needs no macro reads it without importing
            // (evaluating all of) labels.md at each render.
            match label_data(&env, lang) {
                Ok(data) => env.add_global("labels", data),
                Err(e) => tracing::warn!(error = %e, lang = lang.code(), "labels.md could not be read for its data"),
            }
            Arc::new(env)
        };
        Self {
            en: make(Lang::En, Surface::Terminal),
            es: make(Lang::Es, Surface::Terminal),
            en_discord: make(Lang::En, Surface::Discord),
            es_discord: make(Lang::Es, Surface::Discord),
            surface: Surface::Terminal,
            bold: false,
        }
    }

    /// The same templates, rendering for a terminal; bold shows as bold
    /// when `bold` (the output is a terminal that takes it).
    pub fn for_terminal(&self, bold: bool) -> Self {
        Self { surface: Surface::Terminal, bold, ..self.clone() }
    }

    /// The same templates, rendering for Discord (free text escaped).
    pub fn for_discord(&self) -> Self {
        Self { surface: Surface::Discord, ..self.clone() }
    }

    pub fn surface(&self) -> Surface {
        self.surface
    }

    fn env(&self, lang: Lang) -> &Environment<'static> {
        match (self.surface, lang) {
            (Surface::Terminal, Lang::En) => &self.en,
            (Surface::Terminal, Lang::Es) => &self.es,
            (Surface::Discord, Lang::En) => &self.en_discord,
            (Surface::Discord, Lang::Es) => &self.es_discord,
        }
    }

    /// Renders template `name` of `lang` with `context`.
    pub fn render(&self, lang: Lang, name: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
        let template = self.env(lang).get_template(name)?;
        let text = template.render(context)?;
        let text = match self.surface {
            // Markdown is Discord's: a terminal gets plain text (and the
            // data markers go, whatever the template).
            Surface::Terminal if name.ends_with(".md") => terminal_text(&text, self.bold),
            Surface::Terminal => text.replace([DATA_START, DATA_END], ""),
            Surface::Discord => text,
        };
        Ok(text.trim_end().to_owned())
    }

    /// The variables template `name` of `lang` reads from its context.
    pub fn variables(&self, lang: Lang, name: &str) -> Result<std::collections::BTreeSet<String>, minijinja::Error> {
        let template = self.env(lang).get_template(name)?;
        Ok(template.undeclared_variables(true).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values stored before free text refused these characters still land
    /// in YAML and Discord as data.
    const LEGACY: &[&str] = &["a\u{2028}Transform: x", "b\u{fffe}", "c\u{202e}d", "e\u{10ffff}", "plain \"q\" 'x' \\"];

    #[test]
    fn yaml_quoting_reads_back_as_the_value() {
        for value in LEGACY {
            let quoted = yaml_quote(value);
            assert!(quoted.chars().all(crate::domain::names::allowed_in_free_text), "{quoted:?}");
            let doc: serde_json::Value = serde_norway::from_str(&format!("Key: {quoted}\n")).unwrap();
            assert_eq!(doc, serde_json::json!({ "Key": value }), "{quoted}");
        }
    }

    /// Hostile and legacy values read back from HCL as the value: no
    /// interpolation (`${`), directive (`%{`), end of string or line.
    #[test]
    fn hcl_quoting_reads_back_as_the_value() {
        use hcl::eval::{Context, Evaluate};
        let hostile = [
            "${file(\"/etc/passwd\")}",
            "%{ if true }x%{ endif }",
            "$${a} %%{b} $ % { } ${",
            "q\"uote\" = 1 # \\ back\\slash\\",
            "line\nbreak\r\ttab",
            "bell\u{7}\u{1b}[31m",
        ];
        for value in hostile.iter().chain(LEGACY) {
            let quoted = hcl_quote(value);
            assert!(!quoted.contains(['\n', '\r']), "{quoted}");
            let body = hcl::parse(&format!("a = {quoted}\n")).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            let attribute = body.attributes().next().unwrap();
            let read = attribute.expr().evaluate(&Context::new()).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(read, hcl::Value::from(*value), "{quoted}");
        }
    }

    #[test]
    fn utc_lays_out_an_instant_and_leaves_anything_else() {
        let at = "2026-12-02T04:05:46.123456789Z";
        assert_eq!(utc(at, "DD/MM/YYYY hh:mm"), "02/12/2026 04:05");
        assert_eq!(utc(at, "YYYY-MM-DD hh:mm:ss"), "2026-12-02 04:05:46");
        assert_eq!(utc("2026-12-02T04:05:46Z", "hh h, ñ"), "04 h, ñ");
        // A letter that starts no part, or too few of it, is text.
        assert_eq!(utc(at, "Mar MM, sss, YYY-DD, día D"), "Mar 12, 46s, YYY-02, día D");
        for odd in ["", "2026-12-02", "2026-12-02 04:05:46", "２０２６-12-02T04:05:46Z", "2026-12-02T04:05:4"] {
            assert_eq!(utc(odd, "DD/MM/YYYY"), odd);
        }
    }

    #[test]
    fn shell_quoting_is_one_word() {
        assert_eq!(shell_quote("it's $(x)"), r"'it'\''s $(x)'");
    }

    proptest::proptest! {
        /// Every character Discord's Markdown acts on comes out behind a
        /// backslash, and removing the backslashes gives the text back.
        #[test]
        fn markdown_escaping_leaves_no_active_character(text in "[\\\\*_~`|>#\\[\\]()@<:a-z \u{e9}]{0,40}|\\PC{0,40}") {
            let text: String = text.chars().filter(|c| crate::domain::names::allowed_in_free_text(*c)).collect();
            let escaped = escape_markdown(&text);
            let mut shown = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    let next = chars.next().expect("a backslash escapes something");
                    proptest::prop_assert!(MARKDOWN_SPECIAL.contains(next), "{escaped:?}");
                    shown.push(next);
                } else {
                    proptest::prop_assert!(!MARKDOWN_SPECIAL.contains(c), "{escaped:?}");
                    shown.push(c);
                }
            }
            proptest::prop_assert_eq!(shown, text);
        }
    }

    #[test]
    fn a_terminal_gets_the_templates_markdown_as_plain_text() {
        let cases = [
            ("✅ **Verified**: role `arn:aws:iam::1:role/x`.", "✅ Verified: role arn:aws:iam::1:role/x."),
            ("See [the guide](https://example.com/a?b=c) now", "See the guide (https://example.com/a?b=c) now"),
            ("[not a link] (x) and a * b", "[not a link] (x) and a * b"),
            ("Add this:\n```json\n{\"a\": 1}\n```\nDone.", "Add this:\n{\"a\": 1}\nDone."),
            ("```json\n{}\n```", "{}"),
            ("code `**kept**` as written", "code **kept** as written"),
        ];
        for (markdown, plain) in cases {
            assert_eq!(terminal_text(markdown, false), plain, "{markdown:?}");
        }
        assert_eq!(terminal_text("a **b** c **d", true), "a \x1b[1mb\x1b[22m c \x1b[1md\x1b[22m");
    }

    #[test]
    fn a_terminal_shows_data_as_typed_and_never_as_a_control() {
        let typed = "**Acme** `x` [a](b) ```";
        let rendered = format!("**Customer**: {}\n`{}`", terminal_data(typed), terminal_data("a`b"));
        assert_eq!(terminal_text(&rendered, false), format!("Customer: {typed}\na`b"));
        // An escape sequence stored under older rules is shown by its code.
        assert_eq!(terminal_text(&terminal_data("\u{1b}[31mred"), true), "\\u{1b}[31mred");
    }

    #[test]
    fn markdown_shows_refused_characters_by_their_code() {
        assert_eq!(escape_markdown("c\u{202e}d"), r"c\\u{202e}d");
    }
}
