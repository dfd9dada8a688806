//! Corrections of a registration: operations remove or move a claim, and
//! correct its details; a tenant corrects its own claim's details before the
//! invitation. Each is a change with its events, audited like any other.

use time::OffsetDateTime;

use super::{
    Account, AccountKind, CorrectionReason, CustomerName, Email, Event, LinkState, PriceBookChoice, SupportTier,
    TenantId,
};

/// The details a correction sets; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub customer: Option<CustomerName>,
    pub root_email: Option<Email>,
    pub support_tier: Option<SupportTier>,
    pub kind: Option<AccountKind>,
    pub price_book: Option<PriceBookChoice>,
}

/// Why a correction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrectionRefused {
    /// An invitation went out or the account is linked: removing it takes
    /// `--force`, editing it takes operations.
    InvitationOut,
    /// The edit names nothing to change.
    NothingToChange,
    /// A management account is not linked by invitation.
    ManagementAccount,
}

impl Account {
    /// Whether the distributor already acted on the account: an invitation
    /// went out (whatever became of it) or it is linked.
    pub fn invitation_out(&self) -> bool {
        self.invitation.is_some() || matches!(self.state, LinkState::Invited | LinkState::Linked)
    }

    /// Operations remove the claim: it closes, and stays for the record. An
    /// open invitation or a linked account needs `force`.
    pub fn remove(
        &mut self,
        reason: &CorrectionReason,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, CorrectionRefused> {
        if !force && matches!(self.state, LinkState::Invited | LinkState::Linked) {
            return Err(CorrectionRefused::InvitationOut);
        }
        self.close(now);
        Ok(vec![Event::ClaimRemoved { account: self.id, reason: reason.to_string() }])
    }

    /// Operations move the claim to tenant `to`. Returns what its former
    /// tenant hears, then what its new tenant hears.
    pub fn transfer(&mut self, to: TenantId, reason: &CorrectionReason, now: OffsetDateTime) -> (Event, Event) {
        self.tenant = to;
        self.updated_at = now;
        let reason = reason.to_string();
        (
            Event::ClaimTransferredOut { account: self.id, reason: reason.clone() },
            Event::ClaimTransferredIn { account: self.id, reason },
        )
    }

    /// Corrects the claim's details: by its tenant only before the
    /// invitation, by operations (`by_ops`) at any time. A new support tier
    /// of a linked account is audited at once.
    pub fn edit(
        &mut self,
        edit: &Edit,
        by_ops: bool,
        reason: Option<&CorrectionReason>,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, CorrectionRefused> {
        if !by_ops && self.invitation_out() {
            return Err(CorrectionRefused::InvitationOut);
        }
        if edit.kind == Some(AccountKind::Management) {
            return Err(CorrectionRefused::ManagementAccount);
        }
        let mut fields = Vec::new();
        let mut set = |name: &str, changed: bool| {
            if changed {
                fields.push(name.to_owned());
            }
        };
        if let Some(customer) = &edit.customer {
            set("customer", *customer != self.customer);
            self.customer = customer.clone();
        }
        if let Some(email) = &edit.root_email {
            set("email", Some(email) != self.root_email.as_ref());
            self.root_email = Some(email.clone());
        }
        let tier_changed = edit.support_tier.is_some_and(|t| t != self.support_tier);
        if let Some(tier) = edit.support_tier {
            set("support_tier", tier_changed);
            self.support_tier = tier;
        }
        if let Some(kind) = edit.kind {
            set("account_kind", kind != self.kind);
            self.kind = kind;
        }
        if let Some(price_book) = &edit.price_book {
            set("price_book", Some(price_book) != self.price_book.as_ref());
            self.price_book = Some(price_book.clone());
        }
        if fields.is_empty() {
            return Err(CorrectionRefused::NothingToChange);
        }
        self.updated_at = now;
        let mut events =
            vec![Event::AccountEdited { account: self.id, fields, reason: reason.map(ToString::to_string) }];
        if tier_changed && self.state == LinkState::Linked {
            events.extend(self.support_plan_attention());
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn claim() -> Account {
        crate::domain::sample_account("123456789012", "acme", SupportTier::Basic, AT)
    }

    fn reason() -> CorrectionReason {
        "typo in the account ID".parse().unwrap()
    }

    #[test]
    fn a_linked_account_is_removed_only_by_force() {
        let mut linked = claim();
        linked.state = LinkState::Linked;
        assert_eq!(linked.remove(&reason(), false, AT), Err(CorrectionRefused::InvitationOut));
        assert!(linked.closed_at.is_none());
        let events = linked.remove(&reason(), true, AT).unwrap();
        assert_eq!(events, vec![Event::ClaimRemoved { account: linked.id, reason: reason().to_string() }]);
        assert_eq!(linked.closed_at, Some(AT));
    }

    #[test]
    fn a_tenant_edits_before_the_invitation_and_operations_at_any_time() {
        let mut open = claim();
        let edit = Edit { customer: Some("Acme Corp".parse().unwrap()), ..Edit::default() };
        let events = open.edit(&edit, false, None, AT).unwrap();
        assert_eq!(
            events,
            vec![Event::AccountEdited { account: open.id, fields: vec!["customer".into()], reason: None }]
        );
        assert_eq!(open.edit(&edit, false, None, AT), Err(CorrectionRefused::NothingToChange), "already so");

        let mut linked = claim();
        linked.state = LinkState::Linked;
        linked.support_plan_group = Some(crate::domain::SupportPlanGroup::Passthrough);
        let business = Edit { support_tier: Some(SupportTier::Business), ..Edit::default() };
        assert_eq!(linked.edit(&business, false, None, AT), Err(CorrectionRefused::InvitationOut));
        let events = linked.edit(&business, true, Some(&reason()), AT).unwrap();
        assert!(
            matches!(events.last(), Some(Event::SupportPlanAttention { .. })),
            "a new tier is audited at once: {events:?}"
        );
        let management = Edit { kind: Some(AccountKind::Management), ..Edit::default() };
        assert_eq!(open.edit(&management, true, None, AT), Err(CorrectionRefused::ManagementAccount));
    }

    #[test]
    fn a_transfer_tells_both_tenants_without_naming_either() {
        let mut moved = claim();
        let (out, into) = moved.transfer("globex".parse().unwrap(), &reason(), AT);
        assert_eq!(moved.tenant.as_str(), "globex");
        assert_eq!(out.code(), "claim_transferred_out");
        assert_eq!(into.code(), "claim_transferred_in");
    }
}
