//! What a Discord interaction asks for, as app types. Pure: no I/O.

use serenity::all::{
    ActionRowComponent, CommandDataOptionValue, CommandInteraction, ComponentInteraction, Embed, Interaction, Member,
    ModalInteraction,
};

use super::attachments::{Attached, Cdn};
use super::spec::SlashCommand;
use crate::app::{Actor, Command, InstructionsFormat, ListFormat, Rights, Scope, UserError};
use crate::domain::{AccountId, ChatId, Edit, Lang, NewAccount, ParseError, PriceBookChoice, TenantDecision, TenantId};

/// Where the distributor's operations team works.
#[derive(Debug, Clone, Default)]
pub struct OpsSpace {
    pub guild: Option<ChatId>,
    pub role: Option<ChatId>,
}

/// Who sent an interaction, from where, in which language.
#[derive(Debug, Clone)]
pub struct Sender {
    pub actor: Actor,
    pub tenant: TenantId,
    /// The user's Discord language, when orglink speaks it.
    pub locale_lang: Option<Lang>,
}

/// What the interaction asks for.
#[derive(Debug, Clone)]
pub enum Request {
    Ping,
    Run {
        command: Command,
        lang: Option<Lang>,
    },
    /// Autocomplete of an account option.
    SuggestAccounts {
        partial: String,
    },
    /// "I created the role": open the modal that asks for the ARN.
    OpenRoleModal {
        account: AccountId,
    },
    /// Approve or Deny on the operations notice of a pending tenant; the
    /// answer replaces the notice (`prompt`, its embeds) and its buttons.
    DecideTenant {
        tenant: TenantId,
        decision: TenantDecision,
        prompt: Vec<Embed>,
    },
    /// A page button of `/pipeline`: the same message shows that page.
    PipelinePage {
        page: u32,
    },
    /// `/link-accounts`: the attached CSV file, fetched once Discord has
    /// its deferred answer, then imported for the sender's server.
    ImportFile {
        file: Attached,
        dry_run: bool,
    },
}

/// A parsed interaction: who (unless a ping), and what, or why not.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub sender: Option<Sender>,
    /// The user's Discord language even when there is no sender (DMs).
    pub locale_lang: Option<Lang>,
    pub request: Result<Request, UserError>,
}

/// The custom IDs of orglink's buttons and modal: `ol:<action>:<account>`,
/// and `ol:tenant-<decision>:<server>` on the operations notice of a
/// pending tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomId {
    CloudFormation(AccountId),
    AwsCli(AccountId),
    Terraform(AccountId),
    RoleCreated(AccountId),
    Later(AccountId),
    RoleModal(AccountId),
    CheckNow(AccountId),
    ApproveTenant(ChatId),
    DenyTenant(ChatId),
    /// A page of `/pipeline` (from 0, at most `app::PIPELINE_MAX_PAGE`).
    PipelinePage(u32),
}

impl CustomId {
    pub fn encode(self) -> String {
        let (action, subject) = match self {
            Self::CloudFormation(a) => ("cfn", a.to_string()),
            Self::AwsCli(a) => ("cli", a.to_string()),
            Self::Terraform(a) => ("tf", a.to_string()),
            Self::RoleCreated(a) => ("role", a.to_string()),
            Self::Later(a) => ("later", a.to_string()),
            Self::RoleModal(a) => ("arn", a.to_string()),
            Self::CheckNow(a) => ("check", a.to_string()),
            Self::ApproveTenant(server) => ("tenant-approve", server.to_string()),
            Self::DenyTenant(server) => ("tenant-deny", server.to_string()),
            Self::PipelinePage(page) => ("pipeline", page.to_string()),
        };
        format!("ol:{action}:{subject}")
    }

