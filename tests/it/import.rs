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
    assert!(out.contains("Line 3: AWS account `100000000001` is already registered"), "{out}");
    assert!(out.contains("Line 4: AWS account `100000000000` is on line 2 already"), "{out}");
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
    assert!(out.contains("Línea 2: Nivel de soporte `oro` no es válido"), "{out}");
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
