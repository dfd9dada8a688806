//! The Discord front end end to end: signed interactions posted to the HTTP
//! endpoint of a running server, Discord's REST API stood in by a local
//! recorder, a real sled store.

use orglink::domain::LinkState;
use serde_json::{Value, json};

use crate::harness::discord::*;
use crate::harness::{Harness, Recorder};

const EPHEMERAL: u64 = 64;

fn description(response: &Value) -> String {
    embeds_text(&response["data"])
}

fn flags(response: &Value) -> u64 {
    response["data"]["flags"].as_u64().unwrap_or(0)
}

fn link(guild: &str, locale: &str, account: &str) -> Value {
    command(
        "link-account",
        &[
            ("account_id", account),
            ("customer", "Acme S.A."),
            ("support_tier", "business"),
            ("root_email", "root@acme.example"),
        ],
        guild,
        locale,
        ADMIN,
        &[],
    )
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let h = Harness::new().serve().await;
    assert_eq!(h.interact(&fixture("ping")).await, json!({ "type": 1 }));
    h.finish().await;
}

#[tokio::test]
async fn unsigned_badly_signed_stale_and_oversized_requests_are_refused() {
    let h = Harness::new().serve().await;
    let body = serde_json::to_vec(&fixture("ping")).unwrap();
    assert_eq!(h.raw_post(&[], body.clone()).await, 401, "no signature");
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let bad = "00".repeat(64);
    assert_eq!(h.raw_post(&[("X-Signature-Ed25519", &bad), ("X-Signature-Timestamp", &now)], body.clone()).await, 401);
    assert_eq!(h.raw_post(&[("X-Signature-Ed25519", "zz"), ("X-Signature-Timestamp", &now)], body.clone()).await, 401);
    assert_eq!(h.post_aged(&body, 301).await.0, 401, "older than 5 minutes");
    assert_eq!(h.post_aged(&body, -301).await.0, 401, "from the future");
    assert_eq!(h.post_aged(&body, 120).await.0, 200, "2 minutes old is fine");
    let huge = vec![b' '; 300 * 1024];
    assert_eq!(h.post_aged(&huge, 0).await.0, 413);
    assert_eq!(h.post_aged(b"{not json", 0).await.0, 400, "signed but not an interaction");
    h.finish().await;
}

#[tokio::test]
async fn link_account_in_spanish_and_english() {
    let h = Harness::new().serve().await;
    let es = h.interact(&link(GUILD_A, "es-419", "1234-5678-9012")).await;
    assert_eq!(es["type"], 4);
    assert_eq!(flags(&es) & EPHEMERAL, EPHEMERAL, "it shows the external ID: only the user sees it");
    let account = h.store().account("123456789012".parse().unwrap()).unwrap().unwrap();
    let text = description(&es);
    assert!(text.contains("quedó registrada") && text.contains(account.external_id.as_str()), "{text}");
    assert!(text.contains("Cree el rol de IAM") && text.contains("328676173091"), "{text}");
    assert_eq!(account.tenant.as_str(), GUILD_A);
    assert_eq!(account.customer.as_str(), "Acme S.A.");
    assert_eq!(es["data"]["embeds"][0]["color"], 0x2ECC71, "green for success");
    let buttons: Vec<&str> = es["data"]["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        buttons,
        [
            "ol:cfn:123456789012",
            "ol:tf:123456789012",
            "ol:cli:123456789012",
            "ol:role:123456789012",
            "ol:later:123456789012"
        ]
    );
    assert_eq!(es["data"]["components"][0]["components"][1]["label"], "Terraform");
    assert_eq!(es["data"]["components"][0]["components"][3]["label"], "Ya creé el rol");

    let en = h.interact(&link(GUILD_A, "en-US", "210987654321")).await;
    assert!(description(&en).contains("is registered for **Acme S.A.**"), "{}", description(&en));
    assert_eq!(en["data"]["components"][0]["components"][3]["label"], "I created the role");

    // Bad input: a clear message in the user's language, red, ephemeral.
    let bad = h.interact(&link(GUILD_A, "es-ES", "1234")).await;
    assert!(description(&bad).contains("`1234` no es válido") && description(&bad).contains("12 dígitos"));
    assert_eq!(bad["data"]["embeds"][0]["color"], 0xE74C3C);
    assert_eq!(flags(&bad) & EPHEMERAL, EPHEMERAL);
    h.finish().await;
}

