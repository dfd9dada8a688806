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

/// A terminal gets plain words for the operator: none of Discord's
/// Markdown, the external ID in `account show`, and what a customer typed
/// exactly as typed, even where it looks like Markdown.
#[test]
fn the_terminal_gets_plain_text_and_typed_values_as_typed() {
    let o = Orglink::new();
    let customer = "**Evil** `x` [a](https://e.example) _y_";
    let out =
        o.ok(&["account", "add", "123456789012", "--tenant", "acme", "--customer", customer, "--support", "basic"]);
    assert!(out.contains(&format!("is registered for {customer} (tenant acme).")), "{out}");
    assert!(out.contains("Create the read-only IAM role for AWS account 123456789012"), "{out}");
    let external_id = o.account("123456789012").unwrap().external_id;
    for args in [&["account", "show", "123456789012"][..], &["instructions", "123456789012"], &["account", "list"]] {
        let text = o.ok(args);
        let without_customer = text.replace(customer, "");
        assert!(!without_customer.contains("**") && !without_customer.contains('`'), "{args:?}: {text}");
        assert!(text.contains(customer), "{args:?}: {text}");
    }
    let shown = o.ok(&["account", "show", "123456789012", "--lang", "es"]);
    assert!(shown.contains(&format!("ID externo: {}", external_id.as_str())), "{shown}");
    let instructions = o.ok(&["instructions", "123456789012"]);
    // The owner reads them: no channel, whatever the surface.
    assert!(!instructions.contains("channel"), "{instructions}");
    assert!(instructions.contains("to whoever sent you these instructions"), "{instructions}");
    // Markdown for Discord is still what the chat gets (its escaping of
    // free text is tested with the bot).
    let bad = o.run(&["account", "add", "1234", "--tenant", "acme", "--customer", "A", "--support", "basic"]);
    assert!(bad.stderr.contains("AWS account ID: \"1234\" is not valid"), "{bad:?}");
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
        (base("12345678901"), "\"12345678901\" is not valid"),
        (base("1234567890123"), "12-digit AWS account number"),
        (base("12345678901a"), "AWS account ID: \"12345678901a\""),
        (base("arn:aws:iam::123456789012:role/R"), "12-digit"),
        (base(""), "AWS account ID: (empty)"),
        (with(base("111111111111"), &["--email", "root@"]), "Root e-mail: \"root@\""),
        (with(base("111111111111"), &["--kind", "payer-ish"]), "Account kind"),
        (with(base("111111111111"), &["--kind", "management"]), "consent to assignment (CTA)"),
        (with(base("111111111111"), &["--price-book", " "]), "Price book name: \" \""),
        (with(base("111111111111"), &["--lang", "fr"]), "Language: \"fr\""),
        (vec!["account", "add", "111111111111", "--tenant", "a b", "--customer", "A", "--support", "basic"], "Tenant"),
        (
            vec!["account", "add", "111111111111", "--tenant", "acme", "--customer", "", "--support", "basic"],
            "Customer name: (empty)",
        ),
        (
            vec!["account", "add", "111111111111", "--tenant", "acme", "--customer", "A", "--support", "gold"],
            "business, developer or basic",
        ),
        (base("1234-5678-9012"), "already registered here"),
        (vec!["account", "show", "999999999999"], "not registered here"),
        (vec!["account", "rotate-external-id", "999999999999"], "not registered here"),
        (vec!["instructions", "123456789012", "--format", "pdf"], "Format: \"pdf\""),
        (vec!["support-plan", "123456789012", "gold"], "Support plan group: \"gold\""),
        (vec!["support-plan", "12345678901", "passthrough"], "AWS account ID"),
        (vec!["price-book", "123456789012", ""], "Price book name: (empty)"),
        (vec!["account", "list", "--tenant", "a/b"], "Tenant: \"a/b\""),
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
    assert!(run.stderr.contains("ID de cuenta de AWS: \"1234\" no es válido"), "{}", run.stderr);
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
    assert!(run.stderr.contains("consentimiento de cesión"), "{}", run.stderr);
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
    assert!(text.contains("No accounts are registered for tenant nobody"), "{text}");
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

/// AWS credentials that go nowhere, at once: for `doctor` where AWS is not
/// what a test is about.
const OFFLINE: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAOFFLINE"),
    ("AWS_SECRET_ACCESS_KEY", "offline"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_MAX_ATTEMPTS", "1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// Every entry under `dir` with its mode and, for a file, its contents.
#[cfg(unix)]
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = vec![(dir.to_owned(), std::fs::metadata(dir).unwrap().permissions().mode(), vec![])];
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(tree(&path));
        } else {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            found.push((path.clone(), mode, std::fs::read(&path).unwrap()));
        }
    }
    found
}

