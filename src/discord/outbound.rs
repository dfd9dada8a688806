//! App replies as Discord responses, within Discord's limits.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serenity::all::{
    AutocompleteChoice, ButtonStyle, Colour, CreateActionRow, CreateAllowedMentions, CreateAttachment,
    CreateAutocompleteResponse, CreateButton, CreateEmbed, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateModal, EditInteractionResponse, Embed, InputTextStyle,
};

use super::inbound::{CustomId, DESCRIPTION_INPUT, ROLE_ARN_INPUT};
use crate::app::{AccountSummary, Offer, Reply, Tone};
use crate::domain::{AccountId, Lang};
use crate::templates::Templates;

/// Discord's limits on one message.
pub const EMBED_DESCRIPTION_MAX: usize = 4096;
pub const EMBEDS_MAX: usize = 10;
pub const MESSAGE_EMBED_CHARS_MAX: usize = 6000;
pub const AUTOCOMPLETE_CHOICES_MAX: usize = 25;
const CHOICE_NAME_MAX: usize = 100;
/// The file a reply too long for embeds is attached as.
pub const LONG_REPLY_FILE: &str = "orglink-reply.md";

/// What to answer an interaction with at once, and what to send after.
pub struct Response {
    pub immediate: CreateInteractionResponse,
    /// Sent as an edit of the original response once the immediate answer
    /// is out: files (they cannot travel in the HTTP endpoint's response
    /// body), or the result of work that waits on AWS.
    pub followup: Option<FollowUp>,
}

pub enum FollowUp {
    Ready(EditInteractionResponse),
    /// Computed after the immediate (deferred) answer went out.
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = EditInteractionResponse> + Send>>),
}

impl Response {
    pub fn now(immediate: CreateInteractionResponse) -> Self {
        Self { immediate, followup: None }
    }
}

/// The interface words of one language (`templates/<lang>/discord/ui.json`).
#[derive(Debug, Clone)]
pub struct Ui(BTreeMap<String, String>);

impl Ui {
    pub fn load(templates: &Templates, lang: Lang) -> anyhow::Result<Self> {
        let json = templates.render(lang, "discord/ui.json", ())?;
        Ok(Self(serde_json::from_str(&json).with_context(|| format!("templates/{lang}/discord/ui.json"))?))
    }

    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.get(key).map(String::as_str).unwrap_or(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

/// What every message orglink sends may ping: nobody. Nothing is parsed
/// from the text (a customer named `@everyone` pings no one), and no user
/// or role is listed: a mention orglink writes itself (who approved a
/// server, a channel's role) shows as a name and notifies nobody.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new().empty_users().empty_roles()
}

/// A message response with nothing to ping.
fn response_message() -> CreateInteractionResponseMessage {
    CreateInteractionResponseMessage::new().allowed_mentions(no_mentions())
}

/// An edit of a response with nothing to ping.
fn edit_response() -> EditInteractionResponse {
    EditInteractionResponse::new().allowed_mentions(no_mentions())
}

/// Each tone's colour, for replies and notifications alike.
pub fn colour(tone: Tone) -> Colour {
    match tone {
        Tone::Success => Colour::new(0x2ECC71),
        Tone::Warning => Colour::new(0xF1C40F),
        Tone::Error => Colour::new(0xE74C3C),
        Tone::Info => Colour::new(0x5865F2),
    }
}

/// Splits `text` into pieces of at most `max` characters, at line breaks
/// where it can.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        loop {
            let line_len = line.chars().count();
            if current_len + line_len <= max {
                current.push_str(line);
                current_len += line_len;
                break;
            }
            if current_len > 0 {
                pieces.push(std::mem::take(&mut current));
                current_len = 0;
                continue;
            }
            // One line longer than `max`: cut it.
            let cut = line.char_indices().nth(max).map_or(line.len(), |(i, _)| i);
            pieces.push(line[..cut].to_owned());
            line = &line[cut..];
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current);
    }
    pieces.into_iter().map(|p| p.trim_end().to_owned()).filter(|p| !p.is_empty()).collect()
}

/// The parts of a rendered reply within Discord's limits.
struct Parts {
    embeds: Vec<CreateEmbed>,
    components: Vec<CreateActionRow>,
    files: Vec<CreateAttachment>,
}

