//! Every message in both languages: same files, same variables, snapshots,
//! and the generated CloudFormation template and CLI commands checked by
//! parsing them.

use crate::harness;

use orglink::app::{
    AccountSummary, AccountView, Action, InstructionsView, ListView, Message, Permission, TenantSettingsView, UserError,
};
use orglink::app::{InviteRefusedView, InvitedView, VerificationView};
use orglink::domain::Lang;
use orglink::domain::quota::Quota;
use orglink::domain::{
    AccountId, BlockReason, LinkState, ParseError, PriceBookChoice, RoleArnProblem, RoleRecord, SupportPlanGroup,
    SupportTier, TextProblem,
};
use orglink::domain::{
    AccountKind, AwsSupportTier, Check, CheckName, Outcome, Partition, Problem, TenantSettings, TierNotChecked,
    Unasked, VerificationReport,
};
use orglink::templates::{self, Templates};
use serde_json::Value;

fn cross_account() -> AccountId {
    "328676173091".parse().unwrap()
}

fn instructions(tier: SupportTier) -> InstructionsView {
    instructions_in(tier, Partition::Aws)
}

fn instructions_in(tier: SupportTier, partition: Partition) -> InstructionsView {
    let settings = orglink::app::Settings { cross_account_id: cross_account(), partition, ..Default::default() };
    InstructionsView::new(&harness::sample_account("123456789012", tier), &settings)
}

/// What the instructions must create for each tier in each partition,
/// written out: the role's ARN, the principal its trust policy names, and the
/// managed policies attached (ReadOnlyAccess always; AWSSupportAccess for
/// Business Support, whose tickets the distributor handles).
struct Expected {
    tier: SupportTier,
    partition: Partition,
    role_arn: &'static str,
    principal: &'static str,
    policies: &'static [&'static str],
}

