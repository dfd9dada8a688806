//! Operations correct any registration (remove, transfer, edit), tenants
//! correct their own before the invitation, and every correction is in the
//! account's history.

use orglink::domain::{LinkState, Transition};
use serde_json::Value;

use crate::harness::Orglink;
use crate::harness::discord::*;
use crate::harness::{Harness, change};

const ACCOUNT: &str = "111300000001";

fn add(o: &Orglink, tenant: &str) {
    o.ok(&["account", "add", ACCOUNT, "--tenant", tenant, "--customer", "Acme", "--support", "basic"]);
}

/// Makes the claim of `tenant` linked, as if verified, invited and accepted.
fn link(o: &Orglink) {
    let store = o.store();
    let at = store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap().updated_at;
    change(&store, ACCOUNT, "test_link", at, |a| {
        a.owned_at = Some(a.registered_at);
        a.state = LinkState::Invited;
        a.apply(&Transition::InvitationAccepted, a.registered_at)
    });
}

#[test]
fn operations_remove_transfer_and_edit_through_the_cli_and_the_history_shows_each() {
    let o = Orglink::new();
    add(&o, "acme");
    link(&o);

    // Linked: removing it needs --force; nothing changes without it.
    let before = o.export();
    let run = o.run(&["account", "remove", ACCOUNT, "--reason", "registered by mistake"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(o.export(), before);
    // A reason is required, and checked.
    let run = o.run(&["account", "remove", ACCOUNT, "--reason", ""]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Reason: (empty)"), "{}", run.stderr);
    assert_eq!(o.export(), before);

    // Operations correct the tier: a linked Business account without the
    // Business Support group is audited at once.
    o.ok(&["support-plan", ACCOUNT, "passthrough"]);
    let out = o.ok(&["account", "edit", ACCOUNT, "--support", "business", "--reason", "the customer has Business"]);
    assert!(out.contains("AWS support plan") && out.contains("negative margins"), "{out}");
    let run = o.run(&["account", "edit", ACCOUNT, "--support", "business"]);
    assert_eq!(run.code, 2, "nothing to change: {run:?}");

    // Moved to globex: both are told, the history stays.
    let out = o.ok(&["account", "transfer", ACCOUNT, "--to", "globex", "--reason", "moved to its reseller"]);
    assert!(out.contains("from tenant acme to tenant globex"), "{out}");
    let claim = o.store().account(ACCOUNT.parse().unwrap()).unwrap().unwrap();
    assert_eq!(claim.tenant.as_str(), "globex");
    assert!(o.store().tenant_accounts(&"acme".parse().unwrap()).unwrap().is_empty());
    let told: Vec<(String, &str)> =
        o.store().outbox().unwrap().iter().map(|i| (i.tenant.to_string(), i.event.code())).collect();
    assert!(told.contains(&("acme".into(), "claim_transferred_out")), "{told:?}");
    assert!(told.contains(&("globex".into(), "claim_transferred_in")), "{told:?}");

    // Removed with --force: it stays, closed, in the history.
    o.ok(&["account", "remove", ACCOUNT, "--reason", "customer left", "--force"]);
    let run = o.run(&["account", "show", ACCOUNT]);
    assert_eq!(run.code, 2, "a removed registration is gone: {run:?}");

    let history: Value = serde_json::from_str(&o.ok(&["account", "history", ACCOUNT, "--json"])).unwrap();
    let entries = history["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "account_add",
            "test_link",
            "support_plan",
            "account_edit",
            "account_transfer",
            "account_transfer",
            "account_remove"
        ],
        "oldest first"
    );
    let at = entries[0]["at"].as_str().unwrap();
    assert!(
        at.ends_with('Z') && time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
        "{at}"
    );
    assert!(entries.iter().all(|e| e["actor"].as_str().unwrap().starts_with("cli:") || e["action"] == "test_link"));
    assert_eq!(entries[6]["reason"], "customer left");
    assert_eq!(entries[4]["tenant"], "globex");
    assert_eq!(entries[5]["tenant"], "acme", "the former tenant's entry");
    let text = o.ok(&["account", "history", ACCOUNT, "--lang", "es"]);
    assert!(text.contains("Historial") && text.contains("UTC") && text.contains("customer left"), "{text}");

    // Transferring to a tenant that holds its own claim is refused.
    add(&o, "acme");
    add(&o, "initech");
    let run = o.run(&["account", "transfer", ACCOUNT, "--tenant", "acme", "--to", "initech", "--reason", "x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("initech") && run.stderr.contains("already"), "{}", run.stderr);
}

#[tokio::test]
async fn tenants_edit_their_own_claim_before_the_invitation_and_see_only_their_own_history() {
    let h = Harness::new().serve().await;
    let link = |guild| {
        command(
            "link-account",
            &[("account_id", ACCOUNT), ("customer", "Acme"), ("support_tier", "basic")],
            guild,
            "en-US",
            ADMIN,
            &[],
        )
    };
    h.interact(&link(GUILD_A)).await;
    h.interact(&link(GUILD_B)).await;
    h.outbox();

    let edit = command(
        "edit-account",
        &[("account_id", ACCOUNT), ("customer", "Acme Corp"), ("support_tier", "developer")],
        GUILD_A,
        "es-ES",
        ADMIN,
        &[],
    );
    let text = embeds_text(&h.interact(&edit).await["data"]);
    assert!(text.contains("Se corrigió") && text.contains("Nombre del cliente"), "{text}");
    let a = h.store().claim(ACCOUNT.parse().unwrap(), &GUILD_A.parse().unwrap()).unwrap().unwrap();
    assert_eq!(a.customer.as_str(), "Acme Corp");
    let b = h.store().claim(ACCOUNT.parse().unwrap(), &GUILD_B.parse().unwrap()).unwrap().unwrap();
    assert_eq!(b.customer.as_str(), "Acme", "B's claim is B's own");

    // Each tenant's history holds its own claim only.
    let history = |guild| command("history", &[("account_id", ACCOUNT)], guild, "en-US", ADMIN, &[]);
    let text = embeds_text(&h.interact(&history(GUILD_A)).await["data"]);
    assert!(text.contains("account_add") && text.contains("account_edit"), "{text}");
    let text_b = embeds_text(&h.interact(&history(GUILD_B)).await["data"]);
    assert!(!text_b.contains("account_edit") && !text_b.contains(GUILD_A), "{text_b}");

    // Once invited, the tenant cannot edit it any more.
    change(h.store(), ACCOUNT, "test_invite", h.now(), |x| {
        if x.tenant.as_str() != GUILD_A {
            return Ok::<_, ()>(vec![]);
        }
        x.state = LinkState::Invited;
        Ok(vec![])
    });
    let text = embeds_text(&h.interact(&edit).await["data"]);
    assert!(text.contains("invitación"), "{text}");

    // Account administration is the operations team's.
    let remove = |guild, roles: &[&str]| {
        command(
            "account-admin",
            &[("action", "remove"), ("account_id", ACCOUNT), ("reason", "duplicate"), ("tenant", GUILD_B)],
            guild,
            "en-US",
            ADMIN,
            roles,
        )
    };
    let text = embeds_text(&h.interact(&remove(GUILD_B, &[])).await["data"]);
    assert!(text.contains("operations"), "refused: {text}");
    assert!(h.store().claim(ACCOUNT.parse().unwrap(), &GUILD_B.parse().unwrap()).unwrap().unwrap().closed_at.is_none());
    let text = embeds_text(&h.interact(&remove(OPS_GUILD, &[OPS_ROLE])).await["data"]);
    assert!(text.contains("is removed"), "{text}");
    let b = h.store().claim(ACCOUNT.parse().unwrap(), &GUILD_B.parse().unwrap()).unwrap().unwrap();
    assert!(b.closed_at.is_some());
    // B is told (B has no channel yet: the notice waits for one).
    h.settle().await;
    h.outbox();
    let waiting: Vec<_> = h
        .store()
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|d| (d.item.tenant.to_string(), d.item.event.code()))
        .collect();
    assert!(waiting.contains(&(GUILD_B.to_owned(), "claim_removed")), "{waiting:?}");
    h.finish().await;
}
