//! The command line end to end: the real binary, a real sled store on disk.

use crate::harness::Orglink;
use orglink::domain::{Event, LinkState, RoleRecord, Transition};
use serde_json::Value;

const ACME: &[&str] = &["--tenant", "acme", "--customer", "Acme", "--support", "business"];

fn add(o: &Orglink, id: &str, extra: &[&str]) -> String {
    let mut args = vec!["account", "add", id];
    args.extend_from_slice(ACME);
    args.extend_from_slice(extra);
    o.ok(&args)
}

#[test]
fn spanish_registration_prints_instructions_with_the_external_id() {
    let o = Orglink::new();
    let out = o.ok(&[
        "account",
        "add",
        "1234-5678-9012",
        "--tenant",
        "acme",
        "--customer",
        "Acme",
        "--support",
        "business",
        "--lang",
        "es",
    ]);
    let account = o.account("123456789012").expect("registered under its 12 digits");
    assert!(out.contains("quedó registrada"), "{out}");
    assert!(out.contains("Cree el rol de IAM de solo lectura"), "{out}");
    assert!(out.contains(account.external_id.as_str()), "{out}");
    assert!(out.contains("328676173091"), "{out}");
    assert!(out.contains("AWSSupportAccess"), "business tier: {out}");
    assert!(account.external_id.as_str().starts_with("CA"));
    assert_eq!(account.state, LinkState::Registered);

    // Exactly one event waits in the outbox: the registration, for acme.
    let outbox = o.store().outbox().unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0].event, Event::AccountRegistered { account: account.id });
    assert_eq!(outbox[0].tenant.as_str(), "acme");
    let audit = o.store().audit_log(account.id).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "account_add");
    assert!(audit[0].actor.starts_with("cli:"));
}

#[test]
fn cloudformation_format_requires_the_accounts_external_id() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let yaml = o.ok(&["instructions", "123456789012", "--format", "cloudformation"]);
    let external_id = o.account("123456789012").unwrap().external_id;
    let doc: Value = serde_norway::from_str(&yaml).unwrap();
    let statement = &doc["Resources"]["PlatformReadOnlyRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(statement["Condition"]["StringEquals"]["sts:ExternalId"], external_id.as_str());
    assert_eq!(statement["Principal"]["AWS"], "arn:aws:iam::328676173091:root");

    let text = o.ok(&["instructions", "123456789012"]);
    assert!(text.contains(external_id.as_str()) && text.contains("7. "), "{text}");
    let script = o.ok(&["instructions", "123456789012", "--format", "cli", "--lang", "es"]);
    assert!(script.contains("aws iam create-role") && script.contains(external_id.as_str()), "{script}");
}

#[test]
fn show_json_has_the_state_and_checklist() {
    let o = Orglink::new();
    add(&o, "123456789012", &["--email", "root@acme.example", "--price-book", "Partner EMEA"]);
    let shown: Value = serde_json::from_str(&o.ok(&["account", "show", "123456789012", "--json"])).unwrap();
    assert_eq!(shown["id"], "123456789012");
    assert_eq!(shown["state"], "registered");
    assert_eq!(shown["root_email"], "root@acme.example");
    assert_eq!(shown["price_book"], serde_json::json!({"kind": "custom", "name": "Partner EMEA"}));
    assert_eq!(shown["required_support_plan_group"], "business_support");
    let checklist: Vec<(String, String)> = shown["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["item"].as_str().unwrap().to_owned(), e["status"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("account_added", "done"),
        ("role_created", "pending"),
        ("role_verified", "pending"),
        ("link_request_sent", "pending"),
        ("link_accepted", "pending"),
        ("support_plan_group_set", "pending"),
        ("price_book_set", "done"),
    ];
    assert_eq!(checklist, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));

    let text = o.ok(&["account", "show", "1234 5678 9012"]);
    assert!(text.contains("Checklist:") && text.contains("⬜ role ARN verified"), "{text}");
}

