//! Free text from a hostile tenant is data, everywhere: what no format can
//! carry is refused before anything is stored; what is accepted lands in
//! YAML, shell and Discord Markdown quoted or escaped, and pings nobody.

use crate::harness::Orglink;

/// Customer names that no output can carry safely, and why each is refused.
const REFUSED: &[(&str, &str)] = &[
    ("Acme\u{2028}Transform: AWS::Include", "U+2028 LINE SEPARATOR at character 5"),
    ("Acme \u{202e}moc.live", "U+202E RIGHT-TO-LEFT OVERRIDE at character 6"),
    ("Acme\u{fffe}", "U+FFFE"),
];

#[test]
fn a_refused_customer_name_exits_2_and_stores_nothing() {
    let long = "x".repeat(101);
    let mut cases: Vec<(&str, &str)> = REFUSED.to_vec();
    cases.push((&long, "101"));
    for (lang, customer, expected) in
        cases.iter().flat_map(|(customer, expected)| ["en", "es"].map(|lang| (lang, *customer, *expected)))
    {
        let o = Orglink::new();
        let run = o.run(&[
            "account",
            "add",
            "123456789012",
            "--tenant",
            "acme",
            "--customer",
            customer,
            "--support",
            "basic",
            "--lang",
            lang,
        ]);
        assert_eq!(run.code, 2, "{customer:?}: {run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        // English says it as the error's own text does; Spanish, in its
        // words, with the same code point or length.
        let expected = if lang == "en" { expected } else { expected.split(' ').next().unwrap() };
        assert!(said.contains(expected), "{lang} {customer:?}: {said}");
        // The message shows the character by its code, never as itself.
        assert!(!said.contains('\u{2028}') && !said.contains('\u{202e}'), "{said:?}");
        assert!(o.export().is_empty(), "nothing stored for {customer:?}");
    }
}

/// Names a hostile tester tries, accepted: they are data, and must stay so.
pub const HOSTILE: &[&str] = &[
    "$(touch x)",
    "`touch y`",
    "'; rm -rf ~ #",
    ": #",
    "[link](https://x) @everyone",
    "\"quoted\" \\ back\\slash",
    "a: b\n",
    "- [x] {y} & *z <w> ~~s~~ ||spoiler|| <@&1> <#2>",
];

mod generated {
    use orglink::app::{InstructionsView, Message, Settings};
    use orglink::domain::{
        Account, AccountKind, CustomerName, ExternalId, ExternalIdPrefix, Lang, NewAccount, RoleName, SupportTier,
    };
    use orglink::templates::Templates;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::harness::shell::{bash_parses, run_script};

    fn view(
        customer: &CustomerName,
        role_name: &RoleName,
        prefix: &ExternalIdPrefix,
        tier: SupportTier,
        probing: bool,
    ) -> InstructionsView {
        let new = NewAccount {
            id: "123456789012".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            customer: customer.clone(),
            root_email: None,
            support_tier: tier,
            kind: AccountKind::Standalone,
            price_book: None,
        };
        let external_id = ExternalId::from_entropy(prefix, [7; 13]);
        let account = Account::register(new, external_id, crate::harness::REGISTERED_AT).unwrap().0;
        let mut settings = Settings { role_name: role_name.clone(), ..Settings::default() };
        settings.probe.enabled = probing;
        InstructionsView::new(&account, &settings)
    }

    fn render(message: &Message, lang: Lang) -> String {
        message.render(&Templates::embedded(), lang).unwrap().text
    }

    /// The template parses to exactly the document orglink means: the same
    /// keys, and the values it was given.
    pub fn check_cloudformation(view: &InstructionsView, lang: Lang) -> Result<(), String> {
        let yaml = render(&Message::CloudFormation(view.clone()), lang);
        let doc: Value = serde_norway::from_str(&yaml).map_err(|e| format!("{e}\n{yaml}"))?;
        let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}:\n{yaml}")) };
        check(
            keys(&doc) == ["AWSTemplateFormatVersion", "Description", "Metadata", "Resources", "Outputs"],
            "top-level keys",
        )?;
        check(
            doc["Metadata"] == json!({"OrgLink": {"AccountId": "123456789012", "Customer": view.customer}}),
            "metadata",
        )?;
        check(keys(&doc["Resources"]) == ["PlatformReadOnlyRole"], "resources")?;
        let properties = &doc["Resources"]["PlatformReadOnlyRole"]["Properties"];
        check(
            keys(properties)
                == ["RoleName", "Description", "MaxSessionDuration", "AssumeRolePolicyDocument", "ManagedPolicyArns"],
            "properties",
        )?;
        check(properties["RoleName"] == view.role_name.as_str(), "role name")?;
        check(properties["ManagedPolicyArns"] == json!(view.managed_policy_arns), "policies")?;
        let trust: Value = serde_json::from_str(&view.trust_policy).unwrap();
        check(properties["AssumeRolePolicyDocument"] == trust, "trust policy")?;
        check(keys(&doc["Outputs"]) == ["RoleArn"], "outputs")
    }

    /// `bash -n` accepts the script; run, it calls `aws` and nothing else,
    /// with the values it was given, and writes no file.
    pub fn check_script(view: &InstructionsView, lang: Lang) -> Result<(), String> {
        let script = render(&Message::AwsCli(view.clone()), lang);
        bash_parses(&script).map_err(|e| format!("{e}\n{script}"))?;
        let run = run_script(&script, false);
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}: {run:?}\n{script}")) };
        check(run.code == 0 && run.stderr.is_empty(), "runs cleanly")?;
        check(run.files.is_empty(), "writes no file")?;
        check(run.aws_calls.len() == 3 + view.managed_policy_arns.len(), "only the aws calls it means")?;
        check(run.aws_calls.iter().all(|c| c[3] == view.role_name.as_str()), "the role name as given")?;
        check(run.aws_calls[1][7] == view.trust_policy, "the trust policy as given")?;
        check(run.stdout.contains(&view.customer), "the customer printed as given")
    }

    fn accepted<T: std::str::FromStr + std::fmt::Debug>(
        strategy: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = T> {
        strategy.prop_filter_map("refused", |s| s.parse::<T>().ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn generated_templates_hold_accepted_text_only_as_data(
            customer in accepted::<CustomerName>(prop_oneof![
                any::<String>(),
                "[-$`'\"\\\\:#&*!|>%@{}\\[\\]()<~ a-zé\u{a0}\u{3000}\u{1f680}]{1,100}",
                proptest::sample::select(super::HOSTILE).prop_map(str::to_owned),
            ]),
            role_name in accepted::<RoleName>("[A-Za-z0-9+=,.@_-]{1,64}".prop_map(String::from)),
            prefix in accepted::<ExternalIdPrefix>("[A-Za-z0-9_+=,.@:/-]{0,32}".prop_map(String::from)),
            tier in proptest::sample::select(SupportTier::ALL.to_vec()),
            probing: bool,
        ) {
            let view = view(&customer, &role_name, &prefix, tier, probing);
            for lang in Lang::ALL {
                check_cloudformation(&view, lang).map_err(TestCaseError::fail)?;
                check_script(&view, lang).map_err(TestCaseError::fail)?;
            }
        }
    }
}

/// The names a hostile tester tried, registered from the CLI: the
/// CloudFormation template parses to the expected keys only, and the
/// script passes `bash -n` and runs nothing but `aws`.
#[test]
fn hostile_names_stay_data_in_the_generated_role_templates() {
    use orglink::domain::Lang;
    for (i, customer) in HOSTILE.iter().enumerate() {
        let o = Orglink::new();
        let id = format!("12345678901{i}");
        let customer_arg = format!("--customer={customer}");
        let run = o.run(&["account", "add", &id, "--tenant", "acme", &customer_arg, "--support", "basic"]);
        assert_eq!(run.code, 0, "{customer:?}: {run:?}");
        assert_eq!(o.account(&id).unwrap().customer.as_str(), customer.trim(), "stored as typed");
        for lang in Lang::ALL {
            let yaml = o.ok(&["instructions", &id, "--format", "cloudformation", "--lang", lang.code()]);
            let doc: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
            let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["AWSTemplateFormatVersion", "Description", "Metadata", "Resources", "Outputs"], "{yaml}");
            assert_eq!(doc["Metadata"]["OrgLink"]["Customer"], customer.trim(), "{yaml}");
            let script = o.ok(&["instructions", &id, "--format", "cli", "--lang", lang.code()]);
            crate::harness::shell::bash_parses(&script).unwrap();
            let run = crate::harness::shell::run_script(&script, false);
            assert_eq!(run.code, 0, "{run:?}");
            assert!(run.files.is_empty(), "nothing but aws ran: {run:?}");
            assert!(run.aws_calls.iter().all(|c| c[0] == "iam" && c[3] == "OrgLinkReadOnly"), "{run:?}");
            assert!(run.stdout.contains(customer.trim()), "{run:?}");
        }
    }
}