/// With a published template, the registration reply and `/instructions`
/// offer "Create the role in AWS" first: a link button (style 5) to the
/// quick-create page, with the others after it (five to a row).
#[tokio::test]
async fn the_quick_create_link_is_the_first_button_on_registration_and_instructions() {
    let template = "https://templates.s3.us-east-1.amazonaws.com/orglink/role-template.yaml";
    let h = Harness::new()
        .settings(|s| {
            s.template = Some(orglink::domain::quick_create::TemplateLocation {
                template_url: template.into(),
                console_region: "us-east-1".into(),
            })
        })
        .serve()
        .await;
    let registered = h.interact(&link(GUILD_A, "es-419", "1234-5678-9012")).await;
    let account = h.store().account("123456789012".parse().unwrap()).unwrap().unwrap();
    let shown = command("instructions", &[("account_id", "123456789012")], GUILD_A, "en-US", ADMIN, &[]);
    let shown = h.interact(&shown).await;
    for (reply, label) in [(&registered, "Crear el rol en AWS"), (&shown, "Create the role in AWS")] {
        let buttons: Vec<&Value> = reply["data"]["components"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row["components"].as_array().unwrap())
            .collect();
        let first = buttons[0];
        assert_eq!((first["style"].as_u64(), first["label"].as_str()), (Some(5), Some(label)), "{reply}");
        assert!(first.get("custom_id").is_none(), "a link, not an action: {first}");
        let url = first["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://console.aws.amazon.com/cloudformation/home?region=us-east-1#/stacks/quickcreate?")
        );
        assert!(url.contains(&format!("param_ExternalId={}", account.external_id.as_str())), "{url}");
        assert!(description(reply).contains(url), "the text carries the link too");
        let rest: Vec<&str> = buttons[1..].iter().map(|b| b["custom_id"].as_str().unwrap()).collect();
        let expected = ["ol:cfn:", "ol:tf:", "ol:cli:", "ol:role:", "ol:later:"].map(|a| format!("{a}123456789012"));
        assert_eq!(rest, expected, "the others after it, on a second row past five");
    }
    h.finish().await;
}

#[tokio::test]
async fn every_command_answers_in_both_languages() {
    let h = Harness::new().serve().await;
    for (locale, guild) in [("en-US", GUILD_A), ("es-419", GUILD_B)] {
        h.interact(&link(guild, locale, if guild == GUILD_A { "111111111111" } else { "222222222222" })).await;
        let account = if guild == GUILD_A { "111111111111" } else { "222222222222" };
        let spanish = locale.starts_with("es");
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                command("instructions", &[("account_id", account)], guild, locale, ADMIN, &[]),
                "ReadOnlyAccess",
                "ReadOnlyAccess",
            ),
            (
                command("instructions", &[("account_id", account), ("language", "es")], guild, locale, ADMIN, &[]),
                "Cree el rol",
                "Cree el rol",
            ),
            (
                command("status", &[("account_id", account)], guild, locale, ADMIN, &[]),
                "Checklist:",
                "Lista de comprobación:",
            ),
            (command("status", &[], guild, locale, ADMIN, &[]), "1 account of tenant", "1 cuenta del tenant"),
            (
                command(
                    "support-plan",
                    &[("account_id", account), ("group", "passthrough")],
                    guild,
                    locale,
                    ADMIN,
                    &[],
                ),
                "negative margins",
                "márgenes negativos",
            ),
            (
                command("price-book", &[("account_id", account)], guild, locale, ADMIN, &[]),
                "default price book",
                "predeterminada",
            ),
            (
                command("price-book", &[("account_id", account), ("name", "EMEA")], guild, locale, ADMIN, &[]),
                "custom: EMEA",
                "personalizada: EMEA",
            ),
            (command("orglink-config", &[("language", "es")], guild, locale, ADMIN, &[]), "Spanish", "español"),
        ];
        for (interaction, english, spanish_text) in cases {
            let response = h.interact(&interaction).await;
            let text = description(&response);
            let expected = if spanish { spanish_text } else { english };
            assert!(
                text.contains(expected),
                "{locale} {}: expected {expected:?} in {text}",
                interaction["data"]["name"]
            );
        }
    }
    // The tenant's language applies where the user's locale is not one orglink speaks.
    let response = h.interact(&command("status", &[], GUILD_A, "pt-BR", ADMIN, &[])).await;
    assert!(description(&response).contains("1 cuenta"), "{}", description(&response));
    h.finish().await;
}