    /// Parses a custom ID coming back from Discord: anything but exactly
    /// what [`CustomId::encode`] makes is refused.
    pub fn parse(input: &str) -> Option<Self> {
        let mut parts = input.split(':');
        let (Some("ol"), Some(action), Some(subject), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let account = || AccountId::from_bytes(subject.as_bytes());
        // A server ID exactly as `encode` writes it: digits, no sign, no
        // leading zero, nothing around.
        let server = || subject.parse::<ChatId>().ok().filter(|id| id.to_string() == subject);
        Some(match action {
            "cfn" => Self::CloudFormation(account()?),
            "cli" => Self::AwsCli(account()?),
            "tf" => Self::Terraform(account()?),
            "role" => Self::RoleCreated(account()?),
            "later" => Self::Later(account()?),
            "arn" => Self::RoleModal(account()?),
            "check" => Self::CheckNow(account()?),
            "tenant-approve" => Self::ApproveTenant(server()?),
            "tenant-deny" => Self::DenyTenant(server()?),
            "pipeline" => Self::PipelinePage(page(subject)?),
            _ => return None,
        })
    }
}

/// A page number exactly as `encode` writes it (digits, no sign, no
/// leading zero) and within the pages the pipeline shows.
fn page(subject: &str) -> Option<u32> {
    let digits = !subject.is_empty() && subject.len() <= 3 && subject.bytes().all(|b| b.is_ascii_digit());
    let page: u32 = subject.parse().ok().filter(|_| digits)?;
    (page.to_string() == subject && page <= crate::app::PIPELINE_MAX_PAGE).then_some(page)
}

/// The modal's text inputs.
pub const ROLE_ARN_INPUT: &str = "role_arn";
pub const DESCRIPTION_INPUT: &str = "description";

/// Reads an interaction. `ops` says where the operations team works, `cdn`
/// where attached files may come from.
pub fn parse(interaction: &Interaction, ops: &OpsSpace, cdn: &Cdn) -> Incoming {
    let (locale, guild, member, user) = match interaction {
        Interaction::Ping(_) => return Incoming { sender: None, locale_lang: None, request: Ok(Request::Ping) },
        Interaction::Command(i) | Interaction::Autocomplete(i) => {
            (&i.locale, i.guild_id, i.member.as_deref(), i.user.id)
        }
        Interaction::Component(i) => (&i.locale, i.guild_id, i.member.as_ref(), i.user.id),
        Interaction::Modal(i) => (&i.locale, i.guild_id, i.member.as_ref(), i.user.id),
        _ => return Incoming { sender: None, locale_lang: None, request: Err(UserError::UnknownInteraction) },
    };
    let locale_lang = Lang::from_locale(locale);
    let (Some(guild), Some(member)) = (guild, member) else {
        return Incoming { sender: None, locale_lang, request: Err(UserError::DirectMessage) };
    };
    let guild_chat = ChatId::new(guild.get()).expect("Discord IDs are not zero");
    let tenant: TenantId = guild.to_string().parse().expect("a guild ID is a valid tenant");
    let mut sender = Sender {
        actor: Actor {
            id: format!("discord:{}", user.get()),
            scope: Scope::Tenant(tenant.clone()),
            rights: rights(member, guild_chat, ops),
            claim_of: None,
        },
        tenant,
        locale_lang,
    };
    let request = match interaction {
        Interaction::Command(i) => command(i, cdn).map(|(request, claim_of)| {
            sender.actor.claim_of = claim_of;
            request
        }),
        Interaction::Autocomplete(i) => Ok(suggest(i)),
        Interaction::Component(i) => component(i),
        Interaction::Modal(i) => modal(i),
        _ => Err(UserError::UnknownInteraction),
    };
    Incoming { sender: Some(sender), locale_lang, request }
}

fn rights(member: &Member, guild: ChatId, ops: &OpsSpace) -> Rights {
    let roles: Vec<ChatId> = member.roles.iter().filter_map(|r| ChatId::new(r.get())).collect();
    let manage_server = member.permissions.is_some_and(|p| p.manage_guild() || p.administrator());
    let ops = ops.guild == Some(guild) && ops.role.is_some_and(|r| roles.contains(&r));
    Rights { manage_server, roles, ops }
}

/// The options of a command, by name, as typed.
struct Options<'a>(&'a CommandInteraction);