fn parts(reply: &Reply, rendered: Vec<(String, Option<String>)>, ui: &Ui) -> Parts {
    let mut texts = Vec::new();
    let mut files = Vec::new();
    for (text, filename) in rendered {
        match filename {
            Some(name) => files.push(CreateAttachment::bytes(text.into_bytes(), name)),
            None => texts.push(text),
        }
    }
    let mut pieces: Vec<String> = texts.iter().flat_map(|t| split(t, EMBED_DESCRIPTION_MAX)).collect();
    let total: usize = pieces.iter().map(|p| p.chars().count()).sum();
    if pieces.len() > EMBEDS_MAX || total > MESSAGE_EMBED_CHARS_MAX {
        files.push(CreateAttachment::bytes(texts.join("\n\n").into_bytes(), LONG_REPLY_FILE));
        pieces = vec![ui.get("attached").to_owned()];
    }
    let embeds: Vec<CreateEmbed> =
        pieces.into_iter().map(|p| CreateEmbed::new().description(p).colour(colour(reply.tone))).collect();
    Parts { embeds, components: buttons(&reply.offers, ui), files }
}

/// The reply as an edit of a deferred response.
pub fn edit(reply: &Reply, rendered: Vec<(String, Option<String>)>, ui: &Ui) -> EditInteractionResponse {
    let Parts { embeds, components, files } = parts(reply, rendered, ui);
    files
        .into_iter()
        .fold(edit_response().embeds(embeds).components(components), |edit, file| edit.new_attachment(file))
}

/// The reply as an interaction response: at once, or deferred when it
/// carries files.
pub fn reply(reply: &Reply, rendered: Vec<(String, Option<String>)>, ui: &Ui) -> Response {
    let private = reply.is_private();
    let Parts { embeds, components, files } = parts(reply, rendered, ui);
    if files.is_empty() {
        let message = response_message().embeds(embeds).components(components).ephemeral(private);
        return Response::now(CreateInteractionResponse::Message(message));
    }
    let followup = files
        .into_iter()
        .fold(edit_response().embeds(embeds).components(components), |edit, file| edit.new_attachment(file));
    Response {
        immediate: CreateInteractionResponse::Defer(response_message().ephemeral(private)),
        followup: Some(FollowUp::Ready(followup)),
    }
}

/// A deferred answer: only the user sees the "thinking…" state and the result.
pub fn deferred(followup: FollowUp) -> Response {
    Response {
        immediate: CreateInteractionResponse::Defer(response_message().ephemeral(true)),
        followup: Some(followup),
    }
}

/// The most characters Discord takes in a link button's URL.
pub const BUTTON_URL_MAX: usize = 512;
/// Buttons in one row, and rows in one message, as Discord allows.
const BUTTONS_PER_ROW: usize = 5;
const ROWS_MAX: usize = 5;

/// The buttons of `offers`, five to a row. A link too long for a button
/// is left out (the text of the reply carries it).
pub fn buttons(offers: &[Offer], ui: &Ui) -> Vec<CreateActionRow> {
    let all: Vec<CreateButton> = offers
        .iter()
        .filter_map(|offer| {
            let (id, label, style) = match offer {
                Offer::LaunchStack(url) if url.chars().count() <= BUTTON_URL_MAX => {
                    return Some(CreateButton::new_link(url).label(ui.get("button_launch_stack")));
                }
                Offer::LaunchStack(_) => return None,
                Offer::CloudFormation(a) => {
                    (CustomId::CloudFormation(*a), "button_cloudformation", ButtonStyle::Secondary)
                }
                Offer::AwsCli(a) => (CustomId::AwsCli(*a), "button_aws_cli", ButtonStyle::Secondary),
                Offer::Terraform(a) => (CustomId::Terraform(*a), "button_terraform", ButtonStyle::Secondary),
                Offer::RoleCreated(a) => (CustomId::RoleCreated(*a), "button_role_created", ButtonStyle::Success),
                Offer::Later(a) => (CustomId::Later(*a), "button_later", ButtonStyle::Secondary),
                Offer::CheckNow(a) => (CustomId::CheckNow(*a), "button_check_now", ButtonStyle::Primary),
                // Only a Discord server is decided from Discord.
                Offer::ApproveTenant(t) => {
                    (CustomId::ApproveTenant(t.server()?), "button_approve_tenant", ButtonStyle::Success)
                }
                Offer::DenyTenant(t) => (CustomId::DenyTenant(t.server()?), "button_deny_tenant", ButtonStyle::Danger),
                Offer::PipelinePage { page, next } => {
                    let label = if *next { "button_next_page" } else { "button_previous_page" };
                    (CustomId::PipelinePage(*page), label, ButtonStyle::Secondary)
                }
            };
            Some(CreateButton::new(id.encode()).label(ui.get(label)).style(style))
        })
        .take(BUTTONS_PER_ROW * ROWS_MAX)
        .collect();
    all.chunks(BUTTONS_PER_ROW).map(|row| CreateActionRow::Buttons(row.to_vec())).collect()
}