/// Customer names that mean something in HCL, registered from the CLI: the
/// Terraform configuration parses, and the customer is a string holding
/// exactly what was typed, never an interpolation, a directive or the end
/// of the string.
#[test]
fn hostile_names_stay_data_in_the_terraform_configuration() {
    use orglink::domain::Lang;
    let names = HOSTILE.iter().copied().chain([
        "${file(\"/etc/passwd\")}",
        "%{ if true }x%{ endif }",
        "$${a} %%{b} ${ \\",
        "a\" = var.external_id #",
        "back\\slash\\",
    ]);
    for (i, customer) in names.enumerate() {
        let o = Orglink::new();
        let id = format!("1234567890{i:02}");
        let customer_arg = format!("--customer={customer}");
        let run = o.run(&["account", "add", &id, "--tenant", "acme", &customer_arg, "--support", "business"]);
        assert_eq!(run.code, 0, "{customer:?}: {run:?}");
        for lang in Lang::ALL {
            let text = o.ok(&["instructions", &id, "--format", "terraform", "--lang", lang.code()]);
            let tf = crate::templates::Terraform::parse(&text);
            assert_eq!(tf.value("locals", &[], "orglink_customer"), customer.trim(), "{text}");
            let external_id = o.account(&id).unwrap().external_id.as_str().to_owned();
            assert_eq!(tf.default("external_id"), external_id.as_str(), "{text}");
            assert_eq!(tf.blocks("resource", &[]).len(), 3, "nothing added: {text}");
            let policy = tf.value("resource", &["aws_iam_role", "orglink"], "assume_role_policy");
            assert_eq!(policy["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::328676173091:root", "{text}");
        }
    }
}

/// The link a hostile tester named a customer after, and its escaped form:
/// Discord shows the latter as the former's characters, neither a link nor
/// a mention.
const PHISHING: &str = "[Re-verify the role](https://evil.example/login) @everyone";
const PHISHING_SHOWN: &str = r"\[Re-verify the role\]\(https\://evil.example/login\) \@everyone";

/// Every request body orglink sent to Discord that carries a message.
async fn message_bodies(h: &crate::harness::Harness) -> Vec<(String, String)> {
    h.discord()
        .requests()
        .await
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH"))
        .filter(|r| r.url.path().ends_with("/messages") || r.url.path().ends_with("/messages/@original"))
        .map(|r| (r.url.path().to_owned(), String::from_utf8_lossy(&r.body).into_owned()))
        .collect()
}

/// The message of a body: JSON, or the `payload_json` part of a multipart
/// body (a message with files).
fn payload(body: &str) -> serde_json::Value {
    if let Ok(json) = serde_json::from_str(body) {
        return json;
    }
    let start = body.find("name=\"payload_json\"").expect("a payload_json part");
    let json = &body[start..];
    let json = &json[json.find('{').unwrap()..];
    let end = json.rfind('}').unwrap();
    serde_json::Deserializer::from_str(&json[..=end]).into_iter().next().unwrap().unwrap()
}

fn mentions_nobody(message: &serde_json::Value) -> bool {
    message["allowed_mentions"] == serde_json::json!({ "parse": [], "users": [], "roles": [] })
}

#[tokio::test]
async fn in_discord_hostile_text_is_shown_literally_and_pings_nobody() {
    use crate::harness::Harness;
    use crate::harness::discord::*;
    use serde_json::json;

    let h = Harness::new().serve().await;
    let mut responses = Vec::new();
    let mut config = command("orglink-config", &[], GUILD_A, "en-US", ADMIN, &[]);
    config["data"]["options"] = json!([{ "name": "channel", "type": 7, "value": "900000000000000902" }]);
    responses.push(h.interact(&config).await);
    let account = "123456789012";
    let link = command(
        "link-account",
        &[
            ("account_id", account),
            ("customer", PHISHING),
            ("support_tier", "business"),
            ("root_email", "a_b@x.example"),
        ],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    );
    responses.push(h.interact(&link).await);
    assert_eq!(h.store().account(account.parse().unwrap()).unwrap().unwrap().customer.as_str(), PHISHING);
    // A name no output can carry: refused, saying which character where.
    let mut refused = link.clone();
    refused["data"]["options"][0]["value"] = json!("210987654321");
    refused["data"]["options"][1]["value"] = json!("Acme\u{2028}Transform: AWS::Include");
    let answer = h.interact(&refused).await;
    assert!(embeds_text(&answer["data"]).contains("U+2028 LINE SEPARATOR at character 5"), "{answer}");
    assert!(h.store().account("210987654321".parse().unwrap()).unwrap().is_none(), "nothing stored");
    responses.push(answer);
    for (name, options) in [
        ("status", vec![("account_id", account)]),
        ("status", vec![]),
        ("price-book", vec![("account_id", account), ("name", "[x](https://y) @here")]),
        // Waits on Freshdesk: deferred, then an edit of the response.
        ("ticket", vec![("account_id", account), ("reason", "<@&910000000000000100> [z](https://z.example)")]),
    ] {
        responses.push(h.interact(&command(name, &options, GUILD_A, "en-US", ADMIN, &[])).await);
    }
    let mut later = interaction("component_button", GUILD_A, "en-US", ADMIN, &[]);
    later["data"]["custom_id"] = json!(format!("ol:later:{account}"));
    responses.push(h.interact(&later).await);
    let mut cfn = later.clone();
    cfn["token"] = json!("token-cfn");
    cfn["data"]["custom_id"] = json!(format!("ol:cfn:{account}"));
    responses.push(h.interact(&cfn).await);
    h.followup("token-cfn").await;
    // A server never seen: operations get a notice with buttons, and the
    // decision updates it in place.
    let new_guild = "900000000000000901";
    let mut pending = link.clone();
    pending["guild_id"] = json!(new_guild);
    pending["channel"]["guild_id"] = json!(new_guild);
    responses.push(h.interact(&pending).await);
    h.settle().await;
    let notice = message_bodies(&h)
        .await
        .into_iter()
        .map(|(_, body)| payload(&body))
        .find(|m| m["components"].as_array().is_some_and(|c| !c.is_empty()))
        .expect("the operations notice with Approve and Deny");
    let mut approve = interaction("component_button", OPS_GUILD, "en-US", NOBODY, &[OPS_ROLE]);
    approve["data"]["custom_id"] = json!(format!("ol:tenant-approve:{new_guild}"));
    approve["message"]["embeds"] = notice["embeds"].clone();
    approve["message"]["components"] = notice["components"].clone();
    let decided = h.interact(&approve).await;
    assert_eq!(decided["type"], 7, "{decided}");
    h.settle().await;

    // Every interaction response that carries a message, and every message
    // sent over REST (notifications, follow-ups, edits).
    for response in &responses {
        assert!(matches!(response["type"].as_u64(), Some(4 | 5 | 7)), "{response}");
        assert!(mentions_nobody(&response["data"]), "{response}");
    }
    // What shows an account (registration, status, list, price book,
    // ticket, Later, the template) is for the one who asked; the server's
    // settings are not.
    let ephemeral = |r: &serde_json::Value| r["data"]["flags"].as_u64().unwrap_or(0) & 64 == 64;
    assert!(!ephemeral(&responses[0]), "{}", responses[0]);
    for response in &responses[1..] {
        assert!(ephemeral(response), "{response}");
    }
    assert!(mentions_nobody(&decided["data"]), "{decided}");
    responses.push(decided);
    let bodies = message_bodies(&h).await;
    let channel_posts = bodies.iter().filter(|(path, _)| path.contains("/channels/")).count();
    assert!(channel_posts >= 3, "the tenant's channel and operations heard of it: {bodies:?}");
    let edits = bodies.iter().filter(|(path, _)| path.ends_with("/messages/@original")).count();
    assert!(edits >= 2, "the template's and the ticket's follow-ups: {bodies:?}");
    for (path, body) in &bodies {
        assert!(mentions_nobody(&payload(body)), "{path}: {body}");
    }

    // The customer shows as its characters: no masked link, no mention.
    let texts: Vec<String> = responses
        .iter()
        .map(|r| embeds_text(&r["data"]))
        .chain(bodies.iter().map(|(_, body)| embeds_text(&payload(body))))
        .collect();
    let shown = texts.iter().filter(|t| t.contains(PHISHING_SHOWN)).count();
    assert!(shown >= 4, "the name is shown, escaped: {texts:#?}");
    for text in &texts {
        assert!(!text.contains(PHISHING), "{text}");
        assert!(!text.contains("](http"), "no masked link: {text}");
        assert!(!text.contains(" @everyone") && !text.contains(" @here"), "{text}");
        assert!(!text.contains("<@&910000000000000100>"), "no role mention from text: {text}");
    }
    h.finish().await;
}

/// Every free-text value a `.md` template shows goes through `md` (Discord
/// Markdown escaping): the fields below are the ones users type (customer,
/// price book, reasons, e-mail) or that come from outside (AWS's error
/// details). IDs, ARNs and tenant names are shown in code spans, which
/// their parsers keep free of backticks.
#[test]
fn every_free_text_value_in_markdown_is_escaped() {
    const FREE_TEXT: &[&str] =
        &["customer", "reason", "root_email", "choice.name", "detail", "aws_error", "freshdesk_error"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for lang in orglink::domain::Lang::ALL {
        for name in orglink::templates::names(lang).into_iter().filter(|n| n.ends_with(".md")) {
            let source = std::fs::read_to_string(dir.join(lang.code()).join(name)).unwrap();
            for expression in source.split("{{").skip(1).filter_map(|rest| rest.split_once("}}")).map(|(e, _)| e.trim())
            {
                let (value, filters) = expression.split_once('|').unwrap_or((expression, ""));
                let value = value.trim();
                let free = FREE_TEXT.iter().any(|f| value == *f || value.ends_with(&format!(".{f}")));
                assert!(
                    !free || filters.split('|').any(|f| f.trim() == "md"),
                    "{lang}/{name}: {{{{ {expression} }}}} shows free text without `| md`"
                );
            }
        }
    }
}

#[test]
fn markdown_escaping_leaves_nothing_discord_would_act_on() {
    use orglink::templates::escape_markdown;
    assert_eq!(escape_markdown(PHISHING), PHISHING_SHOWN);
    assert_eq!(
        escape_markdown("<@&1> <#2> **b** __u__ ~~s~~ ||x|| `c` > q # h \\"),
        r"\<\@&1\> \<\#2\> \*\*b\*\* \_\_u\_\_ \~\~s\~\~ \|\|x\|\| \`c\` \> q \# h \\"
    );
    assert_eq!(escape_markdown("Café Ñandú, S.L."), "Café Ñandú, S.L.");
}

/// Freshdesk: the ticket's body is HTML, escaped by the templates' HTML
/// auto-escaping; the subject is plain text, one line (free text holds no
/// line break), the name as typed.
#[test]
fn ticket_bodies_escape_html_and_subjects_are_one_line() {
    use orglink::domain::Lang;
    use orglink::templates::Templates;
    let customer = "<b>Acme</b> [x](https://x) & 'co'";
    let context = serde_json::json!({
        "account": { "id": "123456789012", "customer": customer, "tenant": "acme", "state": "registered" },
        "request": { "kind": { "reason": "<script>alert(1)</script>" } },
    });
    for lang in Lang::ALL {
        let t = Templates::embedded();
        let body = t.render(lang, "tickets/requested.html", &context).unwrap();
        assert!(body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") && !body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;b&gt;Acme&lt;&#x2f;b&gt;") && !body.contains("<b>"), "{body}");
        let subject = t.render(lang, "tickets/requested_subject.txt", &context).unwrap();
        assert!(subject.contains(customer) && !subject.contains('\n'), "{subject}");
    }
}