impl Options<'_> {
    fn string(&self, name: &str) -> Option<&str> {
        self.0.data.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.as_str()),
            CommandDataOptionValue::Autocomplete { value, .. } => Some(value.as_str()),
            _ => None,
        })
    }

    fn required(&self, name: &str) -> &str {
        // Discord enforces required options; an absent one reads as empty
        // and fails the value's own parser with a clear message.
        self.string(name).unwrap_or_default()
    }

    fn id(&self, name: &str) -> Option<ChatId> {
        self.0.data.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
            CommandDataOptionValue::Channel(c) => ChatId::new(c.get()),
            CommandDataOptionValue::Role(r) => ChatId::new(r.get()),
            _ => None,
        })
    }

    fn parsed<T: std::str::FromStr<Err = ParseError>>(&self, name: &str) -> Result<Option<T>, ParseError> {
        self.string(name).map(str::parse).transpose()
    }

    fn boolean(&self, name: &str) -> Option<bool> {
        self.0.data.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
            CommandDataOptionValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    /// The file an attachment option names, as the interaction's resolved
    /// data describes it, checked against `cdn` (its size, its address).
    fn attachment(&self, name: &str, cdn: &Cdn) -> Result<Attached, UserError> {
        let id = self.0.data.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
            CommandDataOptionValue::Attachment(id) => Some(*id),
            _ => None,
        });
        // Discord always resolves the file an option names: anything else
        // is not an interaction of Discord's.
        let file = id.and_then(|id| self.0.data.resolved.attachments.get(&id)).ok_or(UserError::UnknownInteraction)?;
        cdn.attached(&file.url, u64::from(file.size), &file.filename)
    }
}

/// The request, and the tenant whose claim an operations command names.
fn command(interaction: &CommandInteraction, cdn: &Cdn) -> Result<(Request, Option<TenantId>), UserError> {
    let Some(slash) = SlashCommand::from_key(&interaction.data.name) else {
        return Err(UserError::UnknownInteraction);
    };
    let o = Options(interaction);
    let tenant: TenantId = interaction.guild_id.map(|g| g.to_string()).unwrap_or_default().parse()?;
    let (mut lang, mut claim_of) = (None, None);
    let command = match slash {
        SlashCommand::LinkAccount => Command::AddAccount(NewAccount {
            id: o.required("account_id").parse()?,
            tenant,
            customer: o.required("customer").parse()?,
            root_email: o.parsed("root_email")?,
            support_tier: o.required("support_tier").parse()?,
            kind: o.parsed("account_kind")?.unwrap_or_default(),
            price_book: o.parsed("price_book")?,
        }),
        SlashCommand::LinkAccounts => {
            // Fetched and read later, off Discord's 3 seconds: the request
            // carries the file, checked, not yet the command.
            let file = o.attachment("file", cdn)?;
            return Ok((Request::ImportFile { file, dry_run: o.boolean("dry_run").unwrap_or(false) }, None));
        }
        SlashCommand::Instructions => {
            lang = o.parsed::<Lang>("language")?;
            let format = o.parsed::<InstructionsFormat>("format")?.unwrap_or_default();
            Command::Instructions { account: o.required("account_id").parse()?, format }
        }
        SlashCommand::Status => match o.parsed::<AccountId>("account_id")? {
            Some(account) => Command::ShowAccount { account },
            None => Command::ListAccounts {
                tenant: Some(tenant),
                filter: crate::domain::ListFilter::default(),
                format: crate::app::ListFormat::Text,
            },
        },
        SlashCommand::SupportPlan => {
            Command::SetSupportPlan { account: o.required("account_id").parse()?, group: o.required("group").parse()? }
        }
        SlashCommand::PriceBook => Command::SetPriceBook {
            account: o.required("account_id").parse()?,
            price_book: PriceBookChoice::from_name(o.string("name"))?,
        },
        SlashCommand::VerifyRole => Command::VerifyRole {
            account: o.required("account_id").parse()?,
            arn: Some(o.required("role_arn").parse()?),
            description: o.parsed("description")?,
        },
        SlashCommand::Invite => Command::Invite { account: o.required("account_id").parse()?, note: o.parsed("note")? },
        SlashCommand::Ticket => {
            Command::OpenTicket { account: o.required("account_id").parse()?, reason: o.required("reason").parse()? }
        }
        SlashCommand::Config => {
            Command::Configure { channel: o.id("channel"), language: o.parsed("language")?, account_role: o.id("role") }
        }
        SlashCommand::History => Command::History { account: o.required("account_id").parse()? },
        SlashCommand::EditAccount => Command::EditAccount {
            account: o.required("account_id").parse()?,
            edit: Edit {
                customer: o.parsed("customer")?,
                root_email: o.parsed("root_email")?,
                support_tier: o.parsed("support_tier")?,
                kind: o.parsed("account_kind")?,
                price_book: None,
            },
            reason: None,
        },
        SlashCommand::AccountAdmin => {
            claim_of = o.parsed::<TenantId>("tenant")?;
            let (account, reason) = (o.required("account_id").parse()?, o.required("reason").parse()?);
            match o.required("action") {
                "transfer" => Command::TransferAccount { account, to: o.required("to").parse()?, reason },
                "remove" => Command::RemoveAccount { account, reason, force: o.string("force") == Some("yes") },
                _ => return Err(UserError::UnknownInteraction),
            }
        }
        SlashCommand::Pipeline => Command::Pipeline { tenant: None, format: ListFormat::Text, page: Some(0) },
    };
    Ok((Request::Run { command, lang }, claim_of))
}