#[tokio::test]
async fn tenants_see_only_their_own_accounts() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "111111111111")).await;
    h.interact(&link(GUILD_B, "en-US", "222222222222")).await;

    // Another tenant's account is "not registered here", everywhere.
    for interaction in [
        command("status", &[("account_id", "111111111111")], GUILD_B, "en-US", ADMIN, &[]),
        command("instructions", &[("account_id", "111111111111")], GUILD_B, "en-US", ADMIN, &[]),
        command("support-plan", &[("account_id", "111111111111"), ("group", "business")], GUILD_B, "en-US", ADMIN, &[]),
    ] {
        let text = description(&h.interact(&interaction).await);
        assert!(text.contains("is not registered here"), "{text}");
    }
    assert_eq!(h.store().account("111111111111".parse().unwrap()).unwrap().unwrap().support_plan_group, None);

    // Autocomplete offers only the tenant's own accounts.
    let mut auto = interaction("autocomplete_instructions", GUILD_B, "en-US", ADMIN, &[]);
    auto["data"]["options"] = json!([{ "name": "account_id", "type": 3, "value": "", "focused": true }]);
    let response = h.interact(&auto).await;
    assert_eq!(response["type"], 8);
    let values: Vec<&str> =
        response["data"]["choices"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["222222222222"]);
    auto["data"]["options"][0]["value"] = json!("1111");
    let response = h.interact(&auto).await;
    assert_eq!(response["data"]["choices"], json!([]), "typing A's number in B finds nothing");

    // A forged button for A's account, pressed in B.
    let mut button = interaction("component_button", GUILD_B, "en-US", ADMIN, &[]);
    button["data"]["custom_id"] = json!("ol:cfn:111111111111");
    let text = description(&h.interact(&button).await);
    assert!(text.contains("is not registered here"), "{text}");
    button["data"]["custom_id"] = json!("ol:role:111111111111");
    let response = h.interact(&button).await;
    assert_ne!(response["type"], 9, "no modal for another tenant's account");
    button["data"]["custom_id"] = json!("ol:cfn:111111111111:extra");
    assert!(description(&h.interact(&button).await).contains("not known"));

    // Registering it from B too makes B's own claim, with its own external
    // ID: nothing of A's shows, and A's claim is as it was.
    let a_claim = h.store().claim("111111111111".parse().unwrap(), &GUILD_A.parse().unwrap()).unwrap().unwrap();
    let text = description(&h.interact(&link(GUILD_B, "en-US", "111111111111")).await);
    assert!(text.contains("is registered") && !text.contains(GUILD_A), "{text}");
    assert!(!text.contains(a_claim.external_id.as_str()), "{text}");
    let b_claim = h.store().claim("111111111111".parse().unwrap(), &GUILD_B.parse().unwrap()).unwrap().unwrap();
    assert_ne!(b_claim.external_id, a_claim.external_id);
    assert_eq!(h.store().claim("111111111111".parse().unwrap(), &GUILD_A.parse().unwrap()).unwrap(), Some(a_claim));
    h.finish().await;
}

#[tokio::test]
async fn permissions_come_from_the_tenant_settings() {
    let h = Harness::new().serve().await;
    let member_role = "910000000000000001";
    let status = |roles: &[&str]| command("status", &[], GUILD_A, "en-US", NOBODY, roles);
    let text = description(&h.interact(&status(&[member_role])).await);
    assert!(text.contains("No role is set") && text.contains("/orglink-config"), "{text}");

    // Without Manage Server, the settings cannot be changed.
    let config = |perms: &str| command("orglink-config", &[], GUILD_A, "en-US", perms, &[]);
    let mut set_role = config(NOBODY);
    set_role["data"]["options"] = json!([{ "name": "role", "type": 8, "value": member_role }]);
    assert!(description(&h.interact(&set_role).await).contains("Manage Server permission"));
    assert_eq!(h.store().tenant_settings(&GUILD_A.parse().unwrap()).unwrap().account_role, None);

    set_role["member"]["permissions"] = json!(ADMIN);
    set_role["data"]["options"] = json!([
        { "name": "role", "type": 8, "value": member_role },
        { "name": "channel", "type": 7, "value": "900000000000000002" }
    ]);
    let text = description(&h.interact(&set_role).await);
    assert!(text.contains(&format!("<@&{member_role}>")) && text.contains("<#900000000000000002>"), "{text}");
    let settings = h.store().tenant_settings(&GUILD_A.parse().unwrap()).unwrap();
    assert_eq!(settings.account_role, Some(chat(member_role)));
    assert_eq!(settings.channel, Some(chat("900000000000000002")));

    // Now the role is enough; without it, the message names the role.
    assert!(description(&h.interact(&status(&[member_role])).await).contains("No accounts are registered"));
    let text = description(&h.interact(&status(&["910000000000000999"])).await);
    assert!(text.contains(&format!("<@&{member_role}>")), "{text}");
    h.finish().await;
}