const EXPECTED: [Expected; 9] = [
    Expected {
        tier: SupportTier::Business,
        partition: Partition::Aws,
        role_arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws:iam::328676173091:root",
        policies: &["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AWSSupportAccess"],
    },
    Expected {
        tier: SupportTier::Developer,
        partition: Partition::Aws,
        role_arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws:iam::328676173091:root",
        policies: &["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    },
    Expected {
        tier: SupportTier::Basic,
        partition: Partition::Aws,
        role_arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws:iam::328676173091:root",
        policies: &["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    },
    Expected {
        tier: SupportTier::Business,
        partition: Partition::AwsCn,
        role_arn: "arn:aws-cn:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-cn:iam::328676173091:root",
        policies: &["arn:aws-cn:iam::aws:policy/ReadOnlyAccess", "arn:aws-cn:iam::aws:policy/AWSSupportAccess"],
    },
    Expected {
        tier: SupportTier::Developer,
        partition: Partition::AwsCn,
        role_arn: "arn:aws-cn:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-cn:iam::328676173091:root",
        policies: &["arn:aws-cn:iam::aws:policy/ReadOnlyAccess"],
    },
    Expected {
        tier: SupportTier::Basic,
        partition: Partition::AwsCn,
        role_arn: "arn:aws-cn:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-cn:iam::328676173091:root",
        policies: &["arn:aws-cn:iam::aws:policy/ReadOnlyAccess"],
    },
    Expected {
        tier: SupportTier::Business,
        partition: Partition::AwsUsGov,
        role_arn: "arn:aws-us-gov:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-us-gov:iam::328676173091:root",
        policies: &["arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess", "arn:aws-us-gov:iam::aws:policy/AWSSupportAccess"],
    },
    Expected {
        tier: SupportTier::Developer,
        partition: Partition::AwsUsGov,
        role_arn: "arn:aws-us-gov:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-us-gov:iam::328676173091:root",
        policies: &["arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess"],
    },
    Expected {
        tier: SupportTier::Basic,
        partition: Partition::AwsUsGov,
        role_arn: "arn:aws-us-gov:iam::123456789012:role/OrgLinkReadOnly",
        principal: "arn:aws-us-gov:iam::328676173091:root",
        policies: &["arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess"],
    },
];

/// The table covers every tier in every partition: a new tier or partition
/// fails here until its row is written.
#[test]
fn the_expected_roles_cover_every_tier_and_partition() {
    for tier in SupportTier::ALL {
        for partition in [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov] {
            let rows = EXPECTED.iter().filter(|e| e.tier == tier && e.partition == partition).count();
            assert_eq!(rows, 1, "{tier:?} in {partition:?}");
        }
    }
    // A partition with no row would not compile here.
    for e in &EXPECTED {
        match e.partition {
            Partition::Aws | Partition::AwsCn | Partition::AwsUsGov => {}
        }
    }
}

/// As Discord shows it: the snapshots keep the Markdown.
fn render(message: &Message, lang: Lang) -> String {
    render_on(&Templates::embedded().for_discord(), message, lang)
}

fn render_on(templates: &Templates, message: &Message, lang: Lang) -> String {
    message.render(templates, lang).unwrap_or_else(|e| panic!("{message:?} in {lang}: {e:#}")).text
}

#[test]
fn both_languages_have_the_same_templates_with_the_same_variables() {
    let en = templates::names(Lang::En);
    let es = templates::names(Lang::Es);
    assert_eq!(en, es);
    assert!(en.len() >= 15, "{en:?}");
    let t = Templates::embedded();
    for name in en {
        assert_eq!(t.variables(Lang::En, name).unwrap(), t.variables(Lang::Es, name).unwrap(), "{name}");
    }
}

/// One message of every kind, with every variation a template branches on.
fn every_message() -> Vec<(String, Message)> {
    let mut messages = Vec::new();
    let mut add = |name: &str, m: Message| messages.push((name.to_owned(), m));
    let business = harness::sample_account("123456789012", SupportTier::Business);
    let mut member = harness::sample_account("000000000042", SupportTier::Developer);
    member.kind = orglink::domain::AccountKind::Member;
    member.root_email = None;

    add("registered", Message::Registered(business.clone().into()));
    add("member_account_warning", Message::MemberAccountWarning(member.clone().into()));
    add("instructions_business", Message::Instructions(instructions(SupportTier::Business)));
    add("instructions_basic", Message::Instructions(instructions(SupportTier::Basic)));
    add("cloudformation_business", Message::CloudFormation(instructions(SupportTier::Business)));
    add("aws_cli_basic", Message::AwsCli(instructions(SupportTier::Basic)));
    add("terraform_business", Message::Terraform(instructions(SupportTier::Business)));
    add("status_new", Message::Status(business.clone().into()));

    let mut linked = business.clone();
    linked.role = Some(RoleRecord {
        arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly".parse().unwrap(),
        description: None,
        recorded_at: harness::REGISTERED_AT,
        verified_at: Some(harness::REGISTERED_AT + time::Duration::hours(2)),
        report: None,
    });
    linked.state = LinkState::Linked;
    linked.support_plan_group = Some(SupportPlanGroup::Passthrough);
    linked.price_book = Some(PriceBookChoice::Custom("Partner EMEA".parse().unwrap()));
    add("status_linked_mismatch", Message::Status(linked.clone().into()));
    // What AWS says of the support tier: a Developer registration AWS
    // answers as Business or higher, linked with Passthrough; and a Support
    // API that did not answer (the declared tier stands).
    let mut told = linked.clone();
    told.support_tier = SupportTier::Developer;
    told.role.as_mut().unwrap().report = Some(VerificationReport {
        support_tier: AwsSupportTier::BusinessOrHigher,
        ..harness::verification_report(told.id, &[])
    });
    add("status_tier_mismatch", Message::Status(told.clone().into()));
    add("support_plan_set_tier_mismatch", Message::SupportPlanSet(told.clone().into()));
    let mut unanswered = linked.clone();
    unanswered.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
    unanswered.role.as_mut().unwrap().report = Some(VerificationReport {
        support_tier: AwsSupportTier::not_checked(TierNotChecked::Unavailable {
            detail: "dispatch failure: io error: connection refused".into(),
        }),
        ..harness::verification_report(unanswered.id, &[])
    });
    add("status_tier_unavailable", Message::Status(unanswered.into()));
    // A role whose last check failed, an opened ticket and one waiting.
    let mut helped = business.clone();
    helped.role = Some(RoleRecord {
        arn: "arn:aws:iam::123456789012:role/OrgLinkReadOnly".parse().unwrap(),
        description: None,
        recorded_at: harness::REGISTERED_AT,
        verified_at: None,
        report: Some(harness::verification_report(
            helped.id,
            &[(orglink::domain::CheckName::AssumeRole, orglink::domain::Problem::AccessDenied)],
        )),
    });
    helped.tickets.push(orglink::domain::TicketRecord {
        key: "k".into(),
        id: 4242,
        url: "https://desk.example/a/tickets/4242".into(),
        kind: "requested".into(),
        opened_at: harness::REGISTERED_AT + time::Duration::hours(1),
    });
    let mut view = orglink::app::AccountView::from(helped);
    view.pending_tickets.push(orglink::app::PendingTicket { requested_at: harness::REGISTERED_AT });
    add("status_tickets_failed_check", Message::Status(view));
    add("support_plan_set_mismatch", Message::SupportPlanSet(linked.clone().into()));
    linked.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
    add("support_plan_set_matching", Message::SupportPlanSet(linked.clone().into()));
    let mut default_book = member.clone();
    default_book.price_book = Some(PriceBookChoice::Default);
    add("price_book_set_default", Message::PriceBookSet(default_book.into()));
    add("price_book_set_custom", Message::PriceBookSet(linked.clone().into()));
    add("external_id_rotated", Message::ExternalIdRotated(business.clone().into()));
    add(
        "list_tenant",
        Message::List(ListView {
            tenant: Some("acme".into()),
            filtered: false,
            accounts: vec![AccountSummary::from(&business), AccountSummary::from(&linked)],
        }),
    );
    let all = ListView { tenant: None, filtered: false, accounts: vec![AccountSummary::from(&member)] };
    add("list_all", Message::List(all.clone()));
    add("list_csv", Message::ListCsv(all));
    add("list_empty", Message::List(ListView { tenant: Some("acme".into()), filtered: false, accounts: vec![] }));
    add("list_none_match", Message::List(ListView { tenant: Some("acme".into()), filtered: true, accounts: vec![] }));

    let account: AccountId = "123456789012".parse().unwrap();
    add("error_account_not_found", Message::Error(UserError::AccountNotFound { account }));
    add("error_already_registered", Message::Error(UserError::AlreadyRegistered { account }));
    add("error_linked_elsewhere", Message::Error(UserError::LinkedElsewhere { account }));
    add("error_too_many_claims", Message::Error(UserError::TooManyClaims { account, max: 5 }));
    add("error_ambiguous_claim", Message::Error(UserError::AmbiguousClaim { account, claims: 2 }));
    add("error_no_claim_trusted", Message::Error(UserError::NoClaimTrusted { account, claims: 3 }));
    add("error_management_account", Message::Error(UserError::ManagementAccount { account }));
    add(
        "error_not_now",
        Message::Error(UserError::NotNow { account, state: LinkState::Invited, action: Action::RotateExternalId }),
    );
    add("error_internal", Message::Internal);
    add(
        "error_arn_account_mismatch",
        Message::Error(UserError::ArnAccountMismatch { account, arn_account: "210987654321".parse().unwrap() }),
    );
    add(
        "error_partition_mismatch",
        Message::Error(UserError::PartitionMismatch { partition: Partition::Aws, arn_partition: Partition::AwsCn }),
    );
    add(
        "error_could_not_ask_aws_unavailable",
        Message::Error(UserError::CouldNotAskAws {
            cause: Unasked::Unavailable { detail: "dispatch failure: no credentials".into() },
        }),
    );
    add(
        "error_could_not_ask_aws_own_identity",
        Message::Error(UserError::CouldNotAskAws {
            cause: Unasked::OwnIdentity { own: "333300000001".into(), expected: account },
        }),
    );
    add(
        "error_not_allowed_no_role",
        Message::Error(UserError::NotAllowed { permission: Permission::AccountRole, role: None }),
    );
    add(
        "error_not_allowed_role",
        Message::Error(UserError::NotAllowed {
            permission: Permission::AccountRole,
            role: Some("910000000000000001".parse().unwrap()),
        }),
    );
    add(
        "error_not_allowed_manage",
        Message::Error(UserError::NotAllowed { permission: Permission::ManageServer, role: None }),
    );
    add("error_not_allowed_ops", Message::Error(UserError::NotAllowed { permission: Permission::Ops, role: None }));
    add("error_direct_message", Message::Error(UserError::DirectMessage));
    add("error_unknown_interaction", Message::Error(UserError::UnknownInteraction));
    add(
        "error_not_now_record_role",
        Message::Error(UserError::NotNow { account, state: LinkState::Linked, action: Action::RecordRole }),
    );
    add("later", Message::Later(business.clone().into()));
    add(
        "error_transfer_target_has_claim",
        Message::Error(UserError::TransferTargetHasClaim { account, to: "900000000000000002".parse().unwrap() }),
    );
    add("error_nothing_to_change", Message::Error(UserError::NothingToChange { account }));
    add(
        "error_not_now_remove",
        Message::Error(UserError::NotNow { account, state: LinkState::Linked, action: Action::Remove }),
    );
    add(
        "error_not_now_edit",
        Message::Error(UserError::NotNow { account, state: LinkState::Invited, action: Action::Edit }),
    );
    let corrected =
        |correction, fields: &[&str], from: Option<&str>, reason: Option<&str>, account: &orglink::domain::Account| {
            Message::Corrected(orglink::app::CorrectionView {
                account: account.clone().into(),
                correction,
                fields: fields.iter().map(|f| f.to_string()).collect(),
                from: from.map(str::to_owned),
                reason: reason.map(str::to_owned),
            })
        };
    add("corrected_removed", corrected("removed", &[], None, Some("Typo in the account ID"), &business));
    add(
        "corrected_transferred",
        corrected("transferred", &[], Some("900000000000000001"), Some("Moved to its reseller"), &business),
    );
    add(
        "corrected_edited_mismatch",
        corrected("edited", &["support_tier"], None, None, &{
            let mut l = linked.clone();
            l.support_tier = SupportTier::Business;
            l.support_plan_group = Some(SupportPlanGroup::Passthrough);
            l
        }),
    );
    let entry =
        |minutes: i64, actor: &str, action: &str, tenant: Option<&str>, events: &[&str], reason: Option<&str>| {
            let at = harness::REGISTERED_AT + time::Duration::minutes(minutes);
            orglink::app::HistoryEntry {
                at,
                actor: actor.into(),
                action: action.into(),
                tenant: tenant.map(str::to_owned),
                events: events.iter().map(|e| e.to_string()).collect(),
                reason: reason.map(str::to_owned),
            }
        };
    add(
        "history_ops",
        Message::History(orglink::app::HistoryView {
            account_id: account,
            for_ops: true,
            entries: vec![
                entry(
                    0,
                    "discord:700000000000000001",
                    "account_add",
                    Some("900000000000000001"),
                    &["account_registered"],
                    None,
                ),
                entry(
                    90,
                    "cli:ops",
                    "account_transfer",
                    Some("900000000000000002"),
                    &["claim_transferred_in"],
                    Some("Moved to its reseller"),
                ),
            ],
        }),
    );
    let check = |name, outcome| Check { name, outcome };
    let report_told = |checks: Vec<Check>, kind, support_tier| VerificationReport {
        account,
        checks,
        detected_kind: kind,
        attempts: 1,
        checked_at: harness::REGISTERED_AT,
        duration_ms: 42,
        support_tier,
    };
    // What AWS says of the support tier follows from the checks: asked
    // when the role has AWSSupportAccess and its credentials are the
    // account's; the declared tier is Business.
    let report = |checks: Vec<Check>, kind| {
        let outcome = |name| checks.iter().find(|c: &&Check| c.name == name).map(|c| c.outcome.clone());
        let tier = match (outcome(CheckName::CallerIdentity), outcome(CheckName::SupportAccess)) {
            (Some(Outcome::Passed), Some(Outcome::Passed)) => AwsSupportTier::BusinessOrHigher,
            (Some(Outcome::Passed), _) => AwsSupportTier::not_checked(TierNotChecked::NoSupportAccess),
            _ => AwsSupportTier::not_checked(TierNotChecked::RoleNotChecked),
        };
        report_told(checks, kind, tier)
    };
    let passed = |support| {
        vec![
            check(CheckName::AssumeRole, Outcome::Passed),
            check(CheckName::CallerIdentity, Outcome::Passed),
            check(CheckName::ExternalIdRequired, Outcome::Passed),
            check(CheckName::ReadOnlyAccess, Outcome::Passed),
            check(CheckName::SupportAccess, support),
            check(CheckName::Organization, Outcome::Passed),
        ]
    };
    let mut with_role = business.clone();
    with_role.role = linked.role.clone();
    with_role.state = LinkState::RoleVerified;
    let settings = orglink::app::Settings::default();
    let verification = |account: &orglink::domain::Account, r| {
        Message::Verification(Box::new(VerificationView::new(account.clone(), r, &settings)))
    };
    add(
        "verification_verified",
        verification(&with_role, report(passed(Outcome::Passed), Some(AccountKind::Standalone))),
    );
    let mut warned = passed(Outcome::Warning { problem: Problem::PolicyMissing });
    warned[5].outcome = Outcome::Warning { problem: Problem::MemberOfAnotherOrganization };
    add("verification_member_warning", verification(&with_role, report(warned, Some(AccountKind::Member))));
    let mut denied = vec![check(CheckName::AssumeRole, Outcome::Failed { problem: Problem::AccessDenied })];
    denied.extend(CheckName::ALL[1..].iter().map(|n| check(*n, Outcome::Skipped)));
    let mut registered = with_role.clone();
    registered.state = LinkState::Registered;
    add("verification_no_access", verification(&registered, report(denied, None)));
    // A role any caller may assume is used for nothing else: the other
    // checks are skipped and nothing is learned of the account.
    let guard_failed = |problem| {
        let mut checks = vec![check(CheckName::AssumeRole, Outcome::Passed)];
        checks.extend(CheckName::ALL[1..].iter().map(|n| check(*n, Outcome::Skipped)));
        checks[2].outcome = Outcome::Failed { problem };
        checks
    };
    let open = guard_failed(Problem::ExternalIdNotRequired);
    add("verification_open_trust", verification(&registered, report(open, None)));
    let any = guard_failed(Problem::AnyExternalIdAccepted);
    add("verification_any_external_id", verification(&registered, report(any, None)));
    let mut wrong_account = passed(Outcome::NotApplicable);
    wrong_account[3].outcome = Outcome::Failed { problem: Problem::PolicyMissing };
    wrong_account[1].outcome = Outcome::Failed { problem: Problem::WrongAccount { reported: "210987654321".into() } };
    add("verification_wrong_account", verification(&registered, report(wrong_account, Some(AccountKind::Standalone))));
    let mut management = passed(Outcome::NotApplicable);
    management[5].outcome = Outcome::Failed { problem: Problem::ManagementAccount };
    add("verification_management", verification(&registered, report(management, Some(AccountKind::Management))));
    let mut unavailable = passed(Outcome::NotApplicable);
    unavailable[5].outcome = Outcome::Failed { problem: Problem::Unavailable { detail: "service unavailable".into() } };
    unavailable[3].outcome = Outcome::Failed { problem: Problem::AccessDenied };
    add("verification_unavailable", verification(&registered, report(unavailable, None)));
    // The support tier AWS says, on a role with AWSSupportAccess.
    let told = |account: &orglink::domain::Account, checks: Vec<Check>, tier| {
        let report = report_told(checks, Some(AccountKind::Standalone), tier);
        let mut account = account.clone();
        account.role.as_mut().unwrap().report = Some(report.clone());
        verification(&account, report)
    };
    add(
        "verification_tier_subscription_required",
        told(&with_role, passed(Outcome::Passed), AwsSupportTier::BasicOrDeveloper),
    );
    add(
        "verification_tier_access_denied",
        told(&with_role, passed(Outcome::Passed), AwsSupportTier::not_checked(TierNotChecked::AccessDenied)),
    );
    let mut developer = with_role.clone();
    developer.support_tier = SupportTier::Developer;
    add(
        "verification_tier_business_answered",
        told(&developer, passed(Outcome::NotApplicable), AwsSupportTier::BusinessOrHigher),
    );
    add("error_no_role_recorded", Message::Error(UserError::NoRoleRecorded { account }));
    let mut invited = with_role.clone();
    invited.state = LinkState::Invited;
    invited.invitation = Some(orglink::domain::Invitation {
        handshake_id: "h-exampleinvite01".parse().unwrap(),
        state: orglink::domain::HandshakeState::Open,
        requested_at: harness::REGISTERED_AT,
        expires_at: harness::REGISTERED_AT + time::Duration::days(15),
        note: None,
        reminded: vec![],
    });
    add("invited", Message::Invited(Box::new(InvitedView { account: invited.clone().into(), adopted: false })));
    add("invited_adopted", Message::Invited(Box::new(InvitedView { account: invited.into(), adopted: true })));
    add("invitation_queued", Message::InvitationQueued(with_role.clone().into()));
    for (name, url, existing) in [
        ("ticket_opened", Some("https://d.freshdesk.com/a/tickets/9"), false),
        ("ticket_existing", Some("https://d.freshdesk.com/a/tickets/9"), true),
        ("ticket_waiting", None, false),
    ] {
        add(name, Message::Ticket(orglink::app::TicketView { account, url: url.map(str::to_owned), existing }));
    }
    for reason in ["ALREADY_IN_AN_ORGANIZATION", "PAYMENT_INSTRUMENT_REQUIRED", "SOMETHING_NEW"] {
        let view = InviteRefusedView { account, reason: reason.into(), detail: None };
        add(&format!("invite_refused_{reason}"), Message::InviteRefused(view));
    }
    let view = InviteRefusedView { account, reason: "unavailable".into(), detail: Some("timeout".into()) };
    add("invite_refused_unavailable", Message::InviteRefused(view));
    for state in LinkState::ALL {
        add(
            &format!("error_cannot_invite_{}", state.code()),
            Message::Error(UserError::CannotInvite { account, state }),
        );
    }
    add(
        "tenant_settings_empty",
        Message::TenantSettings(TenantSettingsView {
            tenant: "900000000000000001".into(),
            settings: Default::default(),
            replayed: 0,
        }),
    );
    add(
        "tenant_settings_full",
        Message::TenantSettings(TenantSettingsView {
            tenant: "900000000000000001".into(),
            settings: TenantSettings {
                channel: Some("900000000000000002".parse().unwrap()),
                language: Some(Lang::Es),
                account_role: Some("910000000000000001".parse().unwrap()),
            },
            replayed: 2,
        }),
    );
    tenant_messages(&mut add);
    // Each quota: which limit, its value, when it resets (none for open
    // claims: when one of them is verified, lapses or is removed).
    for (quota, limit, resets_at) in [
        (Quota::OpenClaims, 200, None),
        (Quota::TicketsPerDay, 20, Some(time::macros::datetime!(2026-12-02 00:00 UTC))),
        (Quota::VerificationsPerMinute, 6, Some(time::macros::datetime!(2026-12-01 12:01:42 UTC))),
    ] {
        add(
            &format!("error_quota_exceeded_{}", quota.code()),
            Message::Error(UserError::QuotaExceeded { quota, limit, resets_at }),
        );
    }
    import_messages(&mut add);
    outbox_messages(&mut add);
    backup_messages(&mut add);
    let invalid = |e: ParseError| Message::Error(UserError::Invalid(e));
    add("error_invalid_account_id", invalid("1234".parse::<AccountId>().unwrap_err()));
    add("error_invalid_empty_account_id", invalid("".parse::<AccountId>().unwrap_err()));
    add("error_invalid_email", invalid("root@".parse::<orglink::domain::Email>().unwrap_err()));
    add("error_invalid_tier", invalid("gold".parse::<SupportTier>().unwrap_err()));
    add(
        "error_invalid_role_arn_user",
        invalid("arn:aws:iam::123456789012:user/alice".parse::<orglink::domain::RoleArn>().unwrap_err()),
    );
    add(
        "error_invalid_customer_line_separator",
        invalid("Acme\u{2028}Transform: x".parse::<orglink::domain::CustomerName>().unwrap_err()),
    );
    add(
        "error_invalid_price_book_bidi",
        invalid("EMEA\u{202e}".parse::<orglink::domain::PriceBookName>().unwrap_err()),
    );
    add(
        "error_invalid_reason_too_long",
        invalid("r".repeat(1001).parse::<orglink::domain::TicketReason>().unwrap_err()),
    );
    messages
}

/// What operations decide about tenants, the list of tenants, and what a
/// tenant that is not served is told.
fn tenant_messages(add: &mut impl FnMut(&str, Message)) {
    use orglink::app::{TenantDecisionView, TenantListView, TenantSummary};
    use orglink::domain::{TenantDecision, TenantState};
    let server = "900000000000000501";
    let decided = |decision, state, changed, by_user: Option<&str>| {
        Message::TenantDecided(TenantDecisionView {
            tenant: server.into(),
            decision,
            state,
            since: harness::REGISTERED_AT,
            changed,
            by_user: by_user.map(|u| u.parse().unwrap()),
        })
    };
    for (decision, state) in [
        (TenantDecision::Approve, TenantState::Approved),
        (TenantDecision::Deny, TenantState::Denied),
        (TenantDecision::Suspend, TenantState::Suspended),
        (TenantDecision::Resume, TenantState::Approved),
    ] {
        add(&format!("tenant_decided_{}", decision.code()), decided(decision, state, true, Some("700000000000000100")));
    }
    add("tenant_decided_by_cli", decided(TenantDecision::Approve, TenantState::Approved, true, None));
    add("tenant_decided_unchanged", decided(TenantDecision::Suspend, TenantState::Suspended, false, None));
    let summary = |tenant: &str, state, accounts, operations| TenantSummary {
        tenant: tenant.into(),
        state,
        since: state.map(|_| harness::REGISTERED_AT),
        accounts,
        operations,
    };
    add(
        "tenant_list",
        Message::TenantList(TenantListView {
            tenants: vec![
                summary("900000000000000100", None, 0, true),
                summary(server, Some(TenantState::Pending), 0, false),
                summary("900000000000000502", Some(TenantState::Approved), 1, false),
                summary("900000000000000503", Some(TenantState::Suspended), 12, false),
                summary("900000000000000504", Some(TenantState::Denied), 0, false),
                summary("acme", None, 2, false),
            ],
        }),
    );
    add("tenant_list_empty", Message::TenantList(TenantListView { tenants: vec![] }));
    {
        use orglink::domain::pipeline::{Pipeline, Waiting};
        let mut verified = harness::sample_account("210987654321", SupportTier::Developer);
        verified.tenant = "globex".parse().unwrap();
        verified.customer = "Globex *Inc*".parse().unwrap();
        verified.state = LinkState::RoleVerified;
        let now = verified.updated_at + time::Duration::days(3);
        let waiting = std::collections::BTreeMap::from([(
            "globex".parse().unwrap(),
            Waiting { tickets_waiting: 1, notifications_pending: 2, notifications_dead: 1 },
        )]);
        let business = harness::sample_account("123456789012", SupportTier::Business);
        let pipeline = Pipeline::of([&business, &verified], &waiting, now, 10);
        let view = |pipeline: Pipeline, page: Option<u32>| orglink::app::PipelineView {
            tenant: None,
            page: page.unwrap_or(0),
            pages: 1,
            first: 1,
            needs_operations: pipeline.overall.needs_operations(),
            pipeline,
        };
        add("pipeline", Message::Pipeline(view(pipeline.clone(), None)));
        add("pipeline_csv", Message::PipelineCsv(view(pipeline, None)));
        let empty = Pipeline::of([], &Default::default(), now, 10);
        add("pipeline_empty", Message::Pipeline(view(empty, Some(0))));
    }
    add("error_tenant_pending", Message::Error(UserError::TenantPending));
    add("error_tenant_denied", Message::Error(UserError::TenantDenied));
    add("error_tenant_suspended", Message::Error(UserError::TenantSuspended));
    for (from, decision) in [
        (None, TenantDecision::Suspend),
        (Some(TenantState::Pending), TenantDecision::Resume),
        (Some(TenantState::Approved), TenantDecision::Deny),
        (Some(TenantState::Suspended), TenantDecision::Approve),
    ] {
        let name = format!("error_tenant_decision_{}_{}", from.map_or("unknown", TenantState::code), decision.code());
        add(&name, Message::Error(UserError::TenantDecision { tenant: server.parse().unwrap(), from, decision }));
    }
    add(
        "error_operations_server",
        Message::Error(UserError::OperationsServer { tenant: "900000000000000100".parse().unwrap() }),
    );
}

/// The outbox and its dead letters, a replay and a drop, and their errors.
fn outbox_messages(add: &mut impl FnMut(&str, Message)) {
    use orglink::app::{OutboxDroppedView, OutboxEntry, OutboxReplayedView, OutboxView};
    use orglink::domain::outbox::{Blocked, OutboxId, Queue};
    use time::macros::datetime;
    let pending = |id: u64, blocked| OutboxEntry {
        id: OutboxId::new(id),
        queue: Queue::Pending,
        event: "account_registered".into(),
        account_id: Some("123456789012".parse().unwrap()),
        tenant: "900000000000000001".into(),
        audience: "tenant",
        queued_at: datetime!(2026-11-26 10:00 UTC),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        blocked,
        dead_at: None,
        reason: None,
    };
    let retried = OutboxEntry {
        attempts: 2,
        next_attempt_at: Some(datetime!(2026-11-26 10:00:06 UTC)),
        last_error: Some("Discord answered 500 *now*".into()),
        ..pending(8, None)
    };
    let tenants_own =
        OutboxEntry { event: "tenant_pending".into(), account_id: None, audience: "ops", ..pending(9, None) };
    let items = vec![
        pending(7, Some(Blocked::NoChannel)),
        retried,
        pending(10, Some(Blocked::TenantSuspended)),
        tenants_own.clone(),
    ];
    add("outbox", Message::Outbox(OutboxView { dead: false, items }));
    add("outbox_empty", Message::Outbox(OutboxView { dead: false, items: vec![] }));
    let dead = |id, reason: &str| OutboxEntry {
        queue: Queue::Dead,
        attempts: 1,
        dead_at: Some(datetime!(2026-11-26 10:05 UTC)),
        reason: Some(reason.into()),
        ..pending(id, None)
    };
    let items =
        vec![dead(3, "no_channel"), dead(4, "channel_not_found"), dead(5, "missing_access"), dead(6, "rejected")];
    add("outbox_dead", Message::Outbox(OutboxView { dead: true, items }));
    add("outbox_dead_empty", Message::Outbox(OutboxView { dead: true, items: vec![] }));
    let replayed =
        |ids: &[u64]| OutboxReplayedView { replayed: ids.iter().map(|i| OutboxId::new(*i)).collect(), all: true };
    add("outbox_replayed_one", Message::OutboxReplayed(replayed(&[3])));
    add("outbox_replayed", Message::OutboxReplayed(replayed(&[3, 4])));
    add("outbox_replayed_none", Message::OutboxReplayed(replayed(&[])));
    let reason = "the reseller *left*".to_owned();
    add(
        "outbox_dropped",
        Message::OutboxDropped(OutboxDroppedView {
            item: dead(4, "channel_not_found"),
            reason: reason.clone(),
            recorded_in: "account",
        }),
    );
    add(
        "outbox_dropped_tenant",
        Message::OutboxDropped(OutboxDroppedView { item: tenants_own, reason, recorded_in: "tenant" }),
    );
    add("error_outbox_item_not_found", Message::Error(UserError::OutboxItemNotFound { id: OutboxId::new(42) }));
    add("error_not_a_dead_letter", Message::Error(UserError::NotADeadLetter { id: OutboxId::new(42) }));
}

/// An import: registered, judged in a dry run, and every kind of row
/// problem.
fn import_messages(add: &mut impl FnMut(&str, Message)) {
    use orglink::app::{ImportView, ImportedAccount};
    use orglink::domain::import::{RowError, RowProblem};
    let account: AccountId = "123456789012".parse().unwrap();
    let rows = |external_id: Option<&str>| {
        vec![ImportedAccount {
            line: 2,
            id: account,
            customer: "Acme *Corp*, Ltd".into(),
            external_id: external_id.map(|e| e.parse().unwrap()),
        }]
    };
    let view = |dry_run, external_id| ImportView {
        tenant: "acme".into(),
        dry_run,
        file: None,
        count: 1,
        accounts: rows(external_id),
    };
    add("imported", Message::Imported(view(false, Some("orglink-0123456789abcdef0123456789"))));
    add("imported_dry_run", Message::Imported(view(true, None)));
    // From Discord: a summary, and the external IDs as a file.
    let mut attached = view(false, Some("orglink-0123456789abcdef0123456789"));
    attached.tenant = "900000000000000001".into();
    attached.file = Some(orglink::app::IMPORTED_IDS_FILE.into());
    attached.accounts[0].customer = "=HYPERLINK(\"https://evil.example\"), @everyone".into();
    add("imported_summary", Message::Imported(attached.clone()));
    add("imported_ids", Message::ImportedIds(attached));
    use orglink::app::Unfetched;
    let max = orglink::discord::attachments::MAX_BYTES;
    add("error_attachment_too_large", Message::Error(UserError::AttachmentTooLarge { size: Some(max + 1), max }));
    add("error_attachment_too_large_read", Message::Error(UserError::AttachmentTooLarge { size: None, max }));
    add("error_attachment_not_from_chat", Message::Error(UserError::AttachmentNotFromChat));
    for (name, cause) in [
        ("status", Unfetched::Status(503)),
        ("timed_out", Unfetched::TimedOut),
        ("unreachable", Unfetched::Unreachable),
    ] {
        add(
            &format!("error_attachment_unavailable_{name}"),
            Message::Error(UserError::AttachmentUnavailable { cause }),
        );
    }
    add("error_import_too_large", Message::Error(UserError::ImportTooLarge { rows: 1001, max: 1000 }));
    add("error_import_over_quota", Message::Error(UserError::ImportOverQuota { rows: 40, open: 190, limit: 200 }));
    add("error_import_over_quota_full", Message::Error(UserError::ImportOverQuota { rows: 1, open: 200, limit: 200 }));
    use orglink::app::{ExportRow, ExportView};
    let row = ExportRow {
        id: account,
        customer: "Acme, \"the\" Corp".into(),
        tenant: "acme".into(),
        state: orglink::domain::LinkState::Registered,
        external_id: "orglink-0123456789abcdef0123456789".parse().unwrap(),
        role_name: "OrgLinkReadOnly".parse().unwrap(),
        trusted_account_id: "210987654321".parse().unwrap(),
    };
    add("export", Message::Export(ExportView { tenant: Some("acme".into()), accounts: vec![row] }));
    let errors = [
        RowError::Invalid("gold".parse::<SupportTier>().unwrap_err()),
        RowError::Invalid("A\u{2028}B".parse::<orglink::domain::CustomerName>().unwrap_err()),
        RowError::Header { column: "name".into() },
        RowError::Fields { expected: 6, found: 7 },
        RowError::Unclosed,
        RowError::Empty,
        RowError::Duplicate { account, first_line: 2 },
        RowError::AlreadyRegistered { account },
        RowError::LinkedElsewhere { account },
        RowError::TooManyClaims { account, max: 5 },
        RowError::ManagementAccount { account },
    ];
    let problems = errors.into_iter().enumerate().map(|(i, error)| RowProblem { line: i + 2, error }).collect();
    add("error_import_rejected", Message::Error(UserError::ImportRejected { problems }));
}

fn backup_messages(add: &mut impl FnMut(&str, Message)) {
    use orglink::app::BackupView;
    use orglink::store::backup::Unusable;
    use orglink::store::check::{Checked, Finding, Index, Report};
    let view = BackupView {
        file: "/var/backups/orglink/orglink-20261201T030000Z.backup".into(),
        data_dir: Some("/var/lib/orglink-restored".into()),
        schema_version: 4,
        created_at: time::macros::datetime!(2026-12-01 03:00:00 UTC),
        accounts: 1200,
        records: 9000,
        bytes: 2_400_000,
    };
    add("backup_written", Message::BackupWritten(BackupView { data_dir: None, ..view.clone() }));
    add("restored", Message::Restored(view));
    let checked = Checked {
        schema_version: Some(4),
        accounts: 1200,
        claims: 1210,
        index_entries: 5000,
        outbox_items: 3,
        ticket_requests: 1,
    };
    add("checked_clean", Message::Checked(Report { checked: checked.clone(), findings: vec![] }));
    let (account, tenant) = ("123456789012".to_owned(), "900000000000000001".to_owned());
    let findings = vec![
        Finding::SchemaVersion { found: None, readable: 4 },
        Finding::Unreadable { tree: "outbox", key: "0000000000000007".into() },
        Finding::Misplaced { key: "210987654321".into(), account: account.clone(), tenant: tenant.clone() },
        Finding::DuplicateClaim { account: account.clone(), tenant: tenant.clone() },
        Finding::StrayEntry {
            index: Index::Due,
            account: Some(account.clone()),
            tenant: Some(tenant.clone()),
            job: Some("probe".into()),
        },
        Finding::StrayEntry { index: Index::ExternalIds, account: None, tenant: None, job: None },
        Finding::MissingEntry { index: Index::ByTenant, account: account.clone(), tenant: tenant.clone(), job: None },
        Finding::SharedExternalId {
            account: account.clone(),
            tenant: tenant.clone(),
            other_account: "210987654321".into(),
            other_tenant: "900000000000000501".into(),
        },
        Finding::OrphanNotice { id: 7, account: account.clone() },
        Finding::OrphanTicketRequest { account, tenant },
    ];
    add("checked_findings", Message::Checked(Report { checked, findings }));
    let file = "/tmp/store.backup".to_owned();
    for (name, problem) in [
        ("not_a_backup", Unusable::NotABackup),
        ("truncated", Unusable::Truncated),
        ("damaged", Unusable::Damaged),
        ("newer_format", Unusable::NewerFormat { found: 2 }),
        ("unknown_schema", Unusable::UnknownSchema { found: 9, readable: 4 }),
    ] {
        add(&format!("error_backup_{name}"), Message::Error(UserError::BackupUnusable { file: file.clone(), problem }));
    }
    add("error_restore_not_empty", Message::Error(UserError::RestoreNotEmpty { data_dir: "/var/lib/orglink".into() }));
    add("error_backups_off", Message::Error(UserError::BackupsOff));
    add("error_no_template_url", Message::Error(UserError::NoTemplateUrl));
    add("instructions_quick_create", Message::Instructions(quick_create(SupportTier::Business)));
    add("launch_link", Message::LaunchLink(quick_create(SupportTier::Basic)));
    // Without zero-paste probing the owner sends the ARN: to whom, and how.
    let mut no_probe = quick_create(SupportTier::Business);
    no_probe.probing = false;
    add("instructions_quick_create_no_probe", Message::Instructions(no_probe.clone()));
    add("cloudformation_no_probe", Message::CloudFormation(no_probe));
}

/// The instructions with a published template configured: the quick-create
/// link first.
fn quick_create(tier: SupportTier) -> InstructionsView {
    let settings = orglink::app::Settings {
        cross_account_id: cross_account(),
        template: Some(orglink::domain::quick_create::TemplateLocation {
            template_url: "https://templates.s3.us-east-1.amazonaws.com/orglink/role-template.yaml".into(),
            console_region: "eu-west-1".into(),
        }),
        ..Default::default()
    };
    InstructionsView::new(&harness::sample_account("123456789012", tier), &settings)
}

#[test]
fn every_message_in_both_languages() {
    for (name, message) in every_message() {
        for lang in Lang::ALL {
            let text = render(&message, lang);
            assert!(!text.contains("{{") && !text.contains("{%"), "{name} {lang}: {text}");
            insta::assert_snapshot!(format!("{name}.{lang}"), text);
        }
    }
}

/// A terminal gets every message without Discord's Markdown: no bold
/// markers, no backticks, no fences, no data markers; and where the reader
/// differs, the operator's wording.
#[test]
fn every_message_reads_plain_on_a_terminal() {
    let terminal = Templates::embedded().for_terminal(false);
    for (name, message) in every_message() {
        for lang in Lang::ALL {
            let text = render_on(&terminal, &message, lang);
            for marker in ["**", "`", "\u{FDD0}", "\u{FDD1}", "\x1b"] {
                assert!(!text.contains(marker), "{name} {lang} shows {marker:?} on a terminal:\n{text}");
            }
            let bold = render_on(&Templates::embedded().for_terminal(true), &message, lang);
            assert_eq!(bold.replace("\x1b[1m", "").replace("\x1b[22m", ""), text, "{name} {lang}");
            // An account's external ID is for the operator at the terminal.
            if let Message::Status(view) = &message {
                let external_id = view.account.external_id.as_str();
                assert!(text.contains(external_id), "{name} {lang}: {text}");
                assert!(!render(&message, lang).contains(external_id), "{name} {lang} on Discord");
            }
        }
    }
}

/// The sample of `ParseError` after `error` (of input `x`), `None` after the
/// last: every variant once, in declaration order. The match has no
/// wildcard, so a new variant does not compile until it is sampled here.
fn next_parse_error(error: Option<&ParseError>) -> Option<ParseError> {
    let input = "x".to_owned();
    let first_problem = RoleArnProblem::ALL[0];
    let text_problem = TextProblem::Character { character: '\u{2028}', position: 5 };
    Some(match error {
        None => ParseError::AccountId { input },
        Some(ParseError::AccountId { .. }) => ParseError::Email { input },
        Some(ParseError::Email { .. }) => ParseError::RoleArn { input, problem: first_problem },
        Some(ParseError::RoleArn { problem, .. }) => {
            // Every problem of a role ARN, then the next variant.
            match RoleArnProblem::ALL.iter().position(|p| p == problem).and_then(|i| RoleArnProblem::ALL.get(i + 1)) {
                Some(problem) => ParseError::RoleArn { input, problem: *problem },
                None => ParseError::ExternalId { input },
            }
        }
        Some(ParseError::ExternalId { .. }) => ParseError::ExternalIdPrefix { input },
        Some(ParseError::ExternalIdPrefix { .. }) => ParseError::RoleName { input },
        Some(ParseError::RoleName { .. }) => ParseError::TenantId { input },
        Some(ParseError::TenantId { .. }) => ParseError::CustomerName { input, problem: text_problem },
        Some(ParseError::CustomerName { .. }) => ParseError::PriceBookName { input, problem: text_problem },
        Some(ParseError::PriceBookName { .. }) => ParseError::SupportTier { input },
        Some(ParseError::SupportTier { .. }) => ParseError::SupportPlanGroup { input },
        Some(ParseError::SupportPlanGroup { .. }) => ParseError::AccountKind { input },
        Some(ParseError::AccountKind { .. }) => ParseError::Lang { input },
        Some(ParseError::Lang { .. }) => ParseError::Format { input },
        Some(ParseError::Format { .. }) => ParseError::Bucket { input },
        Some(ParseError::Bucket { .. }) => ParseError::ObjectKey { input },
        Some(ParseError::ObjectKey { .. }) => ParseError::Region { input },
        Some(ParseError::Region { .. }) => ParseError::ChatId { input },
        Some(ParseError::ChatId { .. }) => ParseError::RoleDescription { input, problem: text_problem },
        Some(ParseError::RoleDescription { .. }) => ParseError::ImportFile { input },
        Some(ParseError::ImportFile { .. }) => ParseError::LinkState { input },
        Some(ParseError::LinkState { .. }) => ParseError::HandshakeId { input },
        Some(ParseError::HandshakeId { .. }) => ParseError::InvitationNote { input, problem: text_problem },
        Some(ParseError::InvitationNote { .. }) => ParseError::TicketReason { input, problem: text_problem },
        Some(ParseError::TicketReason { .. }) => ParseError::CorrectionReason { input, problem: text_problem },
        Some(ParseError::CorrectionReason { .. }) => ParseError::OutboxId { input },
        Some(ParseError::OutboxId { .. }) => return None,
    })
}

fn every_parse_error() -> Vec<ParseError> {
    let mut all: Vec<ParseError> = Vec::new();
    while let Some(next) = next_parse_error(all.last()) {
        assert!(!all.contains(&next), "the samples go round in a circle at {next:?}");
        all.push(next);
    }
    all
}

#[test]
fn every_input_error_renders_in_both_languages() {
    for error in every_parse_error() {
        for lang in Lang::ALL {
            let text = render(&Message::Error(UserError::Invalid(error.clone())), lang);
            // The field, the input, and what is expected: at least two lines.
            assert!(text.lines().count() >= 2 && text.contains("`x`"), "{error:?} {lang}: {text}");
        }
    }
}

#[test]
fn every_state_reads_well_in_status_and_not_now() {
    let states = LinkState::ALL;
    assert!(states.contains(&LinkState::Blocked { reason: BlockReason::ManagementAccount }));
    for state in states {
        let mut account = harness::sample_account("123456789012", SupportTier::Basic);
        account.state = state;
        for lang in Lang::ALL {
            let text = render(&Message::Status(account.clone().into()), lang);
            assert!(text.contains("123456789012"), "{text}");
            render(
                &Message::Error(UserError::NotNow { account: account.id, state, action: Action::RotateExternalId }),
                lang,
            );
        }
    }
}

/// The CloudFormation template parses as YAML and creates exactly the role
/// the account needs.
#[test]
fn cloudformation_template_creates_the_role_with_the_external_id_condition() {
    for expected in &EXPECTED {
        let view = instructions_in(expected.tier, expected.partition);
        assert_eq!(view.role_arn, expected.role_arn);
        for lang in Lang::ALL {
            let yaml = render(&Message::CloudFormation(view.clone()), lang);
            let doc: Value = serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            let role = &doc["Resources"]["PlatformReadOnlyRole"];
            assert_eq!(role["Type"], "AWS::IAM::Role");
            assert_eq!(role["Properties"]["RoleName"], "OrgLinkReadOnly");
            assert_trust_policy(&role["Properties"]["AssumeRolePolicyDocument"], &view, expected.principal);
            let policies: Vec<&str> = role["Properties"]["ManagedPolicyArns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(policies, expected.policies);
            assert_eq!(
                doc["Outputs"]["RoleArn"]["Value"]["Fn::GetAtt"],
                serde_json::json!(["PlatformReadOnlyRole", "Arn"])
            );
        }
    }
}

fn assert_trust_policy(policy: &Value, view: &InstructionsView, principal: &str) {
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "sts:AssumeRole");
    assert_eq!(s["Principal"]["AWS"], principal);
    assert_eq!(s["Condition"]["StringEquals"]["sts:ExternalId"], view.external_id.as_str());
    assert_eq!(s["Condition"].as_object().unwrap().len(), 1, "no other condition (no MFA)");
}

/// A Terraform configuration read as Terraform reads it (hcl-rs): each
/// block's attributes by its labels, and an attribute's value evaluated with
/// the configuration's own variables' defaults as `var` (a `jsonencode(...)`
/// call is its argument's value).
pub struct Terraform(hcl::Body);

impl Terraform {
    pub fn parse(text: &str) -> Self {
        Self(hcl::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}")))
    }

    /// The blocks `identifier` with these first labels.
    pub fn blocks<'a>(&'a self, identifier: &'a str, labels: &'a [&str]) -> Vec<&'a hcl::Block> {
        self.0
            .blocks()
            .filter(|b| {
                b.identifier() == identifier
                    && b.labels().iter().map(|l| l.as_str()).take(labels.len()).eq(labels.iter().copied())
            })
            .collect()
    }

    fn expression(&self, identifier: &str, labels: &[&str], attribute: &str) -> hcl::Expression {
        let blocks = self.blocks(identifier, labels);
        assert_eq!(blocks.len(), 1, "one {identifier} {labels:?}");
        let found = blocks[0].body().attributes().find(|a| a.key() == attribute);
        found.unwrap_or_else(|| panic!("{identifier} {labels:?} has no {attribute}")).expr().clone()
    }

    /// A variable's default.
    pub fn default(&self, variable: &str) -> Value {
        self.value("variable", &[variable], "default")
    }

    /// The value of `attribute` of the block, evaluated.
    pub fn value(&self, identifier: &str, labels: &[&str], attribute: &str) -> Value {
        use hcl::eval::{Context, Evaluate};
        let mut context = Context::new();
        let vars: hcl::Map<String, hcl::Value> = self
            .blocks("variable", &[])
            .into_iter()
            .filter_map(|b| {
                let default = b.body().attributes().find(|a| a.key() == "default")?.expr().clone();
                Some((b.labels()[0].as_str().to_owned(), default.evaluate(&Context::new()).unwrap()))
            })
            .collect();
        context.declare_var("var", hcl::Value::Object(vars));
        let expression = match self.expression(identifier, labels, attribute) {
            hcl::Expression::FuncCall(call) if call.name.name.as_str() == "jsonencode" => call.args[0].clone(),
            expression => expression,
        };
        let value = expression.evaluate(&context).unwrap_or_else(|e| panic!("{attribute}: {e}"));
        serde_json::to_value(value).unwrap()
    }
}

/// The Terraform configuration creates exactly the role the account needs:
/// the trust policy (`jsonencode`) with the platform's principal and the
/// external ID condition, the role name and the external ID as variables
/// with defaults, the managed policies the tier needs, the role's ARN as
/// an output.
#[test]
fn terraform_configuration_creates_the_same_role() {
    for expected in &EXPECTED {
        let view = instructions_in(expected.tier, expected.partition);
        for lang in Lang::ALL {
            let text = render(&Message::Terraform(view.clone()), lang);
            let tf = Terraform::parse(&text);
            assert_eq!(tf.default("external_id"), view.external_id.as_str(), "{text}");
            assert_eq!(tf.default("role_name"), "OrgLinkReadOnly");
            let role = ["aws_iam_role", "orglink"];
            assert_eq!(tf.value("resource", &role, "name"), "OrgLinkReadOnly");
            assert_trust_policy(&tf.value("resource", &role, "assume_role_policy"), &view, expected.principal);
            let mut attached: Vec<Value> = tf
                .blocks("resource", &["aws_iam_role_policy_attachment"])
                .iter()
                .map(|b| {
                    let name = b.labels()[1].as_str();
                    assert!(matches!(
                        tf.expression("resource", &["aws_iam_role_policy_attachment", name], "role"),
                        hcl::Expression::Traversal(_)
                    ));
                    tf.value("resource", &["aws_iam_role_policy_attachment", name], "policy_arn")
                })
                .collect();
            attached.sort_by_key(|v| v.as_str().unwrap().to_owned());
            let mut policies: Vec<&str> = expected.policies.to_vec();
            policies.sort();
            assert_eq!(attached, policies, "{text}");
            assert_eq!(tf.blocks("output", &["role_arn"]).len(), 1);
            assert_eq!(tf.value("locals", &[], "orglink_customer"), view.customer.as_str());
        }
    }
}

/// The AWS CLI commands, run with a stand-in `aws`: they pass the right
/// trust policy, attach exactly the policies the tier needs, run nothing
/// but `aws`, and leave a role that already exists alone.
#[test]
fn aws_cli_commands_create_the_same_role() {
    use harness::shell::{bash_parses, run_script};
    for expected in &EXPECTED {
        let view = instructions_in(expected.tier, expected.partition);
        for lang in Lang::ALL {
            let script = render(&Message::AwsCli(view.clone()), lang);
            assert!(script.lines().any(|l| l == "set -euo pipefail"), "{script}");
            bash_parses(&script).unwrap();
            let run = run_script(&script, false);
            assert_eq!(run.code, 0, "{run:?}");
            assert!(run.files.is_empty(), "writes no file: {run:?}");
            let calls: Vec<Vec<&str>> = run.aws_calls.iter().map(|c| c.iter().map(String::as_str).collect()).collect();
            assert_eq!(calls[0], ["iam", "get-role", "--role-name", "OrgLinkReadOnly"]);
            let create = &calls[1];
            assert_eq!(create[..4], ["iam", "create-role", "--role-name", "OrgLinkReadOnly"]);
            assert_eq!(create[4], "--description");
            assert!(!create[5].is_empty());
            assert_eq!(create[6], "--assume-role-policy-document");
            assert_trust_policy(&serde_json::from_str(create[7]).unwrap(), &view, expected.principal);
            let attached: Vec<&str> = calls[2..calls.len() - 1]
                .iter()
                .map(|c| {
                    assert_eq!(c[..4], ["iam", "attach-role-policy", "--role-name", "OrgLinkReadOnly"]);
                    c[5]
                })
                .collect();
            assert_eq!(attached, expected.policies);
            assert_eq!(
                calls.last().unwrap(),
                &["iam", "get-role", "--role-name", "OrgLinkReadOnly", "--query", "Role.Arn", "--output", "text"]
            );

            // A role of that name exists: the script says what to do and
            // changes nothing.
            let run = run_script(&script, true);
            assert_ne!(run.code, 0, "{run:?}");
            assert_eq!(run.aws_calls.len(), 1, "only the get-role that found it: {run:?}");
            assert!(run.stderr.contains("OrgLinkReadOnly") && run.stderr.contains("role_name"), "{}", run.stderr);
        }
    }
}

#[test]
fn console_instructions_cover_every_step() {
    for tier in SupportTier::ALL {
        let view = instructions(tier);
        for lang in Lang::ALL {
            let text = render(&Message::Instructions(view.clone()), lang);
            for needle in [
                view.external_id.as_str(),
                "328676173091",
                "OrgLinkReadOnly",
                "ReadOnlyAccess",
                "MFA",
                "64",
                "+=,.@-_",
                &view.role_arn,
            ] {
                assert!(text.contains(needle), "{lang} {tier:?}: {needle} missing in\n{text}");
            }
            let support = EXPECTED.iter().find(|e| e.tier == tier && e.partition == Partition::Aws).unwrap();
            let wants_support = support.policies.iter().any(|p| p.ends_with("/AWSSupportAccess"));
            assert_eq!(text.contains("AWSSupportAccess"), wants_support, "{lang} {tier:?}");
            for step in 1..=7 {
                assert!(text.contains(&format!("\n{step}. ")), "{lang}: step {step} missing");
            }
        }
    }
}

#[test]
fn an_override_directory_replaces_one_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("es/errors")).unwrap();
    std::fs::write(dir.path().join("es/errors/account_not_found.md"), "No existe {{ account_id }}.").unwrap();
    let t = Templates::with_overrides(dir.path());
    let message = Message::Error(UserError::AccountNotFound { account: "123456789012".parse().unwrap() });
    assert_eq!(message.render(&t, Lang::Es).unwrap().text, "No existe 123456789012.");
    // The other language and the other files stay as embedded.
    let embedded = Templates::embedded();
    assert_eq!(message.render(&t, Lang::En).unwrap().text, render_on(&embedded, &message, Lang::En));
    let view: AccountView = harness::sample_account("123456789012", SupportTier::Basic).into();
    assert_eq!(
        Message::Status(view.clone()).render(&t, Lang::Es).unwrap().text,
        render_on(&embedded, &Message::Status(view), Lang::Es)
    );
}

