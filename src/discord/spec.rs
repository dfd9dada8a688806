//! The slash commands orglink registers: their shape in Rust, their words in
//! `templates/<lang>/discord/commands.json`.
//!
//! Adding a command: a variant of [`SlashCommand`], its options in
//! [`SlashCommand::options`], its text in both `commands.json` files, and its
//! mapping to an app command in `inbound.rs`. Each match here is exhaustive.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Deserialize;
use serenity::all::{
    CommandOptionType, CreateCommand, CreateCommandOption, InstallationContext, InteractionContext, Permissions,
};

use crate::domain::{
    CorrectionReason, CustomerName, InvitationNote, Lang, PriceBookName, RoleDescription, TicketReason,
};
use crate::templates::Templates;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashCommand {
    LinkAccount,
    LinkAccounts,
    Instructions,
    Status,
    SupportPlan,
    PriceBook,
    VerifyRole,
    Invite,
    Ticket,
    Config,
    History,
    EditAccount,
    AccountAdmin,
    Pipeline,
}

/// One option of a command.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub key: &'static str,
    pub kind: OptionKind,
    pub required: bool,
    /// Fixed values to choose from (their display names are localised).
    pub choices: &'static [&'static str],
    /// Suggest the tenant's accounts as the user types.
    pub autocomplete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    String {
        max_length: u16,
    },
    Channel,
    Role,
    /// A file the user attaches.
    Attachment,
    Boolean,
}

/// A free-text type's bound as Discord's `max_length`, so that the option
/// and the parser agree by construction.
const fn max(chars: usize) -> u16 {
    assert!(chars <= 6000, "Discord allows at most 6000 characters in a string option");
    chars as u16
}

const fn text(key: &'static str, required: bool, max_length: u16) -> OptionSpec {
    OptionSpec { key, kind: OptionKind::String { max_length }, required, choices: &[], autocomplete: false }
}

