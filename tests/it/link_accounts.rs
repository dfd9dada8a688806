//! `/link-accounts`: a CSV file attached in Discord, fetched from Discord's
//! file server (a local recorder here) after the deferred answer, and
//! imported for the sender's server by the import's own rules.

use std::fmt::Write as _;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::{Harness, Recorder};

const EPHEMERAL: u64 = 64;
const FILE_PATH: &str = "/ephemeral-attachments/600000000000000011/1310000000000000001/accounts.csv";

/// A file of `rows` accounts (IDs 300000000000 onwards).
fn csv(rows: usize) -> String {
    let mut text = "account_id,customer,support\n".to_owned();
    for i in 0..rows {
        let _ = writeln!(text, "{},\"Customer {i}, Ltd\",basic", 300_000_000_000u64 + i as u64);
    }
    text
}

/// `/link-accounts` in `guild`, its file at `url` declared `size` bytes.
fn link_accounts(guild: &str, locale: &str, url: &str, size: u64, token: &str) -> Value {
    let mut i = interaction("command_link_accounts", guild, locale, ADMIN, &[]);
    let attachment = &mut i["data"]["resolved"]["attachments"]["1310000000000000001"];
    attachment["url"] = json!(url);
    attachment["size"] = json!(size);
    i["token"] = json!(token);
    i
}

/// The file served at `FILE_PATH` by the stand-in for Discord's CDN.
async fn serve_file(cdn: &Recorder, response: ResponseTemplate) {
    Mock::given(method("GET")).and(path(FILE_PATH)).respond_with(response).mount(&cdn.server).await;
}

fn file_url(cdn: &Recorder) -> String {
    format!("{}{FILE_PATH}?ex=6740a1b2&is=673f5032&hm=3f1c2d", cdn.uri())
}

/// Posts `/link-accounts` with `text` as its file; returns the follow-up's
/// body (the edit of the deferred answer).
async fn import(h: &Harness, guild: &str, locale: &str, text: &str, token: &str) -> String {
    h.cdn().reset().await;
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_string(text)).await;
    let response = h.interact(&link_accounts(guild, locale, &file_url(h.cdn()), text.len() as u64, token)).await;
    assert_eq!(response["type"], 5, "deferred at once: {response}");
    assert_eq!(response["data"]["flags"].as_u64().unwrap_or(0) & EPHEMERAL, EPHEMERAL);
    String::from_utf8_lossy(&h.followup(token).await.body).into_owned()
}

/// The message of a follow-up body: JSON, or the `payload_json` part of a
/// multipart body (a message with files).
fn payload(body: &str) -> Value {
    if let Ok(json) = serde_json::from_str(body) {
        return json;
    }
    let start = body.find("name=\"payload_json\"").expect("a payload_json part");
    let json = &body[start..];
    let json = &json[json.find('{').unwrap()..];
    serde_json::Deserializer::from_str(json).into_iter::<Value>().next().unwrap().unwrap()
}

/// The attached file named `name` in a multipart body.
fn attached(body: &str, name: &str) -> String {
    let start = body.find(&format!("filename=\"{name}\"")).unwrap_or_else(|| panic!("no {name} in {body}"));
    let part = &body[start..];
    let part = &part[part.find("\r\n\r\n").unwrap() + 4..];
    part[..part.find("\r\n--").unwrap()].to_owned()
}

fn mentions_nobody(message: &Value) -> bool {
    message["allowed_mentions"] == json!({ "parse": [], "users": [], "roles": [] })
}

/// Everything stored but the endpoint's health check.
fn stored(h: &Harness) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    h.store()
        .export()
        .unwrap()
        .into_iter()
        .filter(|(tree, key, _)| !(tree.as_slice() == b"__sled__default" && key.as_slice() == b"health_check"))
        .collect()
}