/// An override of labels.md that predates a value a template reads from
/// the global `labels` (here: no `console_labels`, no `state_labels`)
/// leaves the embedded value; what it does set wins.
#[test]
fn an_older_labels_override_leaves_the_values_it_lacks_embedded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("en")).unwrap();
    let older = r#"{% macro console(code) %}{{ {"roles": "Roles"}[code] }}{% endmacro %}
{% set date_format = "YYYY/MM/DD" %}
{% set responsible_labels = {"reseller": "R", "account_owner": "OWNER", "distributor_ops": "OPS"} %}"#;
    std::fs::write(dir.path().join("en/labels.md"), older).unwrap();
    let t = Templates::with_overrides(dir.path());
    let embedded = Templates::embedded();
    let account = harness::sample_account("123456789012", SupportTier::Basic);
    let instructions = Message::Instructions(instructions(SupportTier::Business));
    assert_eq!(render_on(&t, &instructions, Lang::En), render_on(&embedded, &instructions, Lang::En));
    let list = Message::List(ListView {
        tenant: Some("acme".into()),
        filtered: false,
        accounts: vec![AccountSummary::from(&account)],
    });
    let text = render_on(&t, &list, Lang::En);
    assert!(text.contains("registered, waiting for the IAM role"), "embedded state label: {text}");
    assert!(text.contains("next: OWNER") && text.contains("registered 2026/"), "the override's values: {text}");
}

