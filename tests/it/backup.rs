//! Online backup, restore and the store's check, with the real binary: a
//! backup taken while `orglink serve` holds the store and registrations go
//! on, restored into a new directory that passes `check` and lists what the
//! original lists; the refusals (a directory in use, a file cut short or
//! changed); a planted inconsistency named; scheduled backups kept to
//! `backup.keep`.

use std::path::Path;

use serde_json::Value;

use crate::harness::Orglink;
use crate::harness::discord::{GUILD_A, GUILD_B};
use crate::socket::{OFFLINE, Server, as_user};

fn add(o: &Orglink, env: &[(&str, &str)], id: &str, tenant: &str) {
    let run =
        o.run_with(env, &["account", "add", id, "--tenant", tenant, "--customer", "Acme", "--support", "business"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// `account list --json` of the store in `dir`, every tenant's accounts.
fn list(o: &Orglink, env: &[(&str, &str)], dir: &Path) -> Vec<Value> {
    let run = o.run_bare(env, &["--data-dir", dir.to_str().unwrap(), "account", "list", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    list["accounts"].as_array().unwrap().clone()
}

fn restore(o: &Orglink, env: &[(&str, &str)], file: &Path, dir: &Path) -> crate::harness::Run {
    o.run_bare(env, &["--data-dir", dir.to_str().unwrap(), "restore", file.to_str().unwrap()])
}

fn check(o: &Orglink, env: &[(&str, &str)], dir: &Path) -> crate::harness::Run {
    o.run_bare(env, &["--data-dir", dir.to_str().unwrap(), "check"])
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_into_a_store_that_passes_check() {
    let o = Orglink::new();
    let server = Server::start(&o, &[]).await;
    let env = as_user(OFFLINE);
    for i in 0..5 {
        add(&o, &env, &format!("1000000000{i:02}"), GUILD_A);
    }
    // Registrations go on while the backups are taken.
    let load = {
        let (dir, env) = (o.data_dir(), env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        std::thread::spawn(move || {
            for i in 0..30 {
                let tenant = if i % 2 == 0 { GUILD_A } else { GUILD_B };
                let id = format!("2000000000{i:02}");
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_orglink"))
                    .args(["--data-dir", dir.to_str().unwrap(), "account", "add", &id, "--tenant", tenant])
                    .args(["--customer", "Load", "--support", "basic"])
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
            }
        })
    };
    // A relative path is where the command line runs, not the server.
    let mut under_load = Vec::new();
    for n in 0..3 {
        let name = format!("under-load-{n}.backup");
        let run = o.run_with(&env, &["backup", &name]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.contains("Backup written to"), "{}", run.stdout);
        under_load.push(o.path(&name));
    }
    load.join().unwrap();
    // Checked through the server too.
    let run = o.run_with(&env, &["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("The store is consistent"), "{}", run.stdout);
    let run = o.run_with(&env, &["backup", "after.backup", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let written: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(written["accounts"], 35, "{written}");
    let original = list(&o, &env, &o.data_dir());
    assert_eq!(original.len(), 35);

    use std::os::unix::fs::PermissionsExt;
    for file in under_load.iter().chain([&o.path("after.backup")]) {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file:?}: owner-only");
    }
    // No partial file left beside them.
    let strays: Vec<_> = std::fs::read_dir(o.path("."))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");

    // Each backup taken under load is one moment: it restores, passes
    // check, and holds a part of the original exactly as it is.
    for (n, file) in under_load.iter().enumerate() {
        let dir = o.path(&format!("restored-{n}"));
        let run = restore(&o, &env, file, &dir);
        assert_eq!(run.code, 0, "{run:?}");
        let run = check(&o, &env, &dir);
        assert_eq!(run.code, 0, "{run:?}");
        let restored = list(&o, &env, &dir);
        assert!(restored.len() >= 5, "{restored:?}");
        for account in &restored {
            assert!(original.contains(account), "{account} is not in the original");
        }
    }
    // The one after the load holds all of it.
    let dir = o.path("restored-after");
    let run = restore(&o, &env, &o.path("after.backup"), &dir);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Store restored in"), "{}", run.stdout);
    let run = check(&o, &env, &dir);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("35 accounts"), "{}", run.stdout);
    assert_eq!(list(&o, &env, &dir), original);
    server.stop();
}

#[test]
fn restore_refuses_a_directory_that_is_not_empty_and_changes_nothing() {
    let o = Orglink::new();
    add(&o, &[], "123456789012", GUILD_A);
    assert_eq!(o.run(&["backup", "store.backup"]).code, 0);
    let file = o.path("store.backup");

    let busy = o.path("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    for lang in ["en", "es"] {
        let run =
            o.run_bare(&[], &["--lang", lang, "--data-dir", busy.to_str().unwrap(), "restore", file.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(busy.to_str().unwrap()), "{}", run.stderr);
        let said = if lang == "en" { "is not empty" } else { "no está vacío" };
        assert!(run.stderr.contains(said), "{}", run.stderr);
    }
    let left: Vec<_> = std::fs::read_dir(&busy).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["notes.txt"]);
    assert_eq!(std::fs::read_to_string(busy.join("notes.txt")).unwrap(), "mine");

    // A store, the original's own directory, is not empty either.
    let before = o.store().export().unwrap();
    let run = restore(&o, &[], &file, &o.data_dir());
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(o.store().export().unwrap(), before);
}

#[test]
fn a_backup_cut_short_or_changed_is_refused_and_nothing_is_written() {
    let o = Orglink::new();
    for i in 0..3 {
        add(&o, &[], &format!("12345678901{i}"), GUILD_A);
    }
    assert_eq!(o.run(&["backup", "store.backup"]).code, 0);
    let bytes = std::fs::read(o.path("store.backup")).unwrap();

    let cases: [(&str, Vec<u8>, &str, &str); 5] = [
        ("cut.backup", bytes[..bytes.len() / 2].to_vec(), "cut short", "está incompleta"),
        ("no-checksum.backup", bytes[..bytes.len() - 2].to_vec(), "cut short", "está incompleta"),
        ("header-only.backup", bytes[..10].to_vec(), "cut short", "está incompleta"),
        (
            // A customer's name changed in a record: the layout is intact,
            // the checksum says it is not what was written.
            "changed.backup",
            {
                let mut changed = bytes.clone();
                let at = changed.windows(4).position(|w| w == b"Acme").expect("a customer's name");
                changed[at + 3] = b'f';
                changed
            },
            "damaged",
            "está dañada",
        ),
        ("other.backup", b"account_id,customer\n123456789012,Acme\n".to_vec(), "not an orglink backup", "no es una"),
    ];
    for (name, content, en, es) in cases {
        std::fs::write(o.path(name), content).unwrap();
        for (lang, said) in [("en", en), ("es", es)] {
            let dir = o.path(&format!("restored-{name}"));
            let run = o.run_bare(
                &[],
                &["--lang", lang, "--data-dir", dir.to_str().unwrap(), "restore", o.path(name).to_str().unwrap()],
            );
            assert_eq!(run.code, 2, "{name}: {run:?}");
            assert!(run.stderr.contains(said), "{name}: {}", run.stderr);
            assert!(!dir.exists(), "{name}: nothing is created");
        }
    }
    // The sound one restores.
    let dir = o.path("restored");
    assert_eq!(restore(&o, &[], &o.path("store.backup"), &dir).code, 0);
    assert_eq!(check(&o, &[], &dir).code, 0);
}

#[test]
fn check_names_each_inconsistency_planted_in_the_store() {
    let o = Orglink::new();
    add(&o, &[], "123456789012", GUILD_A);
    add(&o, &[], "210987654321", GUILD_B);
    let run = o.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 accounts, 2 claims"), "{}", run.stdout);
    {
        // Written behind the store's back: an index entry for a claim that
        // does not exist, and a claim's external ID entry taken away.
        // sled refuses another segment size than the store was made with.
        let db = sled::Config::new().path(o.data_dir()).segment_size(2 * 1024 * 1024).open().unwrap();
        let by_tenant = db.open_tree("accounts_by_tenant").unwrap();
        let mut stray = GUILD_B.as_bytes().to_vec();
        stray.push(0);
        stray.extend_from_slice(b"555555555555");
        by_tenant.insert(stray, &[]).unwrap();
        let external_ids = db.open_tree("external_ids").unwrap();
        let (key, value) = external_ids.iter().next().unwrap().unwrap();
        external_ids.remove(&key).unwrap();
        db.flush().unwrap();
        let holder = String::from_utf8_lossy(&value[12..]).into_owned();
        assert!(holder == GUILD_A || holder == GUILD_B);
    }
    let run = o.run(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("2 problems found"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "accounts_by_tenant has an entry for tenant {GUILD_B}'s claim on account 555555555555 that no stored claim has."
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("external_ids lacks the entry of tenant"), "{}", run.stderr);
    // One line each, and in Spanish too.
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("• ")).count(), 2, "{}", run.stderr);
    let run = o.run(&["--lang", "es", "check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("El almacén no es coherente: 2 problemas"), "{}", run.stderr);
    let run = o.run(&["check", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stray_entry", "missing_entry"]);
}

#[test]
fn the_scheduled_backup_writes_a_file_and_keeps_only_backup_keep() {
    let o = Orglink::new();
    add(&o, &[], "123456789012", GUILD_A);
    // Without backup.dir, backups are off, and said to be.
    let run = o.run(&["sweep", "--job", "backup"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("backup.dir"), "{}", run.stderr);

    let dir = o.path("backups");
    std::fs::create_dir(&dir).unwrap();
    for old in ["orglink-20200101T000000Z.backup", "orglink-20210101T000000Z.backup", "notes.txt"] {
        std::fs::write(dir.join(old), "old").unwrap();
    }
    let env = [("ORGLINK_BACKUP_DIR", dir.to_str().unwrap()), ("ORGLINK_BACKUP_KEEP", "2")];
    let run = o.run_with(&env, &["sweep", "--job", "backup"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "notes.txt", "not orglink's: left alone");
    assert_eq!(names[1], "orglink-20210101T000000Z.backup", "the oldest went");
    let new = &names[2];
    assert!(new.starts_with("orglink-20") && new.ends_with("Z.backup") && new.len() == 31, "{new}");
    // It is a backup like any other.
    let restored = o.path("restored");
    assert_eq!(restore(&o, &[], &dir.join(new), &restored).code, 0);
    assert_eq!(check(&o, &[], &restored).code, 0);
}