#[tokio::test]
async fn a_csv_registers_every_row_and_answers_with_a_summary_and_the_external_ids() {
    let h = Harness::new().cdn().serve().await;
    let body = import(&h, GUILD_A, "en-US", &csv(3), "token-import").await;
    let message = payload(&body);
    let summary = embeds_text(&message);
    assert!(summary.contains(&format!("3 AWS accounts registered for server `{GUILD_A}`")), "{summary}");
    assert!(summary.contains("`external-ids.csv`"), "{summary}");
    assert!(mentions_nobody(&message), "{message}");
    let ids = attached(&body, "external-ids.csv");
    let mut lines = ids.lines();
    assert_eq!(lines.next(), Some("account_id,customer,external_id"));
    let accounts = h.store().tenant_accounts(&GUILD_A.parse().unwrap()).unwrap();
    assert_eq!(accounts.len(), 3);
    for (i, line) in lines.enumerate() {
        let account = accounts.iter().find(|a| a.customer.as_str() == format!("Customer {i}, Ltd")).unwrap();
        assert_eq!(line, format!("{},\"Customer {i}, Ltd\",{}", account.id, account.external_id));
    }
    assert_eq!(ids.lines().count(), 4, "{ids}");
    // Fetched once, from the file's own address.
    let fetched = h.cdn().requests().await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].url.path(), FILE_PATH);
    // Registered as `/link-account` registers: the same notifications,
    // through the outbox.
    h.interact(&command(
        "link-account",
        &[("account_id", "123412341234"), ("customer", "One"), ("support_tier", "basic")],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    ))
    .await;
    h.settle().await;
    // The server set no channel: each notice is a dead letter, the same.
    let dead = h.store().dead_letters().unwrap();
    let told = |id: orglink::domain::AccountId| -> Vec<&str> {
        dead.iter().filter(|d| d.item.event.account() == Some(id)).map(|d| d.item.event.code()).collect()
    };
    assert_eq!(told("123412341234".parse().unwrap()), ["account_registered"]);
    for account in &accounts {
        assert_eq!(told(account.id), ["account_registered"], "{}", account.id);
    }
    h.outbox();
    // And `/status` shows them.
    let status = h.interact(&command("status", &[], GUILD_A, "en-US", ADMIN, &[])).await;
    let text = embeds_text(&status["data"]);
    assert!(text.contains("4 accounts of tenant") && text.contains("Customer 2, Ltd"), "{text}");
    h.finish().await;
}