const fn choice(key: &'static str, required: bool, choices: &'static [&'static str]) -> OptionSpec {
    OptionSpec { key, kind: OptionKind::String { max_length: 32 }, required, choices, autocomplete: false }
}

const fn account(required: bool) -> OptionSpec {
    OptionSpec {
        key: "account_id",
        kind: OptionKind::String { max_length: 40 },
        required,
        choices: &[],
        autocomplete: true,
    }
}

impl SlashCommand {
    pub const ALL: [SlashCommand; 14] = [
        Self::LinkAccount,
        Self::LinkAccounts,
        Self::Instructions,
        Self::Status,
        Self::SupportPlan,
        Self::PriceBook,
        Self::VerifyRole,
        Self::Invite,
        Self::Ticket,
        Self::Config,
        Self::History,
        Self::EditAccount,
        Self::AccountAdmin,
        Self::Pipeline,
    ];

    /// The command's name as Discord sends it back (the English one).
    pub fn key(self) -> &'static str {
        match self {
            Self::LinkAccount => "link-account",
            Self::LinkAccounts => "link-accounts",
            Self::Instructions => "instructions",
            Self::Status => "status",
            Self::SupportPlan => "support-plan",
            Self::PriceBook => "price-book",
            Self::VerifyRole => "verify-role",
            Self::Invite => "invite",
            Self::Ticket => "ticket",
            Self::Config => "orglink-config",
            Self::History => "history",
            Self::EditAccount => "edit-account",
            Self::AccountAdmin => "account-admin",
            Self::Pipeline => "pipeline",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    pub fn options(self) -> Vec<OptionSpec> {
        match self {
            Self::LinkAccount => vec![
                text("account_id", true, 40),
                text("customer", true, max(CustomerName::MAX_CHARS)),
                choice("support_tier", true, &["business", "developer", "basic"]),
                text("root_email", false, 64),
                text("price_book", false, max(PriceBookName::MAX_CHARS)),
                choice("account_kind", false, &["standalone", "member", "management"]),
            ],
            Self::LinkAccounts => vec![
                OptionSpec {
                    key: "file",
                    kind: OptionKind::Attachment,
                    required: true,
                    choices: &[],
                    autocomplete: false,
                },
                OptionSpec {
                    key: "dry_run",
                    kind: OptionKind::Boolean,
                    required: false,
                    choices: &[],
                    autocomplete: false,
                },
            ],
            Self::Instructions => vec![
                account(true),
                choice("language", false, &["en", "es"]),
                choice("format", false, &["text", "cloudformation", "cli", "terraform"]),
            ],
            Self::Status => vec![account(false)],
            Self::SupportPlan => vec![account(true), choice("group", true, &["passthrough", "business"])],
            Self::PriceBook => vec![account(true), text("name", false, max(PriceBookName::MAX_CHARS))],
            Self::VerifyRole => vec![
                account(true),
                text("role_arn", true, 2048),
                text("description", false, max(RoleDescription::MAX_CHARS)),
            ],
            Self::Invite => vec![text("account_id", true, 40), text("note", false, max(InvitationNote::MAX_CHARS))],
            Self::Ticket => vec![account(true), text("reason", true, max(TicketReason::MAX_CHARS))],
            Self::Config => vec![
                OptionSpec {
                    key: "channel",
                    kind: OptionKind::Channel,
                    required: false,
                    choices: &[],
                    autocomplete: false,
                },
                choice("language", false, &["en", "es"]),
                OptionSpec { key: "role", kind: OptionKind::Role, required: false, choices: &[], autocomplete: false },
            ],
            Self::History => vec![account(true)],
            Self::EditAccount => vec![
                account(true),
                text("customer", false, max(CustomerName::MAX_CHARS)),
                text("root_email", false, 64),
                choice("support_tier", false, &["business", "developer", "basic"]),
                choice("account_kind", false, &["standalone", "member"]),
            ],
            Self::AccountAdmin => vec![
                choice("action", true, &["remove", "transfer"]),
                text("account_id", true, 40),
                text("reason", true, max(CorrectionReason::MAX_CHARS)),
                text("tenant", false, 64),
                text("to", false, 64),
                choice("force", false, &["no", "yes"]),
            ],
            Self::Pipeline => vec![],
        }
    }

    /// Discord hides the command from members without this permission (the
    /// app checks again on every use).
    fn default_permissions(self) -> Option<Permissions> {
        match self {
            // Operations' own: hidden from members without Manage Server
            // (the app checks the operations role on every use).
            Self::Config | Self::AccountAdmin | Self::Pipeline => Some(Permissions::MANAGE_GUILD),
            Self::LinkAccount
            | Self::LinkAccounts
            | Self::Instructions
            | Self::Status
            | Self::SupportPlan
            | Self::PriceBook
            | Self::VerifyRole
            | Self::Invite
            | Self::Ticket
            | Self::History
            | Self::EditAccount => None,
        }
    }
}

/// The words of the commands in one language.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandTexts(pub BTreeMap<String, CommandText>);

#[derive(Debug, Clone, Deserialize)]
pub struct CommandText {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub options: BTreeMap<String, OptionText>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OptionText {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub choices: BTreeMap<String, String>,
}

impl CommandTexts {
    pub fn load(templates: &Templates, lang: Lang) -> anyhow::Result<Self> {
        let json = templates.render(lang, "discord/commands.json", ())?;
        serde_json::from_str(&json).with_context(|| format!("templates/{lang}/discord/commands.json"))
    }

    fn command(&self, command: SlashCommand) -> anyhow::Result<&CommandText> {
        self.0.get(command.key()).with_context(|| format!("no text for command {}", command.key()))
    }
}

impl CommandText {
    fn option(&self, key: &str) -> anyhow::Result<&OptionText> {
        self.options.get(key).with_context(|| format!("no text for option {key} of {}", self.name))
    }
}

/// Discord locales that get the Spanish words.
const SPANISH_LOCALES: [&str; 2] = ["es-ES", "es-419"];

/// The payload that registers every command, in English with Spanish
/// localisations.
pub fn registration_payload(templates: &Templates) -> anyhow::Result<Vec<CreateCommand>> {
    let en = CommandTexts::load(templates, Lang::En)?;
    let es = CommandTexts::load(templates, Lang::Es)?;
    SlashCommand::ALL
        .into_iter()
        .map(|command| {
            let (en_text, es_text) = (en.command(command)?, es.command(command)?);
            anyhow::ensure!(en_text.name == command.key(), "the English name of {} must be its key", command.key());
            let mut create = CreateCommand::new(&en_text.name)
                .description(&en_text.description)
                .contexts(vec![InteractionContext::Guild])
                .integration_types(vec![InstallationContext::Guild]);
            for locale in SPANISH_LOCALES {
                create =
                    create.name_localized(locale, &es_text.name).description_localized(locale, &es_text.description);
            }
            if let Some(permissions) = command.default_permissions() {
                create = create.default_member_permissions(permissions);
            }
            for option in command.options() {
                let (en_opt, es_opt) = (en_text.option(option.key)?, es_text.option(option.key)?);
                anyhow::ensure!(en_opt.name == option.key, "the English name of option {} must be its key", option.key);
                let kind = match option.kind {
                    OptionKind::String { .. } => CommandOptionType::String,
                    OptionKind::Channel => CommandOptionType::Channel,
                    OptionKind::Role => CommandOptionType::Role,
                    OptionKind::Attachment => CommandOptionType::Attachment,
                    OptionKind::Boolean => CommandOptionType::Boolean,
                };
                let mut create_option = CreateCommandOption::new(kind, &en_opt.name, &en_opt.description)
                    .required(option.required)
                    .set_autocomplete(option.autocomplete);
                if let OptionKind::String { max_length } = option.kind {
                    create_option = create_option.max_length(max_length);
                }
                for locale in SPANISH_LOCALES {
                    create_option = create_option
                        .name_localized(locale, &es_opt.name)
                        .description_localized(locale, &es_opt.description);
                }
                for value in option.choices {
                    let en_name = en_opt.choices.get(*value).with_context(|| format!("no English text for {value}"))?;
                    let es_name = es_opt.choices.get(*value).with_context(|| format!("no Spanish text for {value}"))?;
                    create_option = create_option.add_string_choice_localized(
                        en_name,
                        *value,
                        SPANISH_LOCALES.map(|locale| (locale, es_name.as_str())),
                    );
                }
                create = create.add_option(create_option);
            }
            Ok(create)
        })
        .collect()
}
