//! When an account next needs each scheduled job. The store keeps these
//! times as an index, written in the same transaction as the account, so a
//! job reads only the accounts that are due, not the whole registry.

use std::collections::HashMap;
use std::hash::Hash;

use time::{Duration, OffsetDateTime};

use super::{Account, ProbePlan};

/// The jobs that work account by account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DueJob {
    /// Looking for the role under the suggested name: at the probe plan's
    /// next time.
    Probe,
    /// Reminding the tenant before the invitation expires: when the next
    /// threshold not yet reminded passes.
    Remind,
    /// Asking AWS about an open invitation: every run while it is open
    /// (and marking it expired once past its expiry).
    Poll,
    /// Warning about the support plan group: every run while a linked
    /// account's group is missing or wrong.
    Audit,
    /// Sending an invitation AWS's daily quota held back: every run while
    /// it waits.
    SendQueued,
    /// Lapsing a claim whose window ended without a verified role: when
    /// the window ends.
    Lapse,
}

impl DueJob {
    pub const ALL: [DueJob; 6] = [Self::Probe, Self::Remind, Self::Poll, Self::Audit, Self::SendQueued, Self::Lapse];

    /// Its byte in the store's index keys: stable across releases.
    pub fn tag(self) -> u8 {
        match self {
            Self::Probe => 1,
            Self::Remind => 2,
            Self::Poll => 3,
            Self::Audit => 4,
            Self::SendQueued => 5,
            Self::Lapse => 6,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.tag() == tag)
    }
}

/// What the due times depend on besides the account: the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DuePlan<'a> {
    /// The probe plan, when probing is on.
    pub probe: Option<&'a ProbePlan>,
    /// Days before an invitation's expiry when the tenant is reminded.
    pub reminder_days: &'a [u32],
    /// How long a claim stays open without a verified role.
    pub lapse_after: Duration,
}

impl Account {
    /// When each job next needs this account; a job that does not need it
    /// is absent. "Every run while..." jobs are due from the registration
    /// on, so their index entry does not move with each change.
    pub fn due(&self, plan: &DuePlan<'_>) -> Vec<(DueJob, OffsetDateTime)> {
        let mut due = Vec::new();
        if self.closed_at.is_some() {
            return due;
        }
        if let Some(at) = plan.probe.and_then(|p| self.probe_due(p)) {
            due.push((DueJob::Probe, at));
        }
        if let Some(invitation) = self.invitation.as_ref().filter(|i| i.state.is_open()) {
            let next_threshold = plan.reminder_days.iter().copied().filter(|t| !invitation.reminded.contains(t)).max();
            if let Some(days) = next_threshold {
                let at = invitation.expires_at - Duration::days(i64::from(days));
                if at < invitation.expires_at {
                    due.push((DueJob::Remind, at));
                }
            }
            due.push((DueJob::Poll, self.registered_at));
        }
        if self.support_plan_attention().is_some() {
            due.push((DueJob::Audit, self.registered_at));
        }
        if self.queued_invitation.is_some() {
            due.push((DueJob::SendQueued, self.registered_at));
        }
        if let Some(at) = self.lapses_at(plan.lapse_after) {
            due.push((DueJob::Lapse, at));
        }
        due
    }
}

/// What a job run takes of the claims due, when it cannot take them all:
/// round-robin across tenants, each tenant's most overdue first, so one
/// tenant's thousands of due claims cannot hold up another tenant's few.
/// Offered the due claims most overdue first (the due index's order), it
/// keeps no more than it can hand out: at most `limit` per tenant.
#[derive(Debug)]
pub struct FairShare<K, T> {
    limit: usize,
    /// Each tenant with what it has due, in the order its most overdue
    /// claim came.
    queues: Vec<(T, Vec<K>)>,
    positions: HashMap<T, usize>,
    offered: usize,
}

impl<K, T: Clone + Eq + Hash> FairShare<K, T> {
    pub fn new(limit: usize) -> Self {
        Self { limit, queues: Vec::new(), positions: HashMap::new(), offered: 0 }
    }

    /// One more due claim, less overdue than those offered before.
    pub fn offer(&mut self, claim: K, tenant: T) {
        self.offered += 1;
        let at = *self.positions.entry(tenant.clone()).or_insert_with(|| {
            self.queues.push((tenant, Vec::new()));
            self.queues.len() - 1
        });
        let queue = &mut self.queues[at].1;
        if queue.len() < self.limit {
            queue.push(claim);
        }
    }

    /// How many were offered: due in all.
    pub fn offered(&self) -> usize {
        self.offered
    }

