//! Each failure named by its class: orglink's own (it could not ask AWS)
//! changes nothing recorded and exits 1; the user's input exits 2 before
//! AWS is asked; only a refusal while orglink is the platform is the
//! customer's role.

use std::time::Duration;

use orglink::app::{App, AppError, Command, Settings, UserError};
use orglink::aws::RetryPolicy;
use orglink::domain::{LinkState, SupportTier, Unasked};
use serde_json::Value;

use crate::harness::{Harness, Orglink, PLATFORM, emulator, id, operator};

const ACCOUNT: &str = "123456789012";
const ARN: &str = "arn:aws:iam::123456789012:role/OrgLinkReadOnly";

/// An installation whose AWS SDK finds no credentials anywhere, quickly:
/// no environment keys, no profile files, no instance metadata.
fn without_credentials() -> Orglink {
    let o = Orglink::new();
    let missing = o.path("no-such-aws-file").display().to_string();
    o.env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("ORGLINK_AWS_VERIFY_RETRIES", "0")
}

fn checklist(o: &Orglink) -> Vec<(String, String)> {
    let shown: Value = serde_json::from_str(&o.ok(&["account", "show", ACCOUNT, "--json"])).unwrap();
    shown["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["item"].as_str().unwrap().to_owned(), e["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn verify_without_aws_credentials_exits_1_and_ticks_nothing() {
    let o = without_credentials();
    o.ok(&["account", "add", ACCOUNT, "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    let before = o.account(ACCOUNT).unwrap();
    let checklist_before = checklist(&o);

    let run = o.run(&["verify", ACCOUNT, ARN]);
    assert_eq!(run.code, 1, "orglink's problem, not an answer about the role: {run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("orglink could not ask AWS"), "{said}");
    assert!(said.contains("orglink doctor"), "{said}");
    assert!(!said.contains("trust policy"), "nothing blames the customer's role: {said}");

    let after = o.account(ACCOUNT).unwrap();
    assert_eq!(after, before, "nothing about the role is recorded");
    assert!(after.role.is_none());
    assert_eq!(checklist(&o), checklist_before);
    let role_created = checklist(&o).into_iter().find(|(item, _)| item == "role_created").unwrap();
    assert_eq!(role_created.1, "pending", "the role is not ticked as created");

    let run = o.run(&["verify", ACCOUNT, ARN, "--lang", "es"]);
    assert_eq!(run.code, 1);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("orglink no pudo consultar a AWS"), "{run:?}");
}

#[test]
fn a_role_arn_in_another_partition_is_refused_as_input_before_aws_is_asked() {
    // No credentials: had AWS been asked, the exit would be 1.
    let o = without_credentials();
    o.ok(&["account", "add", ACCOUNT, "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    let run = o.run(&["verify", ACCOUNT, "arn:aws-cn:iam::123456789012:role/OrgLinkReadOnly"]);
    assert_eq!(run.code, 2, "{run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("partition aws-cn") && said.contains("accounts in aws:"), "{said}");
    assert!(o.account(ACCOUNT).unwrap().role.is_none());
}

#[test]
fn a_probe_run_that_cannot_ask_aws_fails_with_its_cause() {
    let o = without_credentials();
    o.ok(&["account", "add", ACCOUNT, "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    // The account's first probe is due now.
    let now = time::OffsetDateTime::now_utc();
    crate::harness::change(&o.store(), ACCOUNT, "test", now, |a| {
        a.probe.as_mut().expect("probing from registration").next_at = Some(now - time::Duration::minutes(1));
        Ok::<_, ()>(vec![])
    });
    let before = o.account(ACCOUNT).unwrap();
    let run = o.run(&["sweep", "--job", "probe_roles"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("probe_roles failed: orglink could not ask AWS"), "{run:?}");
    assert!(!run.stdout.contains("AssumeRole ceiling"), "{run:?}");
    assert_eq!(o.account(ACCOUNT).unwrap(), before, "nothing recorded");
}

/// An already verified account, checked again while orglink runs as
/// another AWS account than the platform: orglink's problem, said so, and
/// the account stays verified.
#[tokio::test]
async fn a_refusal_under_the_wrong_identity_is_orglinks_problem_and_changes_nothing() {
    let h = Harness::new().aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) }).start().await;
    h.verified("111100000021", SupportTier::Developer).await;
    let arn = h.account("111100000021").role.unwrap().arn.to_string();
    let before = h.account("111100000021");
    let outbox = h.outbox().len();

    let keys = emulator().admin("333300000021", "not-the-platform").await;
    let elsewhere = App::new(
        h.store().clone(),
        Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() },
        h.shared_clock(),
    )
    .with_aws(orglink::aws::Aws::new(
        emulator().sdk_config(&keys),
        RetryPolicy { retries: 0, first_delay: Duration::ZERO },
    ));
    let command =
        Command::VerifyRole { account: id("111100000021"), arn: Some(arn.parse().unwrap()), description: None };
    for _ in 0..2 {
        let err = elsewhere.execute(&operator(), command.clone()).await.unwrap_err();
        let AppError::User(UserError::CouldNotAskAws { cause }) = &err else { panic!("{err:?}") };
        assert_eq!(cause, &Unasked::OwnIdentity { own: "333300000021".into(), expected: PLATFORM.parse().unwrap() });
        assert!(matches!(err, AppError::User(ref e) if e.ours()));
    }
    let after = h.account("111100000021");
    assert_eq!(after.state, LinkState::RoleVerified);
    assert_eq!(after, before);
    assert_eq!(h.outbox().len(), outbox, "nobody is told anything");
    h.finish().await;
}