/// Every event that reaches a channel renders, for the tenant and for
/// operations, in both languages.
#[test]
fn every_notification_renders_in_both_languages() {
    use orglink::domain::{BlockReason, Event, SupportPlanGroup};
    let account = harness::sample_account("123456789012", SupportTier::Business);
    let id = account.id;
    let at = harness::REGISTERED_AT + time::Duration::days(15);
    let events = [
        Event::AccountRegistered { account: id },
        Event::RoleVerified { account: id },
        Event::AccountBlocked { account: id, reason: BlockReason::ManagementAccount },
        Event::InvitationSent { account: id, handshake_id: "h-exampleinvite01".into(), expires_at: at },
        Event::AccountLinked { account: id },
        Event::InvitationDeclined { account: id },
        Event::InvitationCanceled { account: id },
        Event::InvitationExpired { account: id },
        Event::SupportPlanGroupSet { account: id, group: SupportPlanGroup::Passthrough, matches_tier: false },
        Event::NotificationUndeliverable {
            account: id,
            undelivered: "account_linked".into(),
            reason: "no_channel".into(),
        },
        Event::InvitationQueued { account: id },
        Event::InvitationReminder { account: id, expires_at: at, days_left: 2 },
        Event::SupportPlanAttention { account: id, group: None, expected: SupportPlanGroup::BusinessSupport },
        Event::SupportPlanAttention {
            account: id,
            group: Some(SupportPlanGroup::Passthrough),
            expected: SupportPlanGroup::BusinessSupport,
        },
        Event::BusinessSupportLinked { account: id },
        Event::TicketOpened {
            account: id,
            ticket_id: 501,
            url: "https://distributor.freshdesk.com/a/tickets/501".into(),
            kind: "invitation_expired".into(),
        },
        Event::TicketOpened {
            account: id,
            ticket_id: 502,
            url: "https://distributor.freshdesk.com/a/tickets/502".into(),
            kind: "requested".into(),
        },
        Event::TicketWaiting { account: id, problem: "unreachable".into() },
        Event::TicketWaiting { account: id, problem: "not_configured".into() },
    ];
    let t = Templates::embedded().for_discord();
    let probed = |report| {
        let mut account = account.clone();
        let arn = format!("arn:aws:iam::{id}:role/OrgLinkReadOnly").parse().unwrap();
        let plan = orglink::domain::ProbePlan::default();
        let events = account.probe_observed(&plan, arn, report, at).unwrap();
        (events.into_iter().find(|e| e.notifies()).unwrap(), AccountView::from(account))
    };
    let mut with_views: Vec<(Event, AccountView)> =
        events.iter().map(|e| (e.clone(), AccountView::from(account.clone()))).collect();
    with_views.push(probed(harness::verification_report(id, &[])));
    with_views.push(probed(harness::verification_report(
        id,
        &[
            (CheckName::ExternalIdRequired, Problem::ExternalIdNotRequired),
            (CheckName::ReadOnlyAccess, Problem::PolicyMissing),
        ],
    )));
    assert_eq!(with_views[with_views.len() - 2].0.code(), "role_found");
    assert_eq!(with_views[with_views.len() - 1].0.code(), "role_needs_fixing");
    with_views.push(probed(harness::verification_report(
        id,
        &[(CheckName::ExternalIdRequired, Problem::AnyExternalIdAccepted)],
    )));
    assert_eq!(with_views[with_views.len() - 1].0.code(), "role_needs_fixing");
    // What AWS says of the support tier: the tenant hears of another tier
    // than the one declared, operations of Business support appearing or
    // disappearing; the audit goes by AWS's tier.
    let told = |tier: SupportTier, aws: AwsSupportTier| {
        let mut account = harness::sample_account("123456789012", tier);
        let arn = format!("arn:aws:iam::{id}:role/OrgLinkReadOnly").parse().unwrap();
        let report = VerificationReport { support_tier: aws, ..harness::verification_report(id, &[]) };
        let events = account.apply_verification(arn, None, report, at).unwrap();
        let view = AccountView::from(account);
        events
            .into_iter()
            .filter(|e| matches!(e, Event::SupportTierMismatch { .. } | Event::BusinessSupportChanged { .. }))
            .map(|e| (e, view.clone()))
            .collect::<Vec<_>>()
    };
    let told = [
        told(SupportTier::Business, AwsSupportTier::BasicOrDeveloper),
        told(SupportTier::Developer, AwsSupportTier::BusinessOrHigher),
    ]
    .concat();
    let codes: Vec<_> = told.iter().map(|(e, _)| e.code()).collect();
    assert_eq!(codes, ["support_tier_mismatch", "business_support_changed"].repeat(2));
    with_views.extend(told);
    let mut audited = harness::sample_account("123456789012", SupportTier::Business);
    audited.role = Some(RoleRecord {
        arn: format!("arn:aws:iam::{id}:role/OrgLinkReadOnly").parse().unwrap(),
        description: None,
        recorded_at: harness::REGISTERED_AT,
        verified_at: Some(harness::REGISTERED_AT),
        report: Some(VerificationReport {
            support_tier: AwsSupportTier::BasicOrDeveloper,
            ..harness::verification_report(id, &[])
        }),
    });
    audited.state = LinkState::Linked;
    audited.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
    let attention = audited.support_plan_attention().expect("the group AWS's tier needs is Passthrough");
    with_views.push((attention, AccountView::from(audited)));
    for (i, (event, view)) in with_views.iter().enumerate() {
        assert!(event.notifies(), "{event:?}");
        for lang in Lang::ALL {
            for for_ops in [false, true] {
                let context = serde_json::json!({ "event": event, "account": view, "for_ops": for_ops });
                let text = t
                    .render(lang, &format!("notifications/{}.md", event.code()), context)
                    .unwrap_or_else(|e| panic!("{event:?} {lang}: {e:#}"));
                assert!(text.contains("123456789012"), "{text}");
                assert!(!text.contains(view.account.external_id.as_str()), "channels never see the external ID");
                // Nor does a template override: the context has none.
                let message = Message::Notification(Box::new(orglink::app::NotificationView {
                    event: event.clone(),
                    account: Some(view.clone()),
                    tenant: "acme".into(),
                    for_ops,
                }));
                let context = message.context(orglink::templates::Surface::Discord).to_string();
                assert!(!context.contains(view.account.external_id.as_str()), "{context}");
                assert_eq!(render(&message, lang), text, "the context without it renders the same");
                if !for_ops {
                    insta::assert_snapshot!(format!("notification_{i:02}_{}.{lang}", event.code()), text);
                }
            }
        }
    }
}