fn suggest(interaction: &CommandInteraction) -> Request {
    let partial = interaction.data.autocomplete().map(|o| o.value.to_owned()).unwrap_or_default();
    Request::SuggestAccounts { partial }
}

fn component(interaction: &ComponentInteraction) -> Result<Request, UserError> {
    let run = |command| Ok(Request::Run { command, lang: None });
    let decide = |server, decision| {
        let prompt = interaction.message.embeds.clone();
        Ok(Request::DecideTenant { tenant: TenantId::of_server(server), decision, prompt })
    };
    match CustomId::parse(&interaction.data.custom_id) {
        Some(CustomId::CloudFormation(account)) => {
            run(Command::Instructions { account, format: InstructionsFormat::CloudFormation })
        }
        Some(CustomId::AwsCli(account)) => run(Command::Instructions { account, format: InstructionsFormat::Cli }),
        Some(CustomId::Terraform(account)) => {
            run(Command::Instructions { account, format: InstructionsFormat::Terraform })
        }
        Some(CustomId::RoleCreated(account)) => Ok(Request::OpenRoleModal { account }),
        Some(CustomId::Later(account)) => run(Command::Later { account }),
        Some(CustomId::CheckNow(account)) => run(Command::VerifyRole { account, arn: None, description: None }),
        Some(CustomId::ApproveTenant(server)) => decide(server, TenantDecision::Approve),
        Some(CustomId::DenyTenant(server)) => decide(server, TenantDecision::Deny),
        Some(CustomId::PipelinePage(page)) => Ok(Request::PipelinePage { page }),
        Some(CustomId::RoleModal(_)) | None => Err(UserError::UnknownInteraction),
    }
}

