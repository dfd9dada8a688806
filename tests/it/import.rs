//! `account import`: a CSV file registered whole, or, when any row is
//! refused, not at all; the real binary, a real store.

use std::fmt::Write;

use crate::harness::Orglink;
use serde_json::Value;

const HEADER: &str = "account_id,customer,support,email,price_book,kind\n";

/// A file of `rows` accounts (IDs 100000000000 onwards), comma-separated.
fn csv(rows: usize) -> String {
    let mut text = HEADER.to_owned();
    for i in 0..rows {
        let _ = writeln!(
            text,
            "{},\"Customer {i}, Ltd\",business,root{i}@example.com,,standalone",
            100_000_000_000u64 + i as u64
        );
    }
    text
}

fn import(o: &Orglink, text: &str, extra: &[&str]) -> crate::harness::Run {
    let file = o.path("accounts.csv");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["account", "import", file.to_str().unwrap(), "--tenant", "acme"];
    args.extend_from_slice(extra);
    o.run(&args)
}

#[test]
fn one_bad_row_in_a_thousand_registers_nothing_and_names_its_line() {
    let o = Orglink::new();
    o.ok(&["account", "add", "999999999999", "--tenant", "acme", "--customer", "Before", "--support", "basic"]);
    let before = o.export();
    let text = csv(1000).replace("100000000500,", "10000000050x,");
    let run = import(&o, &text, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    // The header is line 1: row 500 (from 0) is on line 502.
    assert!(run.stdout.contains("Line 502") || run.stderr.contains("Line 502"), "{run:?}");
    assert!(format!("{run:?}").contains("10000000050x"), "{run:?}");
    assert_eq!(o.export(), before, "nothing is stored");
}

#[test]
fn a_thousand_rows_are_registered_each_with_its_external_id() {
    let o = Orglink::new();
    let run = import(&o, &csv(1000), &["--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1000);
    let store = o.store();
    for a in accounts {
        let account = store.account(a["id"].as_str().unwrap().parse().unwrap()).unwrap().expect("stored");
        assert_eq!(a["external_id"].as_str(), Some(account.external_id.as_str()));
        assert_eq!(account.tenant.as_str(), "acme");
    }
    assert_eq!(store.tenant_accounts(&"acme".parse().unwrap()).unwrap().len(), 1000);
    drop(store);
    // The text table names each external ID too.
    let o = Orglink::new();
    let out = import(&o, &csv(3), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    for account in o.store().tenant_accounts(&"acme".parse().unwrap()).unwrap() {
        assert!(out.stdout.contains(account.external_id.as_str()), "{out:?}");
        assert!(out.stdout.contains("Customer 1, Ltd"), "{out:?}");
    }
}

#[test]
fn a_semicolon_file_with_a_byte_order_mark_is_read() {
    let o = Orglink::new();
    let text = "\u{feff}account_id;customer;support\r\n1111-2222-3333;Acme, Inc;developer\r\n444455556666;\"Say \"\"hi\"\"\";basic\r\n";
    let run = import(&o, text, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(o.account("111122223333").unwrap().customer.as_str(), "Acme, Inc");
    assert_eq!(o.account("444455556666").unwrap().customer.as_str(), "Say \"hi\"");
}

#[test]
fn duplicates_within_the_file_and_accounts_already_claimed_are_refused() {
    let o = Orglink::new();
    o.ok(&["account", "add", "100000000001", "--tenant", "acme", "--customer", "Before", "--support", "basic"]);
    let before = o.export();
    let text = format!("{HEADER}100000000000,A,basic,,,\n100000000001,B,basic,,,\n1000-0000-0000,C,basic,,,\n");
    let run = import(&o, &text, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(out.contains("Line 3: AWS account 100000000001 is already registered"), "{out}");
    assert!(out.contains("Line 4: AWS account 100000000000 is on line 2 already"), "{out}");
    assert_eq!(o.export(), before);
}

#[test]
fn a_dry_run_judges_and_writes_nothing() {
    let o = Orglink::new();
    o.ok(&["account", "add", "999999999999", "--tenant", "acme", "--customer", "Before", "--support", "basic"]);
    let before = o.export();
    let run = import(&o, &csv(20), &["--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("All 20 rows can be registered"), "{run:?}");
    assert_eq!(o.export(), before);
    let bad = import(&o, &format!("{HEADER}100000000000,A,gold,,,\n"), &["--dry-run"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(o.export(), before);
}

#[test]
fn problems_are_explained_in_spanish() {
    let o = Orglink::new();
    let text = format!("{HEADER}100000000000,A,oro,,,\n100000000001,B,basic,,,,extra\nx\n");
    let file = o.path("accounts.csv");
    std::fs::write(&file, text).unwrap();
    let run = o.run(&["--lang", "es", "account", "import", file.to_str().unwrap(), "--tenant", "acme"]);
    assert_eq!(run.code, 2, "{run:?}");
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(out.contains("No se registró nada"), "{out}");
    assert!(out.contains("Línea 2: Plan de soporte de AWS \"oro\" no es válido"), "{out}");
    assert!(out.contains("Línea 3: 7 campos, el encabezado tiene 6 columnas"), "{out}");
    assert!(out.contains("Línea 4: 1 campo, el encabezado tiene 6 columnas"), "{out}");
    let o = Orglink::new();
    let missing = o.run(&["--lang", "es", "account", "import", "nowhere.csv", "--tenant", "acme"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(format!("{missing:?}").contains("Archivo CSV"), "{missing:?}");
    assert!(!o.data_dir().exists(), "an unreadable file opens no store");
}

#[test]
fn the_export_gives_each_customer_what_they_need_quoted_as_csv() {
    let o = Orglink::new().env("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", "210987654321");
    let text = format!("{HEADER}111111111111,\"Acme, \"\"the\"\" Corp\",business,,,\n222222222222,=cmd(),basic,,,\n");
    assert_eq!(import(&o, &text, &[]).code, 0);
    o.ok(&["account", "add", "333333333333", "--tenant", "other", "--customer", "Other", "--support", "basic"]);
    let out = o.ok(&["account", "export", "--tenant", "acme", "--csv"]);
    let store = o.store();
    let external = |id: &str| store.account(id.parse().unwrap()).unwrap().unwrap().external_id.as_str().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "account_id,customer,tenant,state,external_id,role_name,trusted_account_id,instructions_command",
            &format!(
                "111111111111,\"Acme, \"\"the\"\" Corp\",acme,registered,{},OrgLinkReadOnly,210987654321,/instructions account_id:111111111111",
                external("111111111111")
            ),
            &format!(
                "222222222222,'=cmd(),acme,registered,{},OrgLinkReadOnly,210987654321,/instructions account_id:222222222222",
                external("222222222222")
            ),
        ]
    );
    drop(store);
    // Operations: every tenant's; in Spanish, the Spanish command.
    let all = o.ok(&["--lang", "es", "account", "export", "--csv"]);
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains("/instrucciones id_cuenta:333333333333"), "{all}");
}

/// Sets a claim's state and last change directly in the store, as time
/// and AWS would have.
fn age(o: &Orglink, id: &str, state: orglink::domain::LinkState, days: i64) {
    let store = o.store();
    let by = orglink::store::By::new("test", "age", time::OffsetDateTime::now_utc());
    store
        .update_account::<()>(id.parse().unwrap(), &"acme".parse().unwrap(), &by, |a| {
            a.state = state;
            a.updated_at -= time::Duration::days(days);
            Ok(orglink::store::Change::default())
        })
        .unwrap();
}

#[test]
fn lists_filter_by_state_and_staleness_and_quote_csv() {
    use orglink::domain::LinkState;
    let o = Orglink::new();
    let text = format!(
        "{HEADER}111111111111,\"Acme, \"\"the\"\" Corp\",business,,,\n222222222222,Beta,basic,,,\n333333333333,Gamma,basic,,,\n"
    );
    assert_eq!(import(&o, &text, &[]).code, 0);
    age(&o, "111111111111", LinkState::Registered, 40);
    age(&o, "222222222222", LinkState::Lapsed, 10);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["account", "list", "--json"];
        full.extend_from_slice(args);
        let json: Value = serde_json::from_str(&o.ok(&full)).unwrap();
        json["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&[]), ["111111111111", "222222222222", "333333333333"]);
    assert_eq!(ids(&["--state", "lapsed"]), ["222222222222"]);
    assert_eq!(ids(&["--state", "lapsed", "--state", "registered"]).len(), 3);
    assert_eq!(ids(&["--stale", "7"]), ["111111111111", "222222222222"]);
    assert_eq!(ids(&["--stale", "30"]), ["111111111111"]);
    assert_eq!(ids(&["--stale", "30", "--state", "lapsed"]), Vec::<String>::new());
    let json: Value = serde_json::from_str(&o.ok(&["account", "list", "--json", "--tenant", "acme"])).unwrap();
    let first = &json["accounts"][0];
    assert_eq!(first["next_actor"], "account_owner");
    assert!(first["registered_at"].as_str().unwrap() > first["updated_at"].as_str().unwrap(), "{first}");

    let csv = o.ok(&["account", "list", "--csv", "--state", "registered"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "account_id,customer,tenant,state,steps_done,steps_total,registered_at,updated_at,next_actor");
    assert!(lines[1].starts_with("111111111111,\"Acme, \"\"the\"\" Corp\",acme,registered,"), "{csv}");
    assert!(lines[1].ends_with(",account_owner"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let text = o.ok(&["account", "list", "--stale", "30"]);
    assert!(text.contains("next: AWS account owner"), "{text}");
    assert!(o.ok(&["account", "list", "--stale", "100"]).contains("No registrations match"));

    let bad = o.run(&["--lang", "es", "account", "list", "--state", "done"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("Estado de la cuenta: \"done\""), "{bad:?}");
}

#[test]
fn show_names_the_tickets_waiting_and_the_last_check() {
    let o = Orglink::new();
    o.ok(&["account", "add", "111111111111", "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    // No Freshdesk configured: the ticket is recorded and waits.
    let ticket = o.run(&["ticket", "111111111111", "--reason", "The owner needs help"]);
    assert_eq!(ticket.code, 0, "{ticket:?}");
    let shown = o.ok(&["account", "show", "111111111111"]);
    assert!(shown.contains("🕓 waits for Freshdesk"), "{shown}");
    let json: Value = serde_json::from_str(&o.ok(&["account", "show", "111111111111", "--json"])).unwrap();
    assert_eq!(json["pending_tickets"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["last_check"], Value::Null);
}