/// Every event of a tenant's own that reaches a channel renders, for the
/// channel it goes to, in both languages; operations' notice of a new
/// server names it and who asked.
#[test]
fn every_tenant_notification_renders_in_both_languages() {
    use orglink::app::NotificationView;
    use orglink::domain::{Event, TenantId};
    let tenant: TenantId = "900000000000000501".parse().unwrap();
    let by = Some("700000000000000001".parse().unwrap());
    let events = [
        Event::TenantPending { tenant: tenant.clone(), by },
        Event::TenantPending { tenant: tenant.clone(), by: None },
        Event::TenantApproved { tenant: tenant.clone() },
        Event::TenantDenied { tenant: tenant.clone() },
        Event::TenantResumed { tenant: tenant.clone() },
    ];
    for (i, event) in events.into_iter().enumerate() {
        let notice = orglink::domain::effects::notice(&event).expect("someone hears of it");
        let for_ops = notice.audience.ops;
        assert_ne!(notice.audience.tenant, for_ops, "one channel each");
        let message = Message::Notification(Box::new(NotificationView {
            event: event.clone(),
            account: None,
            tenant: tenant.to_string(),
            for_ops,
        }));
        for lang in Lang::ALL {
            let text = render(&message, lang);
            if for_ops {
                assert!(text.contains("`900000000000000501`"), "{text}");
                assert_eq!(text.contains("<@700000000000000001>"), i == 0, "{text}");
            }
            insta::assert_snapshot!(format!("tenant_notification_{i}_{}.{lang}", event.code()), text);
        }
    }
}