    /// At most `limit` claims: the first of each tenant's, then the second
    /// of each, and so on.
    pub fn take(self) -> Vec<(K, T)> {
        let mut queues: Vec<(T, std::vec::IntoIter<K>)> =
            self.queues.into_iter().map(|(tenant, claims)| (tenant, claims.into_iter())).collect();
        let mut taken = Vec::new();
        while taken.len() < self.limit {
            let before = taken.len();
            for (tenant, claims) in &mut queues {
                if taken.len() == self.limit {
                    break;
                }
                if let Some(claim) = claims.next() {
                    taken.push((claim, tenant.clone()));
                }
            }
            if taken.len() == before {
                break;
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HandshakeState, Invitation, LinkState, QueuedInvitation, SupportPlanGroup, SupportTier};
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);
    const LAPSE: Duration = Duration::days(14);

    fn account() -> Account {
        crate::domain::sample_account("123456789012", "acme", SupportTier::Business, AT)
    }

    fn jobs(account: &Account, plan: &DuePlan<'_>) -> Vec<DueJob> {
        account.due(plan).into_iter().map(|(j, _)| j).collect()
    }

    #[test]
    fn tags_are_distinct_and_round_trip() {
        for job in DueJob::ALL {
            assert_eq!(DueJob::from_tag(job.tag()), Some(job));
        }
        assert_eq!(DueJob::from_tag(0), None);
    }

    #[test]
    fn a_new_account_is_probed_on_the_plan_only_when_probing_is_on() {
        let plan = ProbePlan::default();
        let account = account();
        let on = DuePlan { probe: Some(&plan), reminder_days: &[7, 2], lapse_after: LAPSE };
        let lapse = (DueJob::Lapse, AT + LAPSE);
        assert_eq!(account.due(&on), vec![(DueJob::Probe, account.probe_due(&plan).unwrap()), lapse]);
        assert_eq!(account.due(&DuePlan { probe: None, reminder_days: &[7, 2], lapse_after: LAPSE }), vec![lapse]);
    }

    #[test]
    fn an_open_invitation_is_polled_and_reminded_at_each_threshold() {
        let plan = DuePlan { probe: None, reminder_days: &[7, 2], lapse_after: LAPSE };
        let mut account = account();
        account.state = LinkState::Invited;
        let expires_at = AT + Duration::days(15);
        account.invitation = Some(Invitation {
            handshake_id: "h-abcdefgh12".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: AT,
            expires_at,
            note: None,
            reminded: vec![],
        });
        assert_eq!(
            account.due(&plan),
            vec![(DueJob::Remind, expires_at - Duration::days(7)), (DueJob::Poll, account.registered_at)]
        );
        account.invitation.as_mut().unwrap().mark_reminded(7, &[7, 2]);
        assert_eq!(account.due(&plan)[0], (DueJob::Remind, expires_at - Duration::days(2)));
        account.invitation.as_mut().unwrap().mark_reminded(2, &[7, 2]);
        assert_eq!(jobs(&account, &plan), vec![DueJob::Poll]);

        account.invitation.as_mut().unwrap().state = HandshakeState::Accepted;
        account.state = LinkState::Linked;
        assert_eq!(jobs(&account, &plan), vec![DueJob::Audit], "linked without a support plan group");
        account.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
        assert!(account.due(&plan).is_empty());
    }

    #[test]
    fn a_queued_invitation_is_due_every_run() {
        let plan = DuePlan { probe: None, reminder_days: &[], lapse_after: LAPSE };
        let mut account = account();
        account.state = LinkState::RoleVerified;
        account.owned_at = Some(AT);
        account.queued_invitation = Some(QueuedInvitation { note: None, queued_at: AT, by: "ops".into() });
        assert_eq!(jobs(&account, &plan), vec![DueJob::SendQueued]);
    }

    #[test]
    fn an_open_claim_lapses_at_the_end_of_its_window_and_an_owned_one_never() {
        let plan = DuePlan { probe: None, reminder_days: &[], lapse_after: LAPSE };
        let mut account = account();
        assert_eq!(account.due(&plan), vec![(DueJob::Lapse, AT + LAPSE)]);
        account.renew_window(AT + Duration::days(3));
        assert_eq!(account.due(&plan), vec![(DueJob::Lapse, AT + Duration::days(3) + LAPSE)]);
        assert!(account.lapse(AT + LAPSE, LAPSE).is_empty(), "the renewed window has not ended");
        assert_eq!(account.lapse(AT + Duration::days(17), LAPSE).len(), 1);
        assert_eq!(account.state, LinkState::Lapsed);
        assert!(account.due(&plan).is_empty(), "a lapsed claim is not due");
        assert_eq!(account.renew_window(AT + Duration::days(20)).len(), 1, "revived");
        assert_eq!(account.due(&plan), vec![(DueJob::Lapse, AT + Duration::days(20) + LAPSE)]);
        account.owned_at = Some(AT);
        assert!(account.due(&plan).is_empty());
    }

    #[test]
    fn a_fair_share_takes_round_robin_across_tenants_most_overdue_first() {
        // Tenant a's claims are all more overdue than b's and c's.
        let mut share = FairShare::new(7);
        for n in 0..1000 {
            share.offer(n, "a");
        }
        for n in 0..5 {
            share.offer(2000 + n, "b");
        }
        share.offer(3000, "c");
        assert_eq!(share.offered(), 1006);
        assert_eq!(share.take(), [(0, "a"), (2000, "b"), (3000, "c"), (1, "a"), (2001, "b"), (2, "a"), (2002, "b")]);

        // Room for everything: everything, each tenant in its own order.
        let mut share = FairShare::new(10);
        for (n, t) in [(1, "x"), (2, "y"), (3, "x")] {
            share.offer(n, t);
        }
        assert_eq!(share.take(), [(1, "x"), (2, "y"), (3, "x")]);
        assert!(FairShare::<u8, &str>::new(0).take().is_empty());
    }
}
