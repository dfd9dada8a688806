//! Claims: every tenant that registers an AWS account holds its own claim
//! on it, with its own external ID. The claim whose role verifies (the
//! role trusts that claim's external ID, which only someone who controls
//! the account can arrange) makes its tenant the owner; every other claim
//! on the account then closes. These are the rules over the claims of one
//! account; the store keeps them together, so they change in one
//! transaction.

use super::{Account, TenantId};

/// Open claims one account may have at once: a sixth is refused, and
/// operations hear of it.
pub const MAX_OPEN_CLAIMS: usize = 5;

/// Why a tenant may not claim an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// The tenant holds a claim on it already.
    AlreadyClaimed,
    /// Another tenant proved control of it.
    OwnedElsewhere,
    /// It has [`MAX_OPEN_CLAIMS`] open claims.
    Full,
}

/// Whether `tenant` may claim an account that has `claims`.
/// Closed claims do not count: their tenant may claim the account again
/// while nobody owns it.
pub fn may_claim(claims: &[Account], tenant: &TenantId) -> Result<(), ClaimRefusal> {
    let live = || claims.iter().filter(|c| c.closed_at.is_none());
    if live().any(|c| c.tenant == *tenant) {
        return Err(ClaimRefusal::AlreadyClaimed);
    }
    if live().any(Account::is_owner) {
        return Err(ClaimRefusal::OwnedElsewhere);
    }
    if claims.iter().filter(|c| c.is_open_claim()).count() >= MAX_OPEN_CLAIMS {
        return Err(ClaimRefusal::Full);
    }
    Ok(())
}

/// After a change of `claims[changed]`: if it made its tenant the owner,
/// every other claim still standing must close ([`Account::close`]).
/// Returns their positions.
pub fn settle(claims: &[Account], changed: usize) -> Vec<usize> {
    if !claims[changed].is_owner() {
        return vec![];
    }
    claims
        .iter()
        .enumerate()
        .filter(|(i, c)| *i != changed && !c.is_owner() && c.closed_at.is_none())
        .map(|(i, _)| i)
        .collect()
}

/// Which claim a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose<'a> {
    /// This tenant's claim, and no other.
    Tenant(&'a TenantId),
    /// Operations: the owner's claim, else the only one.
    Principal,
}

/// Why no claim was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoClaim {
    Missing,
    /// Several tenants claim it and none owns it: name one.
    Ambiguous {
        claims: usize,
    },
}

/// The position of the claim `whose` names among `claims`.
/// (Callers leave closed claims out.)
pub fn select(claims: &[Account], whose: Whose<'_>) -> Result<usize, NoClaim> {
    match whose {
        Whose::Tenant(tenant) => claims.iter().position(|c| c.tenant == *tenant).ok_or(NoClaim::Missing),
        Whose::Principal => match claims.iter().position(Account::is_owner) {
            Some(owner) => Ok(owner),
            None => match claims.len() {
                0 => Err(NoClaim::Missing),
                1 => Ok(0),
                n => Err(NoClaim::Ambiguous { claims: n }),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LinkState, SupportTier};
    use time::macros::datetime;

    const AT: time::OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn claim(tenant: &str) -> Account {
        crate::domain::sample_account("123456789012", tenant, SupportTier::Business, AT)
    }

    fn tenant(t: &str) -> TenantId {
        t.parse().unwrap()
    }

    #[test]
    fn a_tenant_claims_once_and_never_after_an_owner() {
        let mut claims = vec![claim("1001")];
        assert_eq!(may_claim(&claims, &tenant("1001")), Err(ClaimRefusal::AlreadyClaimed));
        assert_eq!(may_claim(&claims, &tenant("1002")), Ok(()));
        claims[0].owned_at = Some(AT);
        assert_eq!(may_claim(&claims, &tenant("1002")), Err(ClaimRefusal::OwnedElsewhere));
    }

    #[test]
    fn five_open_claims_at_most_and_lapsed_ones_do_not_count() {
        let mut claims: Vec<_> = (1..=5).map(|n| claim(&format!("100{n}"))).collect();
        assert_eq!(may_claim(&claims, &tenant("1006")), Err(ClaimRefusal::Full));
        claims[2].state = LinkState::Lapsed;
        assert_eq!(may_claim(&claims, &tenant("1006")), Ok(()));
    }

    #[test]
    fn a_closed_claim_neither_counts_nor_blocks_its_tenant() {
        let mut claims = vec![claim("1001")];
        claims[0].close(AT);
        assert_eq!(may_claim(&claims, &tenant("1001")), Ok(()));
        assert!(
            claims[0]
                .due(&crate::domain::DuePlan {
                    probe: Some(&crate::domain::ProbePlan::default()),
                    reminder_days: &[7],
                    lapse_after: time::Duration::days(14),
                })
                .is_empty()
        );
    }

    #[test]
    fn the_owner_closes_every_other_claim() {
        let mut claims = vec![claim("1001"), claim("1002"), claim("1003")];
        assert!(settle(&claims, 1).is_empty(), "nobody owns it yet");
        claims[1].owned_at = Some(AT);
        assert_eq!(settle(&claims, 1), vec![0, 2]);
        claims[0].close(AT);
        assert_eq!(settle(&claims, 1), vec![2], "a closed claim closes once");
    }

    #[test]
    fn operations_get_the_owner_or_the_only_claim() {
        let mut claims = vec![claim("1001")];
        assert_eq!(select(&claims, Whose::Principal), Ok(0));
        claims.push(claim("1002"));
        assert_eq!(select(&claims, Whose::Principal), Err(NoClaim::Ambiguous { claims: 2 }));
        assert_eq!(select(&claims, Whose::Tenant(&tenant("1002"))), Ok(1));
        assert_eq!(select(&claims, Whose::Tenant(&tenant("1003"))), Err(NoClaim::Missing));
        claims[1].owned_at = Some(AT);
        assert_eq!(select(&claims, Whose::Principal), Ok(1));
        assert_eq!(select(&[], Whose::Principal), Err(NoClaim::Missing));
    }
}