/// An event that stands alone renders from its own fields: no claim of its
/// tenant is needed (a registration refused over a quota has none).
#[test]
fn a_quota_notice_renders_without_a_claim_in_both_languages() {
    use orglink::domain::Event;
    let t = Templates::embedded().for_discord();
    for quota in Quota::ALL {
        let event = Event::QuotaExceeded {
            account: "123456789012".parse().unwrap(),
            tenant: "900000000000000001".parse().unwrap(),
            quota,
            limit: 7,
        };
        assert!(event.stands_alone() && event.notifies());
        for lang in Lang::ALL {
            let context = serde_json::json!({ "event": event, "account": null, "for_ops": true });
            let text = t.render(lang, "notifications/quota_exceeded.md", context).unwrap();
            for needle in ["123456789012", "900000000000000001", "(7)", quota.code()] {
                assert!(text.contains(needle), "{lang}: {needle} missing in {text}");
            }
            insta::assert_snapshot!(format!("notification_quota_exceeded_{}.{lang}", quota.code()), text);
        }
    }
}

/// Operations' digest stands alone: its own counts, no claim.
#[test]
fn the_operations_digest_renders_without_a_claim_in_both_languages() {
    use orglink::domain::Event;
    let t = Templates::embedded().for_discord();
    let event = Event::OpsDigest {
        tenant: "900000000000000100".parse().unwrap(),
        registered: 3,
        entered: vec![(LinkState::RoleVerified, 2), (LinkState::Linked, 1)],
        operations_next: 2,
        invitations_expiring: 1,
        blocked: 0,
        support_plan_attention: 1,
        notifications_dead: 1,
    };
    assert!(event.stands_alone() && event.notifies());
    for lang in Lang::ALL {
        let context = serde_json::json!({ "event": event, "account": null, "for_ops": true });
        let text = t.render(lang, "notifications/ops_digest.md", context).unwrap();
        insta::assert_snapshot!(format!("notification_ops_digest.{lang}"), text);
    }
}

