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

#[derive(Clone)]
pub struct Templates {
    en: Arc<Environment<'static>>,
    es: Arc<Environment<'static>>,
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
        let make = |lang: Lang| {
            let overrides = overrides.clone();
            let mut env = Environment::new();
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
            Arc::new(env)
        };
        Self { en: make(Lang::En), es: make(Lang::Es) }
    }

    fn env(&self, lang: Lang) -> &Environment<'static> {
        match lang {
            Lang::En => &self.en,
            Lang::Es => &self.es,
        }
    }

    /// Renders template `name` of `lang` with `context`.
    pub fn render(&self, lang: Lang, name: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
        let template = self.env(lang).get_template(name)?;
        let text = template.render(context)?;
        Ok(text.trim_end().to_owned())
    }

    /// The variables template `name` of `lang` reads from its context.
    pub fn variables(&self, lang: Lang, name: &str) -> Result<std::collections::BTreeSet<String>, minijinja::Error> {
        let template = self.env(lang).get_template(name)?;
        Ok(template.undeclared_variables(true).into_iter().collect())
    }
}