fn modal(interaction: &ModalInteraction) -> Result<Request, UserError> {
    let Some(CustomId::RoleModal(account)) = CustomId::parse(&interaction.data.custom_id) else {
        return Err(UserError::UnknownInteraction);
    };
    let input = |id: &str| {
        interaction.data.components.iter().flat_map(|row| &row.components).find_map(|c| match c {
            ActionRowComponent::InputText(t) if t.custom_id == id => Some(t.value.clone().unwrap_or_default()),
            _ => None,
        })
    };
    let arn = input(ROLE_ARN_INPUT).unwrap_or_default().parse()?;
    let description = input(DESCRIPTION_INPUT).filter(|d| !d.trim().is_empty()).map(|d| d.parse()).transpose()?;
    Ok(Request::Run { command: Command::VerifyRole { account, arn: Some(arn), description }, lang: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn custom_ids_round_trip_and_refuse_forgeries() {
        let account: AccountId = "123456789012".parse().unwrap();
        for id in [
            CustomId::CloudFormation(account),
            CustomId::AwsCli(account),
            CustomId::Terraform(account),
            CustomId::RoleCreated(account),
            CustomId::Later(account),
            CustomId::RoleModal(account),
            CustomId::CheckNow(account),
            CustomId::ApproveTenant("900000000000000501".parse().unwrap()),
            CustomId::DenyTenant("1".parse().unwrap()),
            CustomId::PipelinePage(0),
            CustomId::PipelinePage(7),
            CustomId::PipelinePage(crate::app::PIPELINE_MAX_PAGE),
        ] {
            let encoded = id.encode();
            assert!(encoded.len() <= 100);
            assert_eq!(CustomId::parse(&encoded), Some(id));
        }
        for forged in [
            "",
            "ol",
            "ol:cfn",
            "ol:cfn:12345678901",
            "ol:cfn:1234-5678-9012",
            "ol:cfn:123456789012:x",
            "xx:cfn:123456789012",
            "ol:rm:123456789012",
            "ol:cfn:12345678901２",
            "ol:tenant-approve:",
            "ol:tenant-approve:0",
            "ol:tenant-approve:0900000000000000501",
            "ol:tenant-approve:+900000000000000501",
            "ol:tenant-approve: 900000000000000501",
            "ol:tenant-approve:900000000000000501 ",
            "ol:tenant-approve:18446744073709551616",
            "ol:tenant-approve:acme",
            "ol:tenant-suspend:900000000000000501",
            "ol:tenant-approve:900000000000000501:x",
            "ol:approve:900000000000000501",
            "ol:pipeline:",
            "ol:pipeline:01",
            "ol:pipeline:-1",
            "ol:pipeline:+1",
            "ol:pipeline: 1",
            "ol:pipeline:1 ",
            "ol:pipeline:100",
            "ol:pipeline:4294967296",
            "ol:pipeline:1:2",
            "ol:pipeline:x",
            "ol:pipeline:１",
        ] {
            assert_eq!(CustomId::parse(forged), None, "{forged}");
        }
    }

    /// `/link-accounts` as Discord sends it (`tests/fixtures/discord/`),
    /// changed by `change`, read with the CDN at its default.
    fn link_accounts(change: impl FnOnce(&mut serde_json::Value)) -> Incoming {
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/discord/command_link_accounts.json")).unwrap();
        change(&mut json);
        let interaction: Interaction = serde_json::from_value(json).unwrap();
        let cdn = Cdn::new(crate::config::DISCORD_CDN_BASE_URL).unwrap();
        parse(&interaction, &OpsSpace::default(), &cdn)
    }

    const FILE: &str = "1310000000000000001";

    #[test]
    fn an_attachment_option_becomes_the_file_it_resolves_to() {
        let incoming = link_accounts(|_| {});
        let Ok(Request::ImportFile { file, dry_run }) = incoming.request else { panic!("{:?}", incoming.request) };
        assert!(!dry_run);
        assert_eq!(file.filename, "accounts.csv");
        assert_eq!(file.size, 142);
        assert_eq!(file.url.host_str(), Some("cdn.discordapp.com"));
        assert!(file.url.path().ends_with("/accounts.csv") && file.url.query().is_some_and(|q| q.contains("hm=")));
        assert_eq!(incoming.sender.unwrap().tenant.as_str(), "900000000000000001");

        let incoming = link_accounts(|i| {
            i["data"]["options"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({ "name": "dry_run", "type": 5, "value": true }));
        });
        assert!(matches!(incoming.request, Ok(Request::ImportFile { dry_run: true, .. })), "{:?}", incoming.request);
    }

    #[test]
    fn an_attachment_too_large_or_from_elsewhere_is_refused_as_it_is_read() {
        let max = super::super::attachments::MAX_BYTES;
        let refused = |change: fn(&mut serde_json::Value)| link_accounts(change).request.unwrap_err();
        assert_eq!(
            refused(|i| i["data"]["resolved"]["attachments"][FILE]["size"] = serde_json::json!(2_000_000)),
            UserError::AttachmentTooLarge { size: Some(2_000_000), max }
        );
        assert_eq!(
            refused(|i| {
                i["data"]["resolved"]["attachments"][FILE]["url"] =
                    serde_json::json!("https://cdn.discordapp.com.evil.example/attachments/1/2/accounts.csv")
            }),
            UserError::AttachmentNotFromChat
        );
        assert_eq!(
            refused(|i| {
                i["data"]["resolved"]["attachments"][FILE]["url"] =
                    serde_json::json!("https://media.discordapp.net/attachments/1/2/accounts.csv")
            }),
            UserError::AttachmentNotFromChat,
            "the media proxy is not the file server configured"
        );
        // An option naming a file the interaction does not carry, or no
        // option at all: not an interaction of Discord's.
        assert_eq!(refused(|i| i["data"]["resolved"] = serde_json::json!({})), UserError::UnknownInteraction);
        assert_eq!(refused(|i| i["data"]["options"] = serde_json::json!([])), UserError::UnknownInteraction);
    }

    proptest! {
        #[test]
        fn custom_id_parsing_never_panics(
            input in "\\PC{0,120}|ol:[a-z]{0,6}:[0-9]{0,14}|ol:tenant-(approve|deny|x):[0-9 +-]{0,22}"
        ) {
            if let Some(id) = CustomId::parse(&input) {
                prop_assert_eq!(id.encode(), input);
            }
        }
    }
}