/// The answer to a button of a notice (`prompt`, the notice's embeds): the
/// notice stays, the reply is added under it and the buttons go, so that
/// everyone in the channel sees who decided what and nobody decides twice.
pub fn answer_prompt(reply: &Reply, rendered: Vec<(String, Option<String>)>, prompt: Vec<Embed>) -> Response {
    let answer = rendered
        .into_iter()
        .flat_map(|(text, _)| split(&text, EMBED_DESCRIPTION_MAX))
        .map(|piece| CreateEmbed::new().description(piece).colour(colour(reply.tone)));
    let embeds: Vec<CreateEmbed> = prompt.into_iter().map(CreateEmbed::from).chain(answer).take(EMBEDS_MAX).collect();
    let message = response_message().embeds(embeds).components(Vec::new());
    Response::now(CreateInteractionResponse::UpdateMessage(message))
}

/// Another page of a message (`/pipeline`'s buttons): the same message,
/// its embeds and buttons replaced.
pub fn update(reply: &Reply, rendered: Vec<(String, Option<String>)>, ui: &Ui) -> Response {
    let Parts { embeds, components, files } = parts(reply, rendered, ui);
    let message =
        files.into_iter().fold(response_message().embeds(embeds).components(components), |m, file| m.add_file(file));
    Response::now(CreateInteractionResponse::UpdateMessage(message))
}

/// The modal that asks for the role's ARN.
pub fn role_modal(account: AccountId, ui: &Ui) -> CreateInteractionResponse {
    let arn = CreateInputText::new(InputTextStyle::Short, ui.get("modal_role_arn"), ROLE_ARN_INPUT)
        .placeholder(ui.get("modal_role_arn_placeholder"))
        .min_length(20)
        .max_length(2048)
        .required(true);
    let description = CreateInputText::new(InputTextStyle::Paragraph, ui.get("modal_description"), DESCRIPTION_INPUT)
        .max_length(crate::domain::RoleDescription::MAX_CHARS as u16)
        .required(false);
    CreateInteractionResponse::Modal(
        CreateModal::new(CustomId::RoleModal(account).encode(), ui.get("modal_title"))
            .components(vec![CreateActionRow::InputText(arn), CreateActionRow::InputText(description)]),
    )
}

/// Autocomplete choices: the account ID as value, ID and customer as name.
pub fn suggestions(accounts: &[AccountSummary]) -> CreateInteractionResponse {
    let choices = accounts
        .iter()
        .take(AUTOCOMPLETE_CHOICES_MAX)
        .map(|a| {
            let name: String = format!("{} · {}", a.id, a.customer).chars().take(CHOICE_NAME_MAX).collect();
            AutocompleteChoice::new(name, a.id.to_string())
        })
        .collect();
    CreateInteractionResponse::Autocomplete(CreateAutocompleteResponse::new().set_choices(choices))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buttons_go_five_to_a_row_and_a_link_too_long_is_left_out() {
        let ui = Ui(BTreeMap::new());
        let account: AccountId = "123456789012".parse().unwrap();
        let row = |rows: &[CreateActionRow]| serde_json::to_value(rows).unwrap();
        let short = format!("https://console.aws.amazon.com/{}", "a".repeat(100));
        let offers = |url: &str| {
            vec![
                Offer::LaunchStack(url.to_owned()),
                Offer::CloudFormation(account),
                Offer::AwsCli(account),
                Offer::RoleCreated(account),
                Offer::Later(account),
                Offer::CheckNow(account),
            ]
        };
        let rows = row(&buttons(&offers(&short), &ui));
        assert_eq!(rows.as_array().unwrap().len(), 2);
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[0]["components"][0]["url"], short.as_str());
        assert_eq!(rows[1]["components"][0]["custom_id"], "ol:check:123456789012");
        let long = format!("https://console.aws.amazon.com/{}", "a".repeat(BUTTON_URL_MAX));
        let rows = row(&buttons(&offers(&long), &ui));
        assert_eq!(rows[0]["components"][0]["custom_id"], "ol:cfn:123456789012", "no link past 512 characters");
        assert_eq!(rows.as_array().unwrap().len(), 1);
    }

    #[test]
    fn splits_at_line_breaks() {
        let text = "aaaa\nbbbb\ncccc";
        assert_eq!(split(text, 10), vec!["aaaa\nbbbb", "cccc"]);
        assert_eq!(split("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(split("", 4), Vec::<String>::new());
    }

    proptest! {
        #[test]
        fn pieces_fit_and_keep_every_character(text in "[a-zé \n]{0,300}", max in 1usize..50) {
            let pieces = split(&text, max);
            for p in &pieces {
                prop_assert!(p.chars().count() <= max);
            }
            let kept: String = pieces.concat().chars().filter(|c| !c.is_whitespace()).collect();
            let all: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            prop_assert_eq!(kept, all);
        }
    }
}