/// The slash commands of one language, as `commands.json` names them.
fn command_names(lang: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let commands: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join(lang).join("discord/commands.json")).unwrap()).unwrap();
    commands.values().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect()
}

/// Every slash command `text` names: a `/` at the start of a word (after a
/// space, a bracket, a quote or a backtick, not inside a URL or a path),
/// followed by a command-like name.
fn slash_commands_named(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut named = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        let starts_word = i == 0 || matches!(chars[i - 1], ' ' | '\n' | '(' | '`' | '"' | '\'');
        if *c != '/' || !starts_word {
            continue;
        }
        let name: String =
            chars[i + 1..].iter().take_while(|c| c.is_ascii_lowercase() || **c == '-' || **c == '_').collect();
        if !name.is_empty() {
            named.push(name);
        }
    }
    named
}

/// Every template file of a language, with its text (Jinja comments, which
/// only template authors read, left out).
fn template_files(lang: &str) -> Vec<(std::path::PathBuf, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut files = Vec::new();
    let mut dirs = vec![root.join(lang)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let raw = std::fs::read_to_string(&path).unwrap();
            let mut text = String::new();
            let mut rest = raw.as_str();
            while let Some(open) = rest.find("{#") {
                text.push_str(&rest[..open]);
                rest = rest[open..].find("#}").map_or("", |close| &rest[open + close + 2..]);
            }
            text.push_str(rest);
            files.push((path, text));
        }
    }
    files
}

/// A slash command a template names is one its readers see: the Spanish
/// name in Spanish templates, the English one in English, whether in
/// backticks or not. Paths of orglink's HTTP endpoints are not commands.
#[test]
fn templates_name_slash_commands_in_their_own_language() {
    const HTTP_PATHS: [&str; 3] = ["healthz", "metrics", "interactions"];
    for lang in ["en", "es"] {
        let names = command_names(lang);
        let mut seen = 0;
        for (path, text) in template_files(lang) {
            for name in slash_commands_named(&text) {
                if HTTP_PATHS.contains(&name.as_str()) {
                    continue;
                }
                seen += 1;
                assert!(names.contains(&name), "{}: `/{name}` is not a {lang} command", path.display());
            }
        }
        assert!(seen >= 10, "{lang}: only {seen} commands named: is the scan still finding them?");
    }
    // The scan itself: the defects it exists for are found.
    assert_eq!(slash_commands_named("run /instructions now"), ["instructions"]);
    assert_eq!(slash_commands_named("(/verify-role or orglink verify)"), ["verify-role"]);
    assert!(slash_commands_named("https://example.com/instructions and role/OrgLinkReadOnly").is_empty());
    assert!(!command_names("es").contains(&"instructions".to_owned()));
}

/// Every variation of what the AWS account owner reads: the instructions in
/// every format (console steps, CloudFormation, AWS CLI, Terraform, the
/// quick-create link), for every support plan, with and without probing and
/// the link.
fn owner_facing() -> Vec<(String, Message)> {
    let mut all = Vec::new();
    for tier in SupportTier::ALL {
        for link in [false, true] {
            for probing in [false, true] {
                let mut view = if link { quick_create(tier) } else { instructions(tier) };
                view.probing = probing;
                let name = format!("{tier:?}, link {link}, probing {probing}");
                all.push((format!("instructions {name}"), Message::Instructions(view.clone())));
                all.push((format!("cloudformation {name}"), Message::CloudFormation(view.clone())));
                all.push((format!("cli {name}"), Message::AwsCli(view.clone())));
                all.push((format!("terraform {name}"), Message::Terraform(view.clone())));
                if link {
                    all.push((format!("link {name}"), Message::LaunchLink(view.clone())));
                }
            }
        }
    }
    all
}