#[test]
fn bad_input_exits_2_with_a_clear_message_and_changes_nothing() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let before = o.export();
    let base = |id: &'static str| -> Vec<&'static str> {
        let mut v = vec!["account", "add", id];
        v.extend_from_slice(ACME);
        v
    };
    let with = |mut v: Vec<&'static str>, extra: &[&'static str]| {
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (base("12345678901"), "`12345678901` is not valid"),
        (base("1234567890123"), "12-digit AWS account number"),
        (base("12345678901a"), "AWS account ID: `12345678901a`"),
        (base("arn:aws:iam::123456789012:role/R"), "12-digit"),
        (base(""), "AWS account ID: (empty)"),
        (with(base("111111111111"), &["--email", "root@"]), "Root e-mail: `root@`"),
        (with(base("111111111111"), &["--kind", "payer-ish"]), "Account kind"),
        (with(base("111111111111"), &["--kind", "management"]), "consent-to-assignment"),
        (with(base("111111111111"), &["--price-book", " "]), "Price book name: ` `"),
        (with(base("111111111111"), &["--lang", "fr"]), "Language: `fr`"),
        (vec!["account", "add", "111111111111", "--tenant", "a b", "--customer", "A", "--support", "basic"], "Tenant"),
        (
            vec!["account", "add", "111111111111", "--tenant", "acme", "--customer", "", "--support", "basic"],
            "Customer name: (empty)",
        ),
        (
            vec!["account", "add", "111111111111", "--tenant", "acme", "--customer", "A", "--support", "gold"],
            "`business`, `developer` or `basic`",
        ),
        (base("1234-5678-9012"), "already registered here"),
        (vec!["account", "show", "999999999999"], "not registered here"),
        (vec!["account", "rotate-external-id", "999999999999"], "not registered here"),
        (vec!["instructions", "123456789012", "--format", "pdf"], "Format: `pdf`"),
        (vec!["support-plan", "123456789012", "gold"], "Support plan group: `gold`"),
        (vec!["support-plan", "12345678901", "passthrough"], "AWS account ID"),
        (vec!["price-book", "123456789012", ""], "Price book name: (empty)"),
        (vec!["account", "list", "--tenant", "a/b"], "Tenant: `a/b`"),
    ];
    for (args, expected) in cases {
        let run = o.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: expected {expected:?} in {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        assert_eq!(o.export(), before, "{args:?} changed the store");
    }
    // Another tenant's registration of the same account is a claim of its
    // own, with its own external ID; nothing of the first shows.
    let run = o.run(&["account", "add", "123456789012", "--tenant", "globex", "--customer", "G", "--support", "basic"]);
    assert_eq!(run.code, 0, "{run:?}");
    let first = o.store().claim("123456789012".parse().unwrap(), &"acme".parse().unwrap()).unwrap().unwrap();
    assert!(!run.stdout.contains("acme") && !run.stdout.contains(first.external_id.as_str()), "{}", run.stdout);
}