#[tokio::test]
async fn the_answer_is_in_spanish_for_a_spanish_user_and_a_dry_run_registers_nothing() {
    let h = Harness::new().cdn().serve().await;
    let body = import(&h, GUILD_B, "es-419", &csv(2), "token-es").await;
    let summary = embeds_text(&payload(&body));
    assert!(summary.contains(&format!("2 cuentas de AWS registradas para el servidor `{GUILD_B}`")), "{summary}");
    assert!(summary.contains("`/estado`"), "{summary}");
    assert!(body.contains("filename=\"external-ids.csv\""));
    assert_eq!(h.store().tenant_accounts(&GUILD_B.parse().unwrap()).unwrap().len(), 2);
    h.settle().await;
    h.outbox();

    // `dry_run`: judged, nothing registered, no file.
    let before = stored(&h);
    h.cdn().reset().await;
    let text = csv(5).replace("300000000000,", "300000000100,").replace("300000000001,", "300000000101,");
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_string(text.clone())).await;
    let mut dry = link_accounts(GUILD_B, "en-US", &file_url(h.cdn()), text.len() as u64, "token-dry");
    dry["data"]["options"] = json!([
        { "name": "file", "type": 11, "value": "1310000000000000001" },
        { "name": "dry_run", "type": 5, "value": true },
    ]);
    assert_eq!(h.interact(&dry).await["type"], 5);
    let body = String::from_utf8_lossy(&h.followup("token-dry").await.body).into_owned();
    let summary = embeds_text(&payload(&body));
    assert!(summary.contains("All 5 rows can be registered") && summary.contains("dry run"), "{summary}");
    assert!(!body.contains("external-ids.csv"), "{body}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn a_bad_row_is_named_by_its_line_and_nothing_is_stored() {
    let h = Harness::new().cdn().serve().await;
    let before = stored(&h);
    let text = csv(3).replace("300000000001,", "30000000000x,");
    for (locale, said) in [("en-US", "Line 3: AWS account ID"), ("es-ES", "Línea 3")] {
        let body = import(&h, GUILD_A, locale, &text, &format!("token-bad-{locale}")).await;
        let message = payload(&body);
        let shown = embeds_text(&message);
        assert!(shown.contains(said) && shown.contains("30000000000x"), "{shown}");
        assert_eq!(message["embeds"][0]["color"], 0xE74C3C, "red");
        assert!(!body.contains("external-ids.csv"));
    }
    // Many refused rows: each named, the list attached as a file.
    let text = csv(300).replace(",basic\n", ",gold\n");
    let body = import(&h, GUILD_A, "en-US", &text, "token-many-bad").await;
    let list = attached(&body, "orglink-reply.md");
    assert!(list.contains("300 rows of the file cannot be registered"), "{list}");
    assert!(list.contains("Line 2: AWS support plan") && list.contains("Line 301: AWS support plan"), "{list}");
    assert!(embeds_text(&payload(&body)).contains("attached as a file"), "{body}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn a_file_over_a_mebibyte_or_off_the_cdn_is_refused_without_fetching_it() {
    let h = Harness::new().cdn().serve().await;
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_string(csv(1))).await;
    let before = stored(&h);
    // Declared over 1 MiB: refused at once.
    let big = h.interact(&link_accounts(GUILD_A, "en-US", &file_url(h.cdn()), 1024 * 1024 + 1, "t1")).await;
    assert_eq!(big["type"], 4, "answered at once: {big}");
    assert_eq!(big["data"]["flags"].as_u64().unwrap_or(0) & EPHEMERAL, EPHEMERAL);
    let text = embeds_text(&big["data"]);
    assert!(text.contains("1048577 bytes") && text.contains("1 MiB") && text.contains("1,000 rows"), "{text}");
    let es = h.interact(&link_accounts(GUILD_A, "es-419", &file_url(h.cdn()), 5_000_000, "t2")).await;
    assert!(embeds_text(&es["data"]).contains("demasiado grande"), "{es}");
    // Another server than the CDN (here, the Discord REST recorder), or the
    // CDN's host with another scheme, port or a userinfo trick.
    let elsewhere = h.discord().uri();
    let cdn = h.cdn().uri();
    let port = cdn.rsplit(':').next().unwrap();
    for url in [
        format!("{elsewhere}{FILE_PATH}"),
        format!("http://127.0.0.1.nip.io:{port}{FILE_PATH}"),
        format!("http://127.0.0.1@{}{FILE_PATH}", elsewhere.trim_start_matches("http://")),
        cdn.replace("http://", "https://") + FILE_PATH,
        format!("{cdn}0{FILE_PATH}"),
    ] {
        let refused = h.interact(&link_accounts(GUILD_A, "en-US", &url, 100, "t3")).await;
        assert_eq!(refused["type"], 4, "{url}: {refused}");
        let text = embeds_text(&refused["data"]);
        assert!(text.contains("does not come from Discord's file server"), "{url}: {text}");
    }
    assert!(h.cdn().requests().await.is_empty(), "nothing fetched");
    let asked_elsewhere = h.discord().requests().await;
    assert!(asked_elsewhere.iter().all(|r| r.url.path() != FILE_PATH), "{asked_elsewhere:?}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn a_file_larger_than_declared_is_cut_off_and_refused() {
    let h = Harness::new().cdn().serve().await;
    let before = stored(&h);
    let huge = "x".repeat(1024 * 1024 + 10);
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_string(huge)).await;
    assert_eq!(h.interact(&link_accounts(GUILD_A, "en-US", &file_url(h.cdn()), 100, "t-huge")).await["type"], 5);
    let body = String::from_utf8_lossy(&h.followup("t-huge").await.body).into_owned();
    let text = embeds_text(&payload(&body));
    assert!(text.contains("too large") && text.contains("1048576 bytes"), "{text}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn more_than_a_thousand_rows_are_refused_whole() {
    let h = Harness::new().cdn().serve().await;
    let before = stored(&h);
    let body = import(&h, GUILD_A, "en-US", &csv(1001), "token-1001").await;
    let text = embeds_text(&payload(&body));
    assert!(text.contains("1001 rows") && text.contains("at most 1000"), "{text}");
    assert_eq!(stored(&h), before, "nothing stored");
    let body = import(&h, GUILD_A, "es-419", &csv(1001), "token-1001-es").await;
    let text = embeds_text(&payload(&body));
    assert!(text.contains("1001 filas") && text.contains("como máximo 1000"), "{text}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn a_cdn_that_fails_is_ours_to_say_and_nothing_is_stored() {
    let mut h = Harness::new().cdn().serve().await;
    h.expect_error("could not be fetched");
    let before = stored(&h);
    serve_file(h.cdn(), ResponseTemplate::new(500)).await;
    assert_eq!(h.interact(&link_accounts(GUILD_A, "en-US", &file_url(h.cdn()), 100, "t-500")).await["type"], 5);
    let body = String::from_utf8_lossy(&h.followup("t-500").await.body).into_owned();
    let text = embeds_text(&payload(&body));
    assert!(text.contains("could not fetch the file from Discord") && text.contains("HTTP 500"), "{text}");
    assert!(text.contains("not a problem with your file") && text.contains("Try again"), "{text}");
    let es = link_accounts(GUILD_A, "es-ES", &file_url(h.cdn()), 100, "t-500-es");
    h.interact(&es).await;
    let body = String::from_utf8_lossy(&h.followup("t-500-es").await.body).into_owned();
    assert!(embeds_text(&payload(&body)).contains("no pudo descargar el archivo de Discord"), "{body}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn a_file_that_is_not_utf8_csv_gets_the_imports_own_refusal() {
    let h = Harness::new().cdn().serve().await;
    let before = stored(&h);
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_bytes(vec![0xff, 0xfe, 0x00, 0x41])).await;
    h.interact(&link_accounts(GUILD_A, "en-US", &file_url(h.cdn()), 4, "t-bin")).await;
    let text = embeds_text(&payload(&String::from_utf8_lossy(&h.followup("t-bin").await.body)));
    assert!(text.contains("`accounts.csv` is not valid") && text.contains("UTF-8"), "{text}");
    let body = import(&h, GUILD_A, "en-US", "name,amount\nAcme,3\n", "t-notcsv").await;
    let text = embeds_text(&payload(&body));
    assert!(text.contains("Line 1") && text.contains("the header must name the columns"), "{text}");
    assert_eq!(stored(&h), before, "nothing stored");
    h.finish().await;
}

#[tokio::test]
async fn hostile_content_is_shown_escaped_and_mentions_nobody() {
    let h = Harness::new().cdn().serve().await;
    let hostile = "@everyone **now** `x` [Re-verify](https://evil.example) <@&910000000000000100>";
    // A bad row quoting a hostile value: shown as data, in a code span.
    let text = format!("account_id,customer,support\n`@here` [y](https://evil.example),\"{hostile}\",basic\n");
    let body = import(&h, GUILD_A, "en-US", &text, "t-hostile-bad").await;
    let message = payload(&body);
    let shown = embeds_text(&message);
    assert!(shown.contains("Line 2") && shown.contains("`ˋ@hereˋ"), "{shown}");
    assert!(mentions_nobody(&message), "{message}");
    // Registered: the summary shows no customer; the file carries the name
    // as data, defused for spreadsheets.
    let text = format!("account_id,customer,support\n111122223333,\"{hostile}\",basic\n");
    let body = import(&h, GUILD_A, "en-US", &text, "t-hostile").await;
    let message = payload(&body);
    assert!(mentions_nobody(&message), "{message}");
    assert!(!embeds_text(&message).contains("@everyone"));
    let account = h.store().account("111122223333".parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.customer.as_str(), hostile);
    let ids = attached(&body, "external-ids.csv");
    assert!(ids.contains(&format!("111122223333,'{hostile},{}", account.external_id)), "{ids}");
    h.outbox();
    h.finish().await;
}

#[tokio::test]
async fn only_members_allowed_to_register_import_and_the_file_is_not_fetched_for_others() {
    let h = Harness::new().cdn().serve().await;
    serve_file(h.cdn(), ResponseTemplate::new(200).set_body_string(csv(1))).await;
    let mut nobody = link_accounts(GUILD_A, "en-US", &file_url(h.cdn()), 100, "t-nobody");
    nobody["member"]["permissions"] = json!(NOBODY);
    nobody["member"]["roles"] = json!([]);
    assert_eq!(h.interact(&nobody).await["type"], 5);
    let body = String::from_utf8_lossy(&h.followup("t-nobody").await.body).into_owned();
    let text = embeds_text(&payload(&body));
    assert!(text.contains("Manage Server"), "{text}");
    assert!(h.cdn().requests().await.is_empty(), "nothing fetched");
    assert!(h.store().tenant_accounts(&GUILD_A.parse().unwrap()).unwrap().is_empty());
    h.finish().await;
}

#[tokio::test]
async fn a_file_that_would_exceed_the_open_claims_quota_is_refused_whole() {
    let h = Harness::new().cdn().settings(|s| s.quotas.open_claims = 4).serve().await;
    h.register_in(GUILD_A, "999999999999");
    h.outbox();
    let body = import(&h, GUILD_A, "en-US", &csv(4), "t-quota").await;
    let text = embeds_text(&payload(&body));
    assert!(text.contains("at most 4 at once") && text.contains("has 1 open"), "{text}");
    assert!(text.contains("would add 4") && text.contains("only 3 more fit"), "{text}");
    assert_eq!(h.store().tenant_accounts(&GUILD_A.parse().unwrap()).unwrap().len(), 1, "nothing registered");
    // Operations hear of it, once that day.
    let told = h.outbox().iter().filter(|i| i.event.code() == "quota_exceeded").count();
    assert_eq!(told, 1);
    // Three fit.
    let body = import(&h, GUILD_A, "en-US", &csv(3), "t-quota-3").await;
    assert!(embeds_text(&payload(&body)).contains("3 AWS accounts registered"), "{body}");
    h.outbox();
    h.finish().await;
}