/// The owner may not be in the reseller's Discord: what they read names no
/// channel, no slash command (in either language) and no orglink command,
/// and does not tell them to send anything "to orglink". In Spanish, what
/// probing does is "automáticamente", never the ambiguous "solo".
#[test]
fn owner_facing_text_names_no_channel_and_no_command() {
    let commands: Vec<String> = command_names("en").into_iter().chain(command_names("es")).collect();
    let forbidden = [
        "channel",
        "canal",
        "discord",
        "this server",
        "este servidor",
        "orglink tells",
        "tells the reseller",
        "avisa en",
        "to orglink",
        "a orglink",
        "`orglink ",
        "orglink verify",
        "orglink instructions",
        "orglink account",
        "solo en unos minutos",
        "lo encuentra solo",
        "encuentra el rol solo",
        "comprueba el rol solo",
    ];
    for surface in [Templates::embedded().for_discord(), Templates::embedded().for_terminal(false)] {
        for (name, message) in owner_facing() {
            for lang in Lang::ALL {
                let text = render_on(&surface, &message, lang);
                let lower = text.to_lowercase();
                for word in forbidden {
                    assert!(!lower.contains(word), "{name} {lang} says {word:?}:\n{text}");
                }
                let named = slash_commands_named(&text);
                assert!(!named.iter().any(|n| commands.contains(n)), "{name} {lang} names {named:?}:\n{text}");
                let view = match &message {
                    Message::Instructions(v)
                    | Message::CloudFormation(v)
                    | Message::AwsCli(v)
                    | Message::Terraform(v) => v,
                    _ => continue,
                };
                if lang == Lang::Es && view.probing {
                    assert!(text.contains("automáticamente"), "{name}: what probing does, said plainly:\n{text}");
                }
                // Without probing, the owner is told whom to send the ARN to.
                if !view.probing {
                    let whom = if lang == Lang::En { "whoever sent you" } else { "a quien le envió" };
                    assert!(text.contains(whom), "{name} {lang}: to whom?\n{text}");
                }
            }
        }
    }
}

/// Finds each needle after the one before it: the steps in the order the
/// console shows them.
fn assert_in_order(text: &str, needles: &[&str], what: &str) {
    let mut from = 0;
    for needle in needles {
        match text[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{what}: {needle:?} missing after byte {from}:\n{text}"),
        }
    }
}

/// The console steps walk today's Create role wizard page by page, with the
/// console's own labels in the reader's language (each page left with
/// Next, the last with Create role), pick the policy named exactly
/// ReadOnlyAccess, say the role name is final, and where to copy the ARN;
/// the CloudFormation steps name the custom-names acknowledgement, the
/// stack name and the Outputs tab.
#[test]
fn console_steps_follow_the_wizard_in_the_readers_language() {
    struct Console {
        lang: Lang,
        wizard: [&'static str; 15],
        exactly: &'static str,
        final_name: [&'static str; 2],
        stack: [&'static str; 3],
        outputs: &'static str,
    }
    let consoles = [
        Console {
            lang: Lang::En,
            wizard: [
                "**Roles** → **Create role**",
                "**Select trusted entity**, **Add permissions**, **Name, review, and create**",
                "Page **Select trusted entity**",
                "**AWS account**",
                "**Another AWS account**",
                "**Require external ID**",
                "**Next**",
                "Page **Add permissions**",
                "ReadOnlyAccess",
                "**Next**",
                "Page **Name, review, and create**",
                "**Role name**",
                "**Create role**",
                "**Summary**",
                "copy icon",
            ],
            exactly: "named exactly **ReadOnlyAccess**",
            final_name: ["unique in the account", "cannot be changed"],
            stack: [
                "**Stack name** (required)",
                "**I acknowledge that AWS CloudFormation might create IAM resources with custom names.**",
                "**Create stack**",
            ],
            outputs: "**Outputs** tab",
        },
        Console {
            lang: Lang::Es,
            wizard: [
                "**Roles** → **Crear rol**",
                "**Seleccionar entidad de confianza**, **Agregar permisos**, **Asignar nombre, revisar y crear**",
                "Página **Seleccionar entidad de confianza**",
                "**Cuenta de AWS**",
                "**Otra cuenta de AWS**",
                "**Requerir ID externo**",
                "**Siguiente**",
                "Página **Agregar permisos**",
                "ReadOnlyAccess",
                "**Siguiente**",
                "Página **Asignar nombre, revisar y crear**",
                "**Nombre del rol**",
                "**Crear rol**",
                "**Resumen**",
                "icono de copiar",
            ],
            exactly: "se llama exactamente **ReadOnlyAccess**",
            final_name: ["único en la cuenta", "no se puede cambiar"],
            stack: [
                "**Nombre de la pila** (obligatorio)",
                "**Reconozco que AWS CloudFormation podría crear recursos de IAM con nombres personalizados.**",
                "**Crear pila**",
            ],
            outputs: "pestaña **Salidas**",
        },
    ];
    for console in &consoles {
        let lang = console.lang;
        for tier in SupportTier::ALL {
            let text = render(&Message::Instructions(instructions(tier)), lang);
            assert_in_order(&text, &console.wizard, &format!("{lang} {tier:?}"));
            assert!(text.contains(console.exactly), "{lang} {tier:?}:\n{text}");
            for words in console.final_name {
                assert!(text.contains(words), "{lang} {tier:?}: {words:?} missing:\n{text}");
            }
            assert!(!text.contains(console.stack[1]), "{lang}: no CloudFormation without a link:\n{text}");

            let mut linked = quick_create(tier);
            linked.probing = false;
            let text = render(&Message::Instructions(linked.clone()), lang);
            let mut steps: Vec<&str> = console.stack.to_vec();
            steps.push(console.outputs);
            steps.extend(console.wizard);
            assert_in_order(&text, &steps, &format!("{lang} {tier:?} with the link"));

            // The template's own steps: the same acknowledgement, the stack
            // name, the Outputs tab (plain: it is a YAML comment).
            let yaml = render(&Message::CloudFormation(linked), lang);
            for words in console.stack.iter().chain([&console.outputs]) {
                let plain = words.replace("**", "");
                let plain = plain.trim_end_matches(" (required)").trim_end_matches(" (obligatorio)");
                let plain = plain.trim_start_matches("pestaña ").trim_end_matches(" tab");
                assert!(yaml.contains(plain), "{lang} {tier:?}: {plain:?} missing in the template:\n{yaml}");
            }
        }
    }
}

/// What the templates and the console steps say about AWSSupportAccess
/// agrees: for Business support every format attaches it, and says so.
#[test]
fn every_format_says_when_it_attaches_aws_support_access() {
    for tier in SupportTier::ALL {
        let business = tier == SupportTier::Business;
        for lang in Lang::ALL {
            for message in [
                Message::Instructions(instructions(tier)),
                Message::CloudFormation(instructions(tier)),
                Message::AwsCli(instructions(tier)),
                Message::Terraform(instructions(tier)),
                Message::Instructions(quick_create(tier)),
            ] {
                // Comments of the template and the script wrap their lines.
                let text = render(&message, lang).replace("\n# ", " ");
                let report = if lang == Lang::En {
                    "security and compliance report"
                } else {
                    "informe de seguridad y cumplimiento"
                };
                assert_eq!(text.contains(report), business, "{lang} {tier:?}:\n{text}");
                assert_eq!(text.matches("AWSSupportAccess").count() >= 1, business, "{lang} {tier:?}:\n{text}");
            }
        }
    }
}

/// One term per concept, in every template: the invitation (never a "link
/// request" or a "handshake" in prose), the AWS support plan (never a
/// "support tier"), consent to assignment as Spanish law says it (cesión),
/// the account owner (titular), and no turn heard only in Spain.
#[test]
fn templates_keep_one_term_per_concept() {
    let retired: [(&str, &[&str]); 2] = [
        (
            "en",
            &[
                "link request",
                "support tier",
                "support level",
                " handshake",
                "handshake `",
                "no-reply@",
                "cannot join by invitation",
                "by itself within minutes",
            ],
        ),
        (
            "es",
            &[
                "solicitud de vinculación",
                "nivel de soporte",
                " handshake",
                "no-reply@",
                "consentimiento de asignación",
                "contacte con",
                "propietario",
                "fichero",
                "unirse por invitación",
                "solo en unos minutos",
                "lo encuentra solo",
            ],
        ),
    ];
    for (lang, words) in retired {
        for (path, text) in template_files(lang) {
            let lower = text.to_lowercase();
            for word in words {
                assert!(!lower.contains(word), "{}: {word:?}", path.display());
            }
        }
    }
}

/// A state's name is a label, not an adjective: no sentence reads "it is
/// invitation expired" or "está rol verificado".
#[test]
fn a_state_is_never_said_as_an_adjective() {
    for state in LinkState::ALL {
        let mut account = harness::sample_account("123456789012", SupportTier::Basic);
        account.state = state;
        for lang in Lang::ALL {
            let status = render(&Message::Status(account.clone().into()), lang);
            let prefix = if lang == Lang::En { "State: " } else { "Estado: " };
            let label = status.lines().find_map(|l| l.strip_prefix(prefix)).expect("the state's line").to_owned();
            let errors = [
                Message::Error(UserError::CannotInvite { account: account.id, state }),
                Message::Error(UserError::NotNow { account: account.id, state, action: Action::RotateExternalId }),
                Message::Error(UserError::NotNow { account: account.id, state, action: Action::Edit }),
            ];
            for error in errors {
                let text = render(&error, lang);
                assert!(text.contains(&label), "{lang} {state:?}: the state is named:\n{text}");
                for verb in ["is ", "está ", "It is ", "Está "] {
                    assert!(!text.contains(&format!("{verb}{label}")), "{lang} {state:?}:\n{text}");
                }
            }
        }
    }
}