#[test]
fn bad_input_is_explained_in_spanish_when_asked() {
    let o = Orglink::new();
    let run =
        o.run(&["account", "add", "1234", "--tenant", "acme", "--customer", "A", "--support", "basic", "--lang", "es"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("ID de cuenta de AWS: `1234` no es válido"), "{}", run.stderr);
    assert!(run.stderr.contains("12 dígitos"), "{}", run.stderr);
    let run = o.run(&[
        "account",
        "add",
        "111111111111",
        "--tenant",
        "acme",
        "--customer",
        "A",
        "--support",
        "basic",
        "--kind",
        "management",
        "--lang",
        "es",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("consentimiento de asignación"), "{}", run.stderr);
    assert!(o.export().is_empty() || o.store().all_accounts().unwrap().is_empty());
}

#[test]
fn a_member_account_is_registered_with_a_warning() {
    let o = Orglink::new();
    let out = add(&o, "123456789012", &["--kind", "member"]);
    assert!(out.contains("must leave that organization"), "{out}");
    assert_eq!(o.account("123456789012").unwrap().kind, orglink::domain::AccountKind::Member);
}

#[test]
fn accounts_survive_a_restart_and_list_by_tenant() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    o.ok(&["account", "add", "210987654321", "--tenant", "globex", "--customer", "Globex", "--support", "basic"]);
    o.ok(&["account", "add", "000000000001", "--tenant", "acme2", "--customer", "Acme Two", "--support", "developer"]);
    let acme: Value = serde_json::from_str(&o.ok(&["account", "list", "--tenant", "acme", "--json"])).unwrap();
    let ids: Vec<&str> = acme["accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["123456789012"], "acme2 is not acme");
    let all: Value = serde_json::from_str(&o.ok(&["account", "list", "--json"])).unwrap();
    assert_eq!(all["accounts"].as_array().unwrap().len(), 3);
    let text = o.ok(&["account", "list", "--tenant", "nobody"]);
    assert!(text.contains("No accounts are registered for tenant `nobody`"), "{text}");
    let text = o.ok(&["account", "list", "--lang", "es"]);
    assert!(text.contains("3 cuentas") && text.contains("Globex"), "{text}");
}

#[test]
fn rotation_gives_a_new_external_id_and_voids_the_verification() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let id = "123456789012".parse().unwrap();
    let old = {
        // The role is verified (as the verification issue will do it).
        let store = o.store();
        let now = time::OffsetDateTime::now_utc();
        crate::harness::change(&store, "123456789012", "verify", now, |a| {
            a.role = Some(RoleRecord {
                arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly".parse().unwrap(),
                description: None,
                recorded_at: now,
                verified_at: None,
                report: None,
            });
            a.apply(&Transition::RoleVerified, now)
        });
        store.flush().unwrap();
        store.account(id).unwrap().unwrap().external_id
    };
    let out = o.ok(&["account", "rotate-external-id", "123456789012"]);
    let account = o.account("123456789012").unwrap();
    assert_ne!(account.external_id, old);
    assert!(out.contains(account.external_id.as_str()) && !out.contains(old.as_str()), "{out}");
    assert_eq!(account.state, LinkState::Registered);
    assert_eq!(account.role.as_ref().unwrap().verified_at, None);
    let store = o.store();
    assert_eq!(store.account_with_external_id(&old).unwrap(), None);
    assert_eq!(store.account_with_external_id(&account.external_id).unwrap(), Some(id));
    let actions: Vec<String> = store.audit_log(id).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["account_add", "verify", "rotate_external_id"]);
    drop(store);

    // Once the account is linked the ID stays, and the store is unchanged.
    {
        let store = o.store();
        crate::harness::change(&store, "123456789012", "force", time::OffsetDateTime::now_utc(), |a| {
            a.state = LinkState::Linked;
            Ok::<_, ()>(vec![])
        });
        store.flush().unwrap();
    }
    let before = o.export();
    let run = o.run(&["account", "rotate-external-id", "123456789012"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("cannot be rotated now"), "{}", run.stderr);
    assert_eq!(o.export(), before);
}

#[test]
fn support_plan_and_price_book_are_recorded() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let out = o.ok(&["support-plan", "123456789012", "passthrough"]);
    assert!(out.contains("negative margins") && out.contains("Business Support"), "{out}");
    let account = o.account("123456789012").unwrap();
    assert_eq!(account.support_plan_group, Some(orglink::domain::SupportPlanGroup::Passthrough));
    // A mismatch is someone's to fix: it waits in the outbox.
    assert!(
        o.store()
            .outbox()
            .unwrap()
            .iter()
            .any(|i| matches!(i.event, Event::SupportPlanGroupSet { matches_tier: false, .. }))
    );

    let out = o.ok(&["support-plan", "123456789012", "business"]);
    assert!(out.contains("✅") && !out.contains("negative margins"), "{out}");
    let out = o.ok(&["price-book", "123456789012", "--default"]);
    assert!(out.contains("default price book"), "{out}");
    let shown: Value = serde_json::from_str(&o.ok(&["account", "show", "123456789012", "--json"])).unwrap();
    assert_eq!(shown["price_book"], serde_json::json!({"kind": "default"}));
    assert_eq!(shown["support_plan_group"], "business_support");
    assert_eq!(o.run(&["price-book", "123456789012"]).code, 2, "a name or --default is required");
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let mode = std::fs::metadata(o.data_dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // And everything in it, including what sled wrote as the process ended.
    fn walk(dir: &std::path::Path, found: &mut Vec<(std::path::PathBuf, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            found.push((path.clone(), std::fs::metadata(&path).unwrap().permissions().mode()));
            if path.is_dir() {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(&o.data_dir(), &mut found);
    assert!(!found.is_empty());
    for (path, mode) in found {
        assert_eq!(mode & 0o077, 0, "{} is {:o}", path.display(), mode & 0o777);
    }
}

#[test]
fn configuration_comes_from_the_file_then_the_environment() {
    let o = Orglink::new().env("ORGLINK_INSTRUCTIONS_ROLE_NAME", "PartnerReadOnly");
    let config = o.path("orglink.toml");
    std::fs::write(&config, "[platform]\ncross_account_id = \"111122223333\"\n[external_id]\nprefix = \"ZZ\"\n")
        .unwrap();
    let out = o.ok(&[
        "--config",
        config.to_str().unwrap(),
        "account",
        "add",
        "123456789012",
        "--tenant",
        "acme",
        "--customer",
        "A",
        "--support",
        "basic",
    ]);
    assert!(out.contains("111122223333") && out.contains("PartnerReadOnly"), "{out}");
    assert!(o.account("123456789012").unwrap().external_id.as_str().starts_with("ZZ"));

    std::fs::write(&config, "[platform]\ncross_account_id = \"1111\"\n").unwrap();
    let run = o.run(&["--config", config.to_str().unwrap(), "account", "list"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("platform.cross_account_id") && run.stderr.contains("orglink.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("12-digit"), "{}", run.stderr);

    let run = o.run(&["--config", o.path("missing.toml").to_str().unwrap(), "account", "list"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read the configuration file"), "{}", run.stderr);

    let o = Orglink::new().env("ORGLINK_EXTERNAL_ID_PREFIX", "C A");
    let run = o.run(&["account", "list", "--lang", "es"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("external_id.prefix") && run.stderr.contains("ORGLINK_EXTERNAL_ID_PREFIX"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Problema de configuración"), "{}", run.stderr);
}

/// The settings `config.example.toml` shows (commented out or not), each
/// with its section-qualified key and the comment block above it.
fn example_settings(example: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut block: Vec<&str> = Vec::new();
    let mut settings = Vec::new();
    for line in example.lines() {
        if line.trim().is_empty() {
            block.clear();
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ")
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            settings.push((format!("{section}{key}"), block.join("\n")));
        }
        block.push(line);
    }
    settings
}

#[test]
fn the_example_configuration_is_valid_and_documents_every_key() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"));
    let example = std::fs::read_to_string(path).unwrap();
    // As shipped, it loads with the real loader...
    orglink::config::Config::load(Some(path), &Default::default()).unwrap();
    // ...and so do the values it shows commented out.
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(setting)
                if setting
                    .split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) =>
            {
                setting
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let every_value = dir.path().join("every-value.toml");
    std::fs::write(&every_value, &uncommented).unwrap();
    orglink::config::Config::load(Some(&every_value), &Default::default())
        .unwrap_or_else(|e| panic!("a value config.example.toml shows does not load: {e}"));

    // Every key is shown in its section, its variable named above it...
    let settings = example_settings(&example);
    for &orglink::config::Key { name: key, env: var, .. } in orglink::config::KEYS {
        let shown: Vec<&String> = settings.iter().filter(|(k, _)| k == key).map(|(_, block)| block).collect();
        assert_eq!(shown.len(), 1, "config.example.toml shows {key} {} times", shown.len());
        assert!(shown[0].contains(var), "config.example.toml does not name {var} above {key}:\n{}", shown[0]);
    }
    // ...and nothing else is.
    for (key, _) in &settings {
        assert!(orglink::config::KEYS.iter().any(|k| k.name == key), "config.example.toml shows {key}, not a key");
    }
}

#[test]
fn another_process_holding_the_store_is_reported_not_a_panic() {
    let o = Orglink::new();
    add(&o, "123456789012", &[]);
    let _held = o.store();
    let run = o.run(&["account", "list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("Sorry") && !run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("another orglink process is using the data directory"), "{}", run.stderr);
}

/// Under systemd, `LoadCredential=ORGLINK_...` files in
/// `$CREDENTIALS_DIRECTORY` are read as the variables they are named like
/// (how the unit hands orglink its secrets); the environment wins.
#[test]
fn systemd_credentials_are_read_as_the_variables_they_are_named_like() {
    let o = Orglink::new();
    let credentials = o.path("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("ORGLINK_LANGUAGE"), "es\n").unwrap();
    let dir = credentials.display().to_string();
    let o = o.env("CREDENTIALS_DIRECTORY", &dir);
    let out = o.ok(&["account", "add", "123456789012", "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    assert!(out.contains("quedó registrada"), "{out}");
    assert!(o.ok(&["account", "show", "123456789012"]).contains("Estado: registrada"));
    let run = o.run_with(&[("ORGLINK_LANGUAGE", "en")], &["account", "show", "123456789012"]);
    assert!(run.code == 0 && run.stdout.contains("State: registered"), "the environment wins: {run:?}");
}