#[tokio::test]
async fn direct_messages_and_unknown_commands_get_a_clear_refusal() {
    let h = Harness::new().serve().await;
    let mut dm = fixture("command_status_dm");
    dm["locale"] = json!("es-ES");
    let response = h.interact(&dm).await;
    assert!(description(&response).contains("no en mensajes directos"), "{}", description(&response));
    assert_eq!(flags(&response) & EPHEMERAL, EPHEMERAL);
    let unknown = command("self-destruct", &[], GUILD_A, "en-US", ADMIN, &[]);
    assert!(description(&h.interact(&unknown).await).contains("not known"));
    h.finish().await;
}

#[tokio::test]
async fn buttons_modal_and_attachments_round_trip() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "123456789012")).await;
    let external_id = h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().external_id;

    // "CloudFormation template": deferred, then the YAML as an attached file.
    let mut button = interaction("component_button", GUILD_A, "en-US", ADMIN, &[]);
    button["token"] = json!("token-cfn");
    button["data"]["custom_id"] = json!("ol:cfn:123456789012");
    let response = h.interact(&button).await;
    assert_eq!(response["type"], 5, "deferred: files follow as an edit");
    assert_eq!(flags(&response) & EPHEMERAL, EPHEMERAL);
    let edit = h.followup("token-cfn").await;
    let body = String::from_utf8_lossy(&edit.body).to_string();
    assert!(body.contains("filename=\"orglink-role-123456789012.yaml\""), "{body}");
    assert!(body.contains("AWSTemplateFormatVersion") && body.contains(external_id.as_str()), "{body}");

    // "I created the role": a modal asking for the ARN.
    button["data"]["custom_id"] = json!("ol:role:123456789012");
    let modal = h.interact(&button).await;
    assert_eq!(modal["type"], 9);
    assert_eq!(modal["data"]["custom_id"], "ol:arn:123456789012");
    assert_eq!(modal["data"]["components"][0]["components"][0]["custom_id"], "role_arn");

    // The modal comes back: its ARN is verified (deferred; the emulator
    // tests in discord_verify.rs follow it to "Verified"). An ARN of another
    // account is refused, saying which, before AWS is asked.
    let mut submit = interaction("modal_submit_role_arn", GUILD_A, "en-US", ADMIN, &[]);
    submit["token"] = json!("token-modal");
    submit["data"]["custom_id"] = json!("ol:arn:123456789012");
    submit["data"]["components"][0]["components"][0]["value"] = json!("arn:aws:iam::999999999999:role/R");
    assert_eq!(h.interact(&submit).await["type"], 5);
    let edit = h.followup("token-modal").await;
    let text = String::from_utf8_lossy(&edit.body).to_string();
    assert!(text.contains("`999999999999`") && text.contains("`123456789012`"), "{text}");
    // A user ARN does not parse: its own hint, at once.
    submit["data"]["components"][0]["components"][0]["value"] = json!("arn:aws:iam::123456789012:user/alice");
    assert!(description(&h.interact(&submit).await).contains("ARN of an IAM user"));

    // "Later".
    button["data"]["custom_id"] = json!("ol:later:123456789012");
    assert!(description(&h.interact(&button).await).contains("No rush"));
    h.finish().await;
}

#[tokio::test]
async fn forged_buttons_and_modals_cannot_reach_another_tenants_account() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "123456789012")).await;
    h.settle().await;
    let before = h.store().export().unwrap();
    let external_id = h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().external_id;
    // Tenant B crafts every button orglink makes, naming A's account.
    for action in ["cfn", "cli", "role", "later", "check", "arn"] {
        let token = format!("token-forged-{action}");
        let mut forged = if action == "arn" {
            let mut submit = interaction("modal_submit_role_arn", GUILD_B, "en-US", ADMIN, &[]);
            submit["data"]["components"][0]["components"][0]["value"] = json!("arn:aws:iam::123456789012:role/R");
            submit
        } else {
            interaction("component_button", GUILD_B, "en-US", ADMIN, &[])
        };
        forged["token"] = json!(token);
        forged["data"]["custom_id"] = json!(format!("ol:{action}:123456789012"));
        let response = h.interact(&forged).await;
        let shown = if response["type"] == 5 {
            String::from_utf8_lossy(&h.followup(&token).await.body).into_owned()
        } else {
            response.to_string()
        };
        assert!(shown.contains("is not registered here"), "{action}: {shown}");
        assert!(!shown.contains(external_id.as_str()), "{action}: A's external ID leaked");
    }
    // Custom IDs orglink never makes are refused as unknown.
    for custom_id in ["ol:check:123456789012:x", "ol:drop:123456789012", "check:123456789012", "ol:check:1234"] {
        let mut forged = interaction("component_button", GUILD_B, "en-US", ADMIN, &[]);
        forged["data"]["custom_id"] = json!(custom_id);
        let text = description(&h.interact(&forged).await);
        assert!(!text.is_empty() && !text.contains("123456789012"), "{custom_id}: {text}");
    }
    assert_eq!(h.store().export().unwrap(), before, "nothing changed");
    h.finish().await;
}

