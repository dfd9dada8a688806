//! Shared test harness: runs the real `orglink` binary against a temporary
//! data directory and reads the store it leaves behind.

#![allow(dead_code)] // each test binary uses part of it

/// A local AWS (fakecloud) and the customers' side of it.
pub mod aws;
pub mod discord;

use std::path::PathBuf;
use std::process::Command;

use orglink::domain::{Account, AccountId, AccountKind, ExternalId, ExternalIdPrefix, NewAccount, SupportTier};
use orglink::store::{Record, Store};
use time::OffsetDateTime;
use time::macros::datetime;

/// The instant sample accounts are registered at.
pub const REGISTERED_AT: OffsetDateTime = datetime!(2026-11-26 09:30 UTC);

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// An orglink installation: a data directory and the environment it runs in.
pub struct Orglink {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Orglink {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), env: Vec::new() }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `orglink --data-dir <dir> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orglink"));
        command.arg("--data-dir").arg(self.data_dir()).args(args);
        // Only what the test sets: no ORGLINK_* from the developer's shell.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGLINK_")) {
            command.env_remove(key);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let output = command.output().expect("the orglink binary runs");
        Run {
            code: output.status.code().expect("orglink exits normally"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs and expects exit 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "orglink {args:?} failed: {run:?}");
        run.stdout
    }

    /// The store, opened while no orglink process runs.
    pub fn store(&self) -> Store {
        Store::open(&self.data_dir()).expect("the store opens")
    }

    /// Every stored record (empty before the store exists).
    pub fn export(&self) -> Vec<Record> {
        if !self.data_dir().exists() {
            return Vec::new();
        }
        self.store().export().unwrap()
    }

    pub fn account(&self, id: &str) -> Option<Account> {
        self.store().account(id.parse().unwrap()).unwrap()
    }
}

/// What a reseller registers for `id`: customer "Acme", standalone.
pub fn new_account(id: &str, tenant: &str, tier: SupportTier) -> NewAccount {
    NewAccount {
        id: id.parse().unwrap(),
        tenant: tenant.parse().unwrap(),
        customer: "Acme".parse().unwrap(),
        root_email: None,
        support_tier: tier,
        kind: AccountKind::Standalone,
        price_book: None,
    }
}

/// A registered account with pinned values, for snapshots.
pub fn sample_account(id: &str, tier: SupportTier) -> Account {
    let new = NewAccount {
        id: id.parse::<AccountId>().unwrap(),
        tenant: "acme".parse().unwrap(),
        customer: "Acme Corp".parse().unwrap(),
        root_email: Some("aws-root@acme.example".parse().unwrap()),
        support_tier: tier,
        kind: AccountKind::Standalone,
        price_book: None,
    };
    let external_id = ExternalId::from_entropy(&ExternalIdPrefix::default(), [7; 13]);
    Account::register(new, external_id, REGISTERED_AT).unwrap().0
}

/// Registers `id` (tenant acme, Basic support) with a verified role and an
/// open invitation `handshake` sent at `sent`, expiring at `expires`.
pub fn invited(store: &Store, id: &str, handshake: &str, sent: OffsetDateTime, expires: OffsetDateTime) {
    use orglink::domain::{HandshakeState, Invitation, RoleRecord, Transition};
    let app = orglink::app::App::new(
        store.clone(),
        orglink::app::Settings::default(),
        std::sync::Arc::new(orglink::clock::ManualClock::new(sent)),
    );
    app.handle(
        &orglink::app::Actor::operator("test"),
        orglink::app::Command::AddAccount(new_account(id, "acme", SupportTier::Basic)),
    )
    .unwrap();
    store
        .update_account(id.parse().unwrap(), "test", "setup", sent, |a| {
            a.role = Some(RoleRecord {
                arn: format!("arn:aws:iam::{id}:role/R").parse().unwrap(),
                description: None,
                recorded_at: sent,
                verified_at: Some(sent),
                report: None,
            });
            let mut events = a.apply(&Transition::RoleVerified, sent)?;
            let invitation = Invitation {
                handshake_id: handshake.parse().unwrap(),
                state: HandshakeState::Open,
                requested_at: sent,
                expires_at: expires,
                note: None,
                reminded: vec![],
            };
            events.extend(a.invitation_sent(invitation, sent)?);
            Ok::<_, orglink::domain::IllegalTransition>(events)
        })
        .unwrap();
}

/// A report of the role of `account` in which `failed` checks failed with
/// their problems and every other check passed.
pub fn verification_report(
    account: AccountId,
    failed: &[(orglink::domain::CheckName, orglink::domain::Problem)],
) -> orglink::domain::VerificationReport {
    use orglink::domain::{Check, CheckName, Outcome};
    let checks = CheckName::ALL
        .into_iter()
        .map(|name| match failed.iter().find(|(n, _)| *n == name) {
            Some((_, problem)) => Check { name, outcome: Outcome::Failed { problem: problem.clone() } },
            None => Check { name, outcome: Outcome::Passed },
        })
        .collect();
    orglink::domain::VerificationReport {
        account,
        checks,
        detected_kind: Some(AccountKind::Standalone),
        attempts: 1,
        checked_at: REGISTERED_AT,
        duration_ms: 42,
    }
}