#[cfg(unix)]
#[test]
fn a_directory_that_is_not_a_store_is_refused_and_left_exactly_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let o = Orglink::new();
    // A project, given as the data directory by mistake.
    let project = o.data_dir();
    std::fs::create_dir_all(project.join("bin")).unwrap();
    std::fs::write(project.join("bin/deploy.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(project.join("bin/deploy.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(project.join("README.md"), "# project\n").unwrap();
    std::fs::set_permissions(project.join("README.md"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(project.join("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = tree(&project);
    for args in [
        &["account", "list"][..],
        &["account", "add", "123456789012", "--tenant", "acme", "--customer", "Acme", "--support", "basic"],
        &["tenant", "approve", "900000000000000001"],
        &["sweep", "--job", "lapse_claims"],
        &["serve"],
    ] {
        let run = o.run(args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("is not empty and is not an orglink store"), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("README.md, bin"), "{}", run.stderr);
        assert_eq!(tree(&project), before, "{args:?} changed the directory");
    }
    let run = o.run(&["account", "list", "--lang", "es"]);
    assert!(run.stderr.contains("no es un almacén de orglink"), "{}", run.stderr);
    // Doctor says so too, and touches nothing.
    let run = o.run_with(OFFLINE, &["doctor"]);
    assert!(run.stdout.contains("❌ Store in") && run.stdout.contains("not an orglink store"), "{}", run.stdout);
    assert_eq!(tree(&project), before);
}

#[test]
fn a_command_that_only_reads_never_creates_a_store() {
    let o = Orglink::new();
    for exists in [false, true] {
        if exists {
            std::fs::create_dir(o.data_dir()).unwrap();
        }
        for args in [
            &["account", "list"][..],
            &["account", "show", "123456789012"],
            &["instructions", "123456789012"],
            &["account", "history", "123456789012"],
            &["tenant", "list", "--json"],
        ] {
            let run = o.run(args);
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
            let expected = format!("no orglink store at {}", o.data_dir().display());
            assert!(run.stderr.contains(&expected), "{args:?}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{}", run.stdout);
        }
        let run = o.run_with(OFFLINE, &["doctor"]);
        assert!(run.stdout.contains("none yet"), "{}", run.stdout);
        assert_eq!(o.data_dir().exists(), exists, "nothing was created");
        if exists {
            assert_eq!(std::fs::read_dir(o.data_dir()).unwrap().count(), 0, "the directory stays empty");
        }
    }
    let run = o.run(&["account", "list", "--lang", "es"]);
    assert!(run.stderr.contains("No hay un almacén de orglink en"), "{}", run.stderr);
    // A command that records something creates it in the empty directory.
    add(&o, "123456789012", &[]);
    assert!(o.ok(&["account", "list"]).contains("123456789012"));
}

#[test]
fn a_file_as_the_data_directory_or_none_at_all_is_named() {
    let o = Orglink::new();
    std::fs::write(o.data_dir(), "not a directory").unwrap();
    for args in [&["account", "list"][..], &["account", "add", "123456789012"], &["serve"]] {
        let mut args = args.to_vec();
        if args.len() == 3 {
            args.extend_from_slice(ACME);
        }
        let run = o.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(&format!("{} is not a directory", o.data_dir().display())), "{}", run.stderr);
        assert!(!run.stderr.contains("os error"), "{}", run.stderr);
    }
    assert_eq!(std::fs::read_to_string(o.data_dir()).unwrap(), "not a directory");
    // Below a file: the system's words, said once.
    let below = o.data_dir().join("data");
    let run = o.run_bare(&[], &["--data-dir", below.to_str().unwrap(), "account", "list"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.matches("Not a directory").count(), 1, "{}", run.stderr);

    // No --data-dir, data_dir or ORGLINK_DATA_DIR: said, and nothing is
    // created where orglink happens to run.
    let run = o.run_bare(
        &[],
        &["account", "add", "123456789012", "--tenant", "acme", "--customer", "A", "--support", "basic"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("No data directory is set"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(o.path("")).unwrap().count(), 1, "only the file above");
    let data = o.path("from-env");
    let run = o.run_bare(
        &[("ORGLINK_DATA_DIR", data.to_str().unwrap())],
        &["account", "add", "123456789012"].iter().chain(ACME).copied().collect::<Vec<_>>(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(data.join("db").is_file());
}

#[test]
fn configuration_errors_say_what_is_wrong_in_both_languages() {
    let o = Orglink::new();
    let run = |env: &[(&str, &str)], lang: &str| {
        let run = o.run_with(env, &["account", "list", "--lang", lang]);
        assert_eq!(run.code, 2, "{run:?}");
        run.stderr
    };
    // The right length, no Ed25519 key: not "64 hexadecimal characters".
    let not_a_point = format!("02{}", "0".repeat(62));
    let text = run(&[("ORGLINK_DISCORD_PUBLIC_KEY", &not_a_point)], "en");
    assert!(
        text.contains("is not an Ed25519 public key") && !text.contains("Expected the application's public key from"),
        "{text}"
    );
    assert!(run(&[("ORGLINK_DISCORD_PUBLIC_KEY", &not_a_point)], "es").contains("no es una clave pública Ed25519"));

    // A host without its scheme: what was probably meant.
    let config = o.path("d.toml");
    std::fs::write(
        &config,
        "[freshdesk]\nbase_url = \"distributor.freshdesk.com\"\napi_key = \"k\"\nrequester_email = \"ops@d.example\"\n",
    )
    .unwrap();
    let with_file = |lang: &str| {
        let run = o.run(&["--config", config.to_str().unwrap(), "account", "list", "--lang", lang]);
        assert_eq!(run.code, 2, "{run:?}");
        run.stderr
    };
    let text = with_file("en");
    assert!(text.contains("Did you mean https://distributor.freshdesk.com?"), "{text}");
    assert!(with_file("es").contains("¿Quiso decir https://distributor.freshdesk.com?"));

    // A secret in clear over the network.
    let text = run(&[("ORGLINK_DISCORD_API_BASE_URL", "http://discord.example")], "en");
    assert!(text.contains("discord.api_base_url") && text.contains("in clear"), "{text}");
    assert!(run(&[("ORGLINK_DISCORD_API_BASE_URL", "http://discord.example")], "es").contains("sin cifrar"));

    // A schedule that parses but never fires is refused when loaded.
    let text = run(&[("ORGLINK_SCHEDULE_PROBE_ROLES", "0 0 0 30 2 *")], "en");
    assert!(text.contains("schedule.probe_roles") && text.contains("fires at least once every year"), "{text}");
    assert!(run(&[("ORGLINK_SCHEDULE_PROBE_ROLES", "0 0 0 30 2 *")], "es").contains("al menos una vez cada año"));

    // Half a Freshdesk: the key that is set, where, and the ones missing.
    std::fs::write(&config, "[freshdesk]\nbase_url = \"https://distributor.freshdesk.com\"\n").unwrap();
    let text = with_file("en");
    let set_in = format!("Key freshdesk.base_url, set in {}.", config.display());
    assert!(text.contains(&set_in), "{text}");
    assert!(
        text.contains("It needs freshdesk.api_key and freshdesk.requester_email too, which are not set."),
        "{text}"
    );
    let text = with_file("es");
    assert!(text.contains("Necesita también freshdesk.api_key y freshdesk.requester_email"), "{text}");
}

#[tokio::test]
async fn doctor_checks_what_will_be_used() {
    use crate::harness::{PLATFORM, Recorder, emulator};
    use wiremock::matchers::{basic_auth, header, method, path, query_param};
    use wiremock::{Mock, ResponseTemplate};
    // Discord names its gateway to the good token, and refuses any other.
    let discord = Recorder::start().await;
    let limit = serde_json::json!({ "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 });
    Mock::given(method("GET"))
        .and(path("/api/v10/gateway/bot"))
        .and(header("authorization", "Bot bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({ "url": "wss://gateway.invalid", "shards": 1, "session_start_limit": limit }),
        ))
        .mount(&discord.server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(serde_json::json!({ "message": "401: Unauthorized", "code": 0 })),
        )
        .with_priority(10)
        .mount(&discord.server)
        .await;
    let freshdesk = Recorder::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .and(query_param("per_page", "1"))
        .and(basic_auth("fd-good-key", "X"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&freshdesk.server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"code": "invalid_credentials"})))
        .with_priority(10)
        .mount(&freshdesk.server)
        .await;
    let o = Orglink::new()
        .aws(&emulator().admin(PLATFORM, "orglink-doctor-checks").await)
        .env("ORGLINK_DISCORD_TOKEN", "bot-token")
        .env("ORGLINK_DISCORD_API_BASE_URL", &discord.uri())
        .env("ORGLINK_FRESHDESK_BASE_URL", &freshdesk.uri())
        .env("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@distributor.example");
    drop(o.store());
    let doctor_in = |lang: &str, env: &[(&str, &str)]| o.run_with(env, &["doctor", "--lang", lang]);
    let doctor = |env: &[(&str, &str)]| doctor_in("en", env);
    let good_key = ("ORGLINK_FRESHDESK_API_KEY", "fd-good-key");
    let application = ("ORGLINK_DISCORD_APPLICATION_ID", "800000000000000001");

    // A token without the application ID: command registration would fail.
    let run = doctor(&[good_key]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("❌ Discord application ID: not set, but a bot token is"), "{}", run.stdout);
    assert!(run.stdout.contains("✅ AWS credentials: from environment variables"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("✅ AWS identity: account {PLATFORM}")), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("✅ Freshdesk: {} answers", freshdesk.uri())), "{}", run.stdout);
    // One authenticated read, nothing written.
    let requests = freshdesk.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!((requests[0].method.as_str(), requests[0].url.path()), ("GET", "/api/v2/tickets"));
    assert_eq!(requests[0].url.query(), Some("per_page=1"));

    let run = doctor(&[good_key, application]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("❌"), "{}", run.stdout);
    assert!(run.stdout.contains("transports run: gateway\n"), "{}", run.stdout);
    assert!(run.stdout.contains("✅ Discord token: Discord accepts it"), "{}", run.stdout);

    // A token Discord rejects: a configuration error, named as such.
    let rejected = ("ORGLINK_DISCORD_TOKEN", "revoked-token");
    let run = doctor(&[good_key, application, rejected]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("❌ Discord token: Discord rejected it (401), a configuration error"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("revoked-token"), "{}", run.stdout);
    let run = doctor_in("es", &[good_key, application, rejected]);
    assert!(run.stdout.contains("❌ Token de Discord: Discord lo rechazó (401)"), "{}", run.stdout);
    // The HTTP endpoint alone: the token still goes to Discord (notifications).
    let http_only = [
        good_key,
        application,
        ("ORGLINK_DISCORD_PUBLIC_KEY", "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089"),
        ("ORGLINK_DISCORD_TRANSPORTS", "http"),
    ];
    let run = doctor(&http_only);
    assert!(run.stdout.contains("transports run: http\n"), "{}", run.stdout);
    let asked = discord.requests().await;
    assert!(asked.iter().all(|r| r.url.path() == "/api/v10/gateway/bot"), "one read each time: {asked:?}");

    // A key Freshdesk refuses, and a Freshdesk that cannot be reached.
    let run = doctor(&[("ORGLINK_FRESHDESK_API_KEY", "fd-wrong-key"), application]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("refused the API key (401): check freshdesk.api_key"), "{}", run.stdout);
    assert!(!run.stdout.contains("fd-wrong-key"), "{}", run.stdout);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let closed = format!("http://{closed}");
    let run = doctor(&[good_key, application, ("ORGLINK_FRESHDESK_BASE_URL", &closed)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&format!("❌ Freshdesk: {closed} could not be reached")), "{}", run.stdout);
    let run = doctor_in("es", &[good_key]);
    assert!(run.stdout.contains("❌ ID de aplicación de Discord: sin definir"), "{}", run.stdout);
    assert!(run.stdout.contains("✅ Credenciales de AWS: de variables de entorno"), "{}", run.stdout);
    assert!(run.stdout.contains("responde, y la clave de API lee tickets"), "{}", run.stdout);

    // No credentials anywhere: said once, and STS is not asked.
    let none = Orglink::new().env("AWS_EC2_METADATA_DISABLED", "true").env("AWS_REGION", "us-east-1");
    let run = none
        .run_with(&[("AWS_CONFIG_FILE", "/nonexistent"), ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")], &["doctor"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("❌ AWS credentials: none could be loaded"), "{}", run.stdout);
    assert!(!run.stdout.contains("AWS identity"), "{}", run.stdout);
}

/// `orglink serve` as a service manager runs it: stderr a pipe, outside
/// EC2, where the instance metadata service refuses its token (403).
#[tokio::test]
async fn serve_logs_fit_a_service_no_colour_and_one_line_for_missing_credentials() {
    use crate::harness::Recorder;
    use std::io::BufRead;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let imds = Recorder::start().await;
    Mock::given(method("PUT"))
        .and(path("/latest/api/token"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&imds.server)
        .await;
    let o = Orglink::new();
    let home = o.path("home");
    std::fs::create_dir(&home).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orglink"))
        .arg("--data-dir")
        .arg(o.data_dir())
        .arg("serve")
        // Nothing from the developer's shell: no AWS credentials, no ~/.aws.
        .env_clear()
        .env("HOME", &home)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.uri())
        .env("ORGLINK_DISCORD_PUBLIC_KEY", "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089")
        .env("ORGLINK_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("serving HTTP")) {
        match received.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(line) => log.push(line),
            Err(e) => panic!("serve did not start ({e}): {log:#?}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    log.extend(received.try_iter());
    let text = log.join("\n");
    assert!(imds.requests().await.iter().any(|r| r.method.as_str() == "PUT"), "instance metadata was asked: {text}");
    assert!(!text.contains('\x1b'), "no colour codes in a pipe:\n{text}");
    assert!(!text.contains("FailedToLoadToken") && !text.contains("aws_config"), "no raw SDK warnings:\n{text}");
    let told: Vec<&String> = log.iter().filter(|l| l.contains("AWS credentials could not be loaded")).collect();
    assert_eq!(told.len(), 1, "{text}");
    assert!(told[0].contains("instance metadata (IMDS)") && told[0].contains("IMDS session token"), "{}", told[0]);
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