#[tokio::test]
async fn long_replies_are_attached_as_a_file() {
    let h = Harness::new().serve().await;
    // Enough accounts that the list outgrows one message's 6,000 characters.
    let app = h.app();
    let actor = orglink::app::Actor {
        id: "test".into(),
        scope: orglink::app::Scope::Tenant(GUILD_A.parse().unwrap()),
        rights: orglink::app::Rights { manage_server: true, ..Default::default() },
        claim_of: None,
    };
    for i in 0..80u64 {
        let new = orglink::domain::NewAccount {
            id: format!("{:012}", 500_000_000_000 + i).parse().unwrap(),
            tenant: GUILD_A.parse().unwrap(),
            customer: format!("Customer with a rather long company name number {i}").parse().unwrap(),
            root_email: None,
            support_tier: orglink::domain::SupportTier::Basic,
            kind: Default::default(),
            price_book: None,
        };
        app.handle(&actor, orglink::app::Command::AddAccount(new)).unwrap();
    }
    let mut status = command("status", &[], GUILD_A, "en-US", ADMIN, &[]);
    status["token"] = json!("token-long");
    let response = h.interact(&status).await;
    assert_eq!(response["type"], 5);
    let edit = h.followup("token-long").await;
    let body = String::from_utf8_lossy(&edit.body).to_string();
    assert!(body.contains("filename=\"orglink-reply.md\"") && body.contains("80 accounts"), "{}", &body[..500]);
    assert!(body.contains("longer than a Discord message allows"));
    h.finish().await;
}

#[tokio::test]
async fn state_is_unchanged_by_refused_commands() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "123456789012")).await;
    h.settle().await;
    let before = h.store().export().unwrap();
    for interaction in [
        link(GUILD_A, "en-US", "123456789012"),
        link(GUILD_A, "en-US", "12345678901"),
        command("support-plan", &[("account_id", "123456789012"), ("group", "gold")], GUILD_A, "en-US", ADMIN, &[]),
        command(
            "support-plan",
            &[("account_id", "123456789012"), ("group", "business")],
            GUILD_A,
            "en-US",
            NOBODY,
            &[],
        ),
    ] {
        h.interact(&interaction).await;
    }
    let after: Vec<_> = h
        .store()
        .export()
        .unwrap()
        .into_iter()
        .filter(|(tree, key, _)| !(tree.as_slice() == b"__sled__default" && key.as_slice() == b"health_check"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().state, LinkState::Registered);
    h.finish().await;
}

/// Discord's rules for names: lowercase letters, digits, `-` and `_`, 1–32.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name.chars().all(|c| c == '-' || c == '_' || c.is_numeric() || (c.is_alphabetic() && !c.is_uppercase()))
}

#[test]
fn the_registration_payload_is_valid_for_discord_in_both_languages() {
    let payload = serde_json::to_value(
        orglink::discord::spec::registration_payload(&orglink::templates::Templates::embedded()).unwrap(),
    )
    .unwrap();
    let commands = payload.as_array().unwrap();
    assert_eq!(commands.len(), orglink::discord::spec::SlashCommand::ALL.len());
    for command in commands {
        let name = command["name"].as_str().unwrap();
        assert!(valid_name(name), "{name}");
        assert!((1..=100).contains(&command["description"].as_str().unwrap().chars().count()), "{name}");
        for locale in ["es-ES", "es-419"] {
            let localized = command["name_localizations"][locale].as_str().unwrap();
            assert!(valid_name(localized), "{localized}");
            assert!(command["description_localizations"][locale].as_str().unwrap().chars().count() <= 100);
        }
        assert_eq!(command["contexts"], json!([0]), "{name}: servers only, no DMs");
        let options = command["options"].as_array().unwrap();
        assert!(options.len() <= 25);
        // Required options come first, as Discord demands.
        let required: Vec<bool> = options.iter().map(|o| o["required"].as_bool().unwrap_or(false)).collect();
        assert!(required.windows(2).all(|w| w[0] || !w[1]), "{name}: {required:?}");
        for option in options {
            let option_name = option["name"].as_str().unwrap();
            assert!(valid_name(option_name), "{option_name}");
            assert!(option["description"].as_str().unwrap().chars().count() <= 100, "{option_name}");
            for locale in ["es-ES", "es-419"] {
                assert!(valid_name(option["name_localizations"][locale].as_str().unwrap()));
            }
            for choice in option["choices"].as_array().into_iter().flatten() {
                assert!(choice["name"].as_str().unwrap().chars().count() <= 100);
                assert!(choice["name_localizations"]["es-419"].is_string());
            }
        }
    }
    let config = commands.iter().find(|c| c["name"] == "orglink-config").unwrap();
    assert_eq!(config["default_member_permissions"], "32", "Manage Server");
    // serenity keeps localisations in hash maps: sort keys for a stable snapshot.
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let ordered: std::collections::BTreeMap<_, _> =
                    map.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
                Value::Object(ordered.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    insta::assert_json_snapshot!("registration_payload", sorted(&payload));
}

#[test]
fn both_languages_have_the_same_discord_words() {
    fn shape(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
            _ => Value::Null,
        }
    }
    let t = orglink::templates::Templates::embedded();
    for file in ["discord/commands.json", "discord/ui.json"] {
        let en: Value = serde_json::from_str(&t.render(orglink::domain::Lang::En, file, ()).unwrap()).unwrap();
        let es: Value = serde_json::from_str(&t.render(orglink::domain::Lang::Es, file, ()).unwrap()).unwrap();
        assert_eq!(shape(&en), shape(&es), "{file}");
    }
    // Modal labels and titles fit Discord's 45 characters.
    for lang in orglink::domain::Lang::ALL {
        let ui: Value = serde_json::from_str(&t.render(lang, "discord/ui.json", ()).unwrap()).unwrap();
        for key in ["modal_title", "modal_role_arn", "modal_description"] {
            assert!(ui[key].as_str().unwrap().chars().count() <= 45, "{lang} {key}");
        }
    }
}

#[tokio::test]
async fn commands_are_registered_globally_or_per_server() {
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let discord = Recorder::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&discord.server)
        .await;
    let templates = orglink::templates::Templates::embedded();
    let mut config = config(&discord.uri(), &"00".repeat(32));
    let count = orglink::discord::spec::SlashCommand::ALL.len();
    assert_eq!(orglink::server::register_commands(&config, &templates).await.unwrap(), count);
    config.discord.command_guild_ids = vec![chat(GUILD_A), chat(GUILD_B)];
    orglink::server::register_commands(&config, &templates).await.unwrap();
    let requests = discord.requests().await;
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert_eq!(
        paths,
        [
            format!("/api/v10/applications/{APPLICATION_ID}/commands"),
            format!("/api/v10/applications/{APPLICATION_ID}/guilds/{GUILD_A}/commands"),
            format!("/api/v10/applications/{APPLICATION_ID}/guilds/{GUILD_B}/commands"),
        ]
    );
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), count);

    config.discord.token = None;
    let err = orglink::server::register_commands(&config, &templates).await.unwrap_err();
    assert!(err.downcast_ref::<orglink::server::ServeError>().is_some());
}

#[tokio::test]
async fn healthz_reports_the_store_and_transports() {
    let h = Harness::new().serve().await;
    let response = reqwest::get(h.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    // The harness runs the HTTP endpoint alone (`discord.transports`): its
    // token sends notifications, and no gateway connection is attempted.
    assert_eq!(body["transports"]["http"]["state"], "connected", "{body:#}");
    assert_eq!(body["transports"]["gateway"], json!({ "state": "off" }));
    assert_eq!(body["interactions"], "taken");
    let asked = h.discord().requests().await;
    assert!(!asked.iter().any(|r| r.url.path().starts_with("/api/v10/gateway")), "{asked:?}");
    h.finish().await;
}

/// With `http.admin_listen`, health and metrics leave the public listener,
/// which serves only `/interactions`; and `/healthz` reuses its store check
/// for 10 s rather than write and flush the store on every probe.
#[tokio::test]
async fn an_admin_listener_takes_health_and_metrics_off_the_public_one() {
    let start = time::macros::datetime!(2026-12-01 12:00 UTC);
    let clock = std::sync::Arc::new(orglink::clock::ManualClock::new(start));
    let store = orglink::store::Store::temporary().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let mut config = config("http://127.0.0.1:9", &hex::encode(key.to_bytes()));
    // The HTTP endpoint alone: no gateway to start.
    config.discord.token = None;
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let running =
        orglink::server::start(config, orglink::templates::Templates::embedded(), store.clone(), clock.clone(), None)
            .await
            .unwrap();
    let public = |path: &str| format!("http://{}{path}", running.http_addr);
    let admin = |path: &str| format!("http://{}{path}", running.admin_addr.unwrap());
    let client = reqwest::Client::new();
    for path in ["/healthz", "/metrics"] {
        assert_eq!(reqwest::get(public(path)).await.unwrap().status(), 404, "{path} is not public");
        assert_eq!(reqwest::get(admin(path)).await.unwrap().status(), 200, "{path} on the admin listener");
    }
    let unsigned = client.post(public("/interactions")).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status(), 401, "the public listener takes interactions");
    let on_admin = client.post(admin("/interactions")).body("{}").send().await.unwrap();
    assert_eq!(on_admin.status(), 404, "the admin listener does not");

    // The store check's mark (Unix seconds) moves only when a check writes.
    let written =
        || store.export().unwrap().into_iter().find(|(_, key, _)| key == b"health_check").map(|(_, _, value)| value);
    let first = written().expect("the first /healthz wrote its check");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(reqwest::get(admin("/healthz")).await.unwrap().status(), 200);
    assert_eq!(written().unwrap(), first, "within 10 s, the last check stands");
    clock.advance(time::Duration::seconds(10));
    assert_eq!(reqwest::get(admin("/healthz")).await.unwrap().status(), 200);
    assert_ne!(written().unwrap(), first, "after 10 s, the store is checked again");
    running.stop().await;
}

/// The value of the sample `name` (with its labels, as exposed) in a
/// Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_commands_interactions_and_what_waits() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "123456789012")).await;
    h.interact(&command("status", &[("account_id", "123456789012")], GUILD_A, "en-US", ADMIN, &[])).await;
    h.interact(&command("status", &[("account_id", "999999999999")], GUILD_A, "en-US", ADMIN, &[])).await;
    h.settle().await;
    let response = reqwest::get(h.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let page = response.text().await.unwrap();
    assert_eq!(sample(&page, r#"orglink_commands_total{command="account_add",outcome="ok"}"#), Some(1.0), "{page}");
    assert_eq!(sample(&page, r#"orglink_commands_total{command="account_show",outcome="ok"}"#), Some(1.0));
    assert_eq!(sample(&page, r#"orglink_commands_total{command="account_show",outcome="user_error"}"#), Some(1.0));
    assert_eq!(sample(&page, r#"orglink_interaction_duration_seconds_count{kind="command"}"#), Some(3.0));
    assert_eq!(sample(&page, r#"orglink_accounts{state="registered"}"#), Some(1.0));
    // The registration notice is in the outbox until delivered (or not, by now).
    let pending = sample(&page, "orglink_outbox_pending").unwrap();
    assert_eq!(pending, h.store().outbox().unwrap().len() as f64);
    assert!(sample(&page, "orglink_outbox_oldest_pending_age_seconds").is_some());
    assert!(page.ends_with("# EOF\n"));
    h.finish().await;
}

#[tokio::test]
async fn healthz_fails_when_a_job_has_not_succeeded_for_three_intervals() {
    // A second past a minute: the scheduler's first job is 29 s of real time
    // away, so no job runs during the test.
    let h = Harness::new().at(time::macros::datetime!(2026-11-26 12:00:01 UTC)).serve().await;
    let healthz = || async { reqwest::get(h.url("/healthz")).await.unwrap() };
    assert_eq!(healthz().await.status(), 200);
    // open_tickets runs every minute; this clock never lets it run.
    h.clock().advance(time::Duration::minutes(5));
    let response = healthz().await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "failing");
    let stale: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["stale"] == true)
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert!(stale.contains(&"open_tickets"), "{body}");
    assert!(!stale.contains(&"audit_support_plans"), "a daily job has a day");
    // A success of each makes it healthy again.
    for job in orglink::scheduler::Job::ALL {
        h.app().metrics().job_run(job, true, h.now());
    }
    assert_eq!(healthz().await.status(), 200);
    h.finish().await;
}

#[tokio::test]
async fn invite_is_for_the_operations_team_only() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "en-US", "123456789012")).await;
    // A reseller with every permission in their own server.
    let mut invite = command("invite", &[("account_id", "123456789012")], GUILD_A, "en-US", ADMIN, &[]);
    invite["token"] = json!("token-invite");
    assert_eq!(h.interact(&invite).await["type"], 5, "deferred: it waits on AWS");
    let edit = h.followup("token-invite").await;
    let body = String::from_utf8_lossy(&edit.body).to_string();
    assert!(body.contains("for the distributor's operations team"), "{body}");
    // The operations role in another server than the operations server is not enough.
    let mut elsewhere = command("invite", &[("account_id", "123456789012")], GUILD_A, "en-US", NOBODY, &[OPS_ROLE]);
    elsewhere["token"] = json!("token-invite-2");
    h.interact(&elsewhere).await;
    let edit = h.followup("token-invite-2").await;
    assert!(String::from_utf8_lossy(&edit.body).contains("operations team"));
    assert_eq!(h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().state, LinkState::Registered);
    h.finish().await;
}

#[tokio::test]
async fn ticket_is_recorded_and_waits_for_freshdesk() {
    let h = Harness::new().serve().await;
    h.interact(&link(GUILD_A, "es-419", "123456789012")).await;
    let mut ticket = command(
        "ticket",
        &[("account_id", "123456789012"), ("reason", "La cuenta debe salir de su organización")],
        GUILD_A,
        "es-419",
        ADMIN,
        &[],
    );
    ticket["token"] = json!("token-ticket");
    assert_eq!(h.interact(&ticket).await["type"], 5, "deferred: it waits on Freshdesk");
    let edit = h.followup("token-ticket").await;
    let body = String::from_utf8_lossy(&edit.body).to_string();
    assert!(body.contains("espera a Freshdesk"), "{body}");
    let requests = h.store().ticket_requests().unwrap();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].key.starts_with("orglink-request-123456789012-"));
    // Another tenant cannot ask for a ticket on it.
    let mut other = command("ticket", &[("account_id", "123456789012"), ("reason", "x")], GUILD_B, "en-US", ADMIN, &[]);
    other["token"] = json!("token-ticket-b");
    h.interact(&other).await;
    let edit = h.followup("token-ticket-b").await;
    assert!(String::from_utf8_lossy(&edit.body).contains("is not registered here"));
    assert_eq!(h.store().ticket_requests().unwrap().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn a_replayed_interaction_is_refused_and_runs_nothing() {
    // A second past a minute: the scheduler's first job is 29 s of real time
    // away, so nothing but the requests changes the store.
    let h = Harness::new().at(time::macros::datetime!(2026-11-26 12:00:01 UTC)).serve().await;
    let start = h.now();
    let stamped = |value: &Value| serde_json::to_vec(value).unwrap();
    let (status, _) = h.post_stamped(&stamped(&link(GUILD_A, "en-US", "111111111111")), start.unix_timestamp()).await;
    assert_eq!(status, 200);
    let account = "111111111111".parse().unwrap();

    let mut instructions = command("instructions", &[("account_id", "111111111111")], GUILD_A, "en-US", ADMIN, &[]);
    instructions["id"] = json!("1300000000000000042");
    let body = stamped(&instructions);
    // Stamped as far ahead as the endpoint allows: by its timestamp, this
    // request stays acceptable for 10 minutes.
    let at = start.unix_timestamp() + orglink::discord::endpoint::MAX_REQUEST_AGE_SECS;

    // Refused before its ID is read, so not remembered: unsigned, too far ahead.
    assert_eq!(h.raw_post(&[], body.clone()).await, 401);
    assert_eq!(h.post_stamped(&body, at + 1).await.0, 401);

    let (status, first) = h.post_stamped(&body, at).await;
    assert_eq!(status, 200, "{first}");
    assert!(description(&first).contains("ReadOnlyAccess"), "{first}");
    let record = h.store().account(account).unwrap().unwrap();
    let audit = h.store().audit_log(account).unwrap();
    // What the first run sends to Discord has gone before the count.
    h.settle().await;
    let outbox: Vec<_> = h.outbox().into_iter().map(|i| i.id).collect();
    // What the first run caused is delivered before counting what was sent.
    h.settle().await;
    let sent = h.discord().requests().await.len();

    // The same request, byte for byte, 2 s later and until its timestamp
    // runs out, 10 minutes later: refused, and nothing runs.
    for later in [time::Duration::seconds(2), time::Duration::minutes(5), time::Duration::minutes(10)] {
        h.clock().set(start + later);
        let (status, body) = h.post_stamped(&body, at).await;
        assert_eq!(status, 409, "{later}: {body}");
    }
    assert_eq!(h.store().account(account).unwrap().unwrap(), record, "the account is as the first left it");
    assert_eq!(h.store().audit_log(account).unwrap(), audit);
    assert!(h.outbox().iter().all(|i| outbox.contains(&i.id)), "nothing new in the outbox");
    assert_eq!(h.discord().requests().await.len(), sent, "nothing sent to Discord");
    let metrics = reqwest::get(h.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("orglink_interactions_replayed_total 3\n"), "{metrics}");

    // Then its timestamp is too old; a new interaction (its own ID) runs,
    // and changes what the replays did not.
    h.clock().set(start + time::Duration::minutes(10) + time::Duration::seconds(1));
    assert_eq!(h.post_stamped(&body, at).await.0, 401);
    instructions["id"] = json!("1300000000000000043");
    let (status, _) = h.post_stamped(&stamped(&instructions), h.now().unix_timestamp()).await;
    assert_eq!(status, 200);
    let rerun = h.store().account(account).unwrap().unwrap();
    assert_ne!(rerun, record, "showing the instructions again restarts probing");
    assert_eq!(rerun.probe.unwrap().since, h.now());
    h.outbox();
    h.finish().await;
}
