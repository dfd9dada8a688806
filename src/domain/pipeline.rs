//! The pipeline, for operations: per tenant and overall, how many claims
//! stand in each state and for how long, who must act next, what is about
//! to go wrong (invitations expiring, blocked accounts, negative margins)
//! and what waits (tickets, notifications). Pure: the app reads the store
//! and hands the claims over one by one; nothing here keeps more than a
//! duration per claim and the few claims stuck longest.
//!
//! Which claims count: every claim not closed (a closed claim lost the
//! account to another tenant's; it is history). A lapsed claim is dormant:
//! it counts in its own state, `lapsed` (its count and time there), and in
//! nothing else: nobody must act on it until someone shows the
//! instructions again.

use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Account, AccountId, LinkState, Responsible, SupportTier, TenantId};

/// Invitations expiring within this many days need operations' eye.
pub const EXPIRING_WITHIN_DAYS: i64 = 3;

/// When a claim entered its state, from what the record keeps: the
/// registration (a claim revived from `lapsed` too), the role's verification, the invitation's request and expiry;
/// for the other states (linked, declined, canceled, blocked, lapsed), the
/// claim's last change, which is the transition unless something was set
/// on it since.
pub fn state_since(account: &Account) -> OffsetDateTime {
    match account.state {
        // A later window (the instructions shown again, or a revival) is
        // not told apart from the first stay: since the registration.
        LinkState::Registered => account.registered_at,
        LinkState::RoleVerified => account.role.as_ref().and_then(|r| r.verified_at).unwrap_or(account.updated_at),
        LinkState::Invited => account.invitation.as_ref().map_or(account.updated_at, |i| i.requested_at),
        LinkState::InvitationExpired => account.invitation.as_ref().map_or(account.updated_at, |i| i.expires_at),
        LinkState::Linked
        | LinkState::InvitationDeclined
        | LinkState::InvitationCanceled
        | LinkState::Blocked { .. }
        | LinkState::Lapsed => account.updated_at,
    }
    .min(account.updated_at.max(account.registered_at))
}

/// What the pipeline (and the open claims quota) needs of one claim that is
/// not closed, derived from it by [`Row::of`] alone: the store keeps one
/// beside each claim (grouped by tenant), so the pipeline and a tenant's
/// count of open claims read these small rows and not the claims, and so
/// does a list of accounts (`/status`, `account list`): what it shows of a
/// claim is here too. Times are Unix seconds, except the registration and
/// the last change, which a list shows as the claim has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub account: AccountId,
    pub customer: String,
    pub state: LinkState,
    /// [`state_since`].
    pub since: i64,
    #[serde(with = "super::instant")]
    pub registered_at: OffsetDateTime,
    /// The claim's last change.
    #[serde(with = "super::instant")]
    pub updated_at: OffsetDateTime,
    pub support_tier: SupportTier,
    /// The checklist's items done, and its items.
    pub steps_done: u8,
    pub steps_total: u8,
    pub tickets: u32,
    pub next_actor: Option<Responsible>,
    pub invitation_expires_at: Option<i64>,
    pub support_plan_attention: bool,
    /// Counted by the open claims quota (`Account::is_open_claim`).
    pub open_claim: bool,
}

/// The version of [`Row::of`]'s rules: rows kept under another version are
/// made again from the claims when the store opens. Bump it whenever what
/// `Row::of` derives changes (the store's check would otherwise find each
/// row that differs). 3: `support_plan_attention` by the tier AWS says
/// when it said one. 4: what a list shows (tier, steps, last change), the
/// registration to the nanosecond.
pub const ROWS_VERSION: u32 = 4;

impl Row {
    /// The claim's row; none for a closed claim, which the pipeline passes
    /// over. Depends on the claim alone, never on the time.
    pub fn of(claim: &Account) -> Option<Self> {
        if claim.closed_at.is_some() {
            return None;
        }
        let progress = claim.progress();
        Some(Self {
            account: claim.id,
            customer: claim.customer.to_string(),
            state: claim.state,
            since: state_since(claim).unix_timestamp(),
            registered_at: claim.registered_at,
            updated_at: claim.updated_at,
            support_tier: claim.support_tier,
            steps_done: u8::try_from(progress.done).unwrap_or(u8::MAX),
            steps_total: u8::try_from(progress.total).unwrap_or(u8::MAX),
            tickets: u32::try_from(claim.tickets.len()).unwrap_or(u32::MAX),
            next_actor: progress.next_actor,
            invitation_expires_at: claim.invitation.as_ref().map(|i| i.expires_at.unix_timestamp()),
            support_plan_attention: claim.support_plan_attention().is_some(),
            open_claim: claim.is_open_claim(),
        })
    }
}

/// What is waiting outside the claims, per tenant: ticket requests
/// Freshdesk has not taken yet, and notifications not delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// Ticket requests not opened yet.
    pub tickets_waiting: usize,
    /// Outbox items still to be delivered.
    pub notifications_pending: usize,
    /// Dead letters: notifications that could not be delivered.
    pub notifications_dead: usize,
}

impl std::ops::AddAssign for Waiting {
    fn add_assign(&mut self, other: Self) {
        self.tickets_waiting += other.tickets_waiting;
        self.notifications_pending += other.notifications_pending;
        self.notifications_dead += other.notifications_dead;
    }
}

/// One state's claims: how many, and how long they have stood in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateFigures {
    pub state: LinkState,
    pub count: usize,
    /// The longest any of them has stood in it, in seconds (none when
    /// there are none).
    pub oldest_seconds: Option<i64>,
    /// When that one entered it (to the second).
    #[serde(with = "super::instant::option")]
    pub oldest_since: Option<OffsetDateTime>,
    /// The median time in it, in seconds (of an even count, the lower of
    /// the two middle ones).
    pub median_seconds: Option<i64>,
    /// How many of them entered it in the last 24 hours.
    pub entered_last_day: usize,
}

/// Who must act next, claim by claim (lapsed ones left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NextActors {
    pub reseller: usize,
    pub account_owner: usize,
    pub distributor_ops: usize,
    /// Every step done.
    pub nobody: usize,
}

impl NextActors {
    fn count(&mut self, actor: Option<Responsible>) {
        match actor {
            Some(Responsible::Reseller) => self.reseller += 1,
            Some(Responsible::AccountOwner) => self.account_owner += 1,
            Some(Responsible::DistributorOps) => self.distributor_ops += 1,
            None => self.nobody += 1,
        }
    }

    fn add(&mut self, other: &Self) {
        self.reseller += other.reseller;
        self.account_owner += other.account_owner;
        self.distributor_ops += other.distributor_ops;
        self.nobody += other.nobody;
    }
}

/// The figures of one tenant, or of all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Claims counted (every state, lapsed included).
    pub claims: usize,
    /// Claims registered in the last 24 hours.
    pub registered_last_day: usize,
    /// Every state, in lifecycle order, with none left out.
    pub states: Vec<StateFigures>,
    pub next_actor: NextActors,
    /// Invitations out that expire within three days (or are past their
    /// expiry and not yet seen so).
    pub invitations_expiring: usize,
    pub blocked: usize,
    /// Linked accounts without the support plan group their tier needs
    /// (billing shows negative margins).
    pub support_plan_attention: usize,
    /// Freshdesk tickets opened for these claims.
    pub tickets_open: usize,
    #[serde(flatten)]
    pub waiting: Waiting,
}

impl Figures {
    /// Whether operations have something to do: a claim waiting on them,
    /// an invitation about to expire, a blocked account, a negative
    /// margin, a notification that could not be delivered.
    pub fn needs_operations(&self) -> bool {
        self.next_actor.distributor_ops > 0
            || self.invitations_expiring > 0
            || self.blocked > 0
            || self.support_plan_attention > 0
            || self.waiting.notifications_dead > 0
    }

    /// The figures of one state.
    pub fn state(&self, state: LinkState) -> &StateFigures {
        self.states.iter().find(|s| s.state == state).expect("every state is listed")
    }
}

/// A tenant's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantFigures {
    pub tenant: TenantId,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A claim that has stood long in its state while someone must act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stuck {
    pub account_id: AccountId,
    pub tenant: TenantId,
    pub customer: String,
    pub state: LinkState,
    #[serde(with = "super::instant")]
    pub since: OffsetDateTime,
    pub seconds: i64,
    pub next_actor: Responsible,
}

/// The whole pipeline at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    #[serde(with = "super::instant")]
    pub at: OffsetDateTime,
    pub overall: Figures,
    /// Every tenant with a claim or something waiting, by ID.
    pub tenants: Vec<TenantFigures>,
    /// The claims someone must act on that have stood longest in their
    /// state, longest first (as many as asked for).
    pub stuck: Vec<Stuck>,
}

/// What one tenant's claims add up to, as they are read.
#[derive(Default)]
struct Tally {
    /// When each claim entered its state (Unix seconds), by state
    /// (`LinkState::ALL` order).
    since: [Vec<i64>; LinkState::ALL.len()],
    /// Claims that entered each state in the last 24 hours.
    entered: [usize; LinkState::ALL.len()],
    registered: usize,
    next_actor: NextActors,
    invitations_expiring: usize,
    blocked: usize,
    support_plan_attention: usize,
    tickets_open: usize,
    waiting: Waiting,
}

impl Tally {
    fn figures(&mut self, now: OffsetDateTime) -> Figures {
        let now_ts = now.unix_timestamp();
        let states = LinkState::ALL
            .iter()
            .zip(self.since.iter_mut())
            .zip(self.entered)
            .map(|((&state, since), entered)| {
                let oldest = since.iter().copied().min();
                // The lower middle time in state is the upper middle entry.
                let median = (!since.is_empty()).then(|| {
                    let middle = since.len() - 1 - (since.len() - 1) / 2;
                    *since.select_nth_unstable(middle).1
                });
                StateFigures {
                    state,
                    count: since.len(),
                    oldest_seconds: oldest.map(|s| (now_ts - s).max(0)),
                    oldest_since: oldest.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
                    median_seconds: median.map(|s| (now_ts - s).max(0)),
                    entered_last_day: entered,
                }
            })
            .collect();
        Figures {
            claims: self.since.iter().map(Vec::len).sum(),
            registered_last_day: self.registered,
            states,
            next_actor: self.next_actor,
            invitations_expiring: self.invitations_expiring,
            blocked: self.blocked,
            support_plan_attention: self.support_plan_attention,
            tickets_open: self.tickets_open,
            waiting: self.waiting,
        }
    }

    fn absorb(&mut self, other: &Tally) {
        for (mine, theirs) in self.since.iter_mut().zip(&other.since) {
            mine.extend_from_slice(theirs);
        }
        for (mine, theirs) in self.entered.iter_mut().zip(other.entered) {
            *mine += theirs;
        }
        self.registered += other.registered;
        self.next_actor.add(&other.next_actor);
        self.invitations_expiring += other.invitations_expiring;
        self.blocked += other.blocked;
        self.support_plan_attention += other.support_plan_attention;
        self.tickets_open += other.tickets_open;
        self.waiting += other.waiting;
    }
}

/// A stuck claim in the heap: the most recent `since` on top, so that it
/// is the one to leave when an older one comes.
struct ByRecent(Stuck);

impl PartialEq for ByRecent {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for ByRecent {}
impl PartialOrd for ByRecent {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByRecent {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Ties broken by account and tenant, so the order is stable.
        (self.0.since, self.0.account_id, &self.0.tenant).cmp(&(other.0.since, other.0.account_id, &other.0.tenant))
    }
}

impl Pipeline {
    /// The daily digest for operations (`ops_digest` job): what changed in
    /// the last 24 hours (claims registered; claims that entered each
    /// state, as they stand now: one that moved twice counts in its last
    /// state only) and what needs operations today. None when nothing
    /// does: the digest is then not sent.
    pub fn digest(&self, operations: &TenantId) -> Option<super::Event> {
        let all = &self.overall;
        if !all.needs_operations() {
            return None;
        }
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Some(super::Event::OpsDigest {
            tenant: operations.clone(),
            registered: count(all.registered_last_day),
            entered: all
                .states
                .iter()
                .filter(|s| s.entered_last_day > 0)
                .map(|s| (s.state, count(s.entered_last_day)))
                .collect(),
            operations_next: count(all.next_actor.distributor_ops),
            invitations_expiring: count(all.invitations_expiring),
            blocked: count(all.blocked),
            support_plan_attention: count(all.support_plan_attention),
            notifications_dead: count(all.waiting.notifications_dead),
        })
    }

    /// The pipeline of `claims` (closed ones are passed over) with what
    /// waits for each tenant (`waiting`), at `now`, keeping the `stuck`
    /// claims that have stood longest in their state.
    pub fn of<'a>(
        claims: impl IntoIterator<Item = &'a Account>,
        waiting: &BTreeMap<TenantId, Waiting>,
        now: OffsetDateTime,
        stuck: usize,
    ) -> Self {
        let mut builder = Builder::new(now, stuck);
        for claim in claims {
            builder.add(claim);
        }
        builder.finish(waiting)
    }
}

/// [`Pipeline::of`], one claim at a time (for a reader that hands claims
/// over without keeping them).
pub struct Builder {
    now: OffsetDateTime,
    /// Unix times, as rows keep them.
    day_ago: i64,
    expiring_by: i64,
    tenants: BTreeMap<TenantId, Tally>,
    stuck: BinaryHeap<ByRecent>,
    keep: usize,
}

impl Builder {
    pub fn new(now: OffsetDateTime, stuck: usize) -> Self {
        Self {
            now,
            day_ago: (now - time::Duration::DAY).unix_timestamp(),
            expiring_by: (now + time::Duration::days(EXPIRING_WITHIN_DAYS)).unix_timestamp(),
            tenants: BTreeMap::new(),
            stuck: BinaryHeap::with_capacity(stuck + 1),
            keep: stuck,
        }
    }

    /// Adds one claim (a closed one is passed over).
    pub fn add(&mut self, claim: &Account) {
        if let Some(row) = Row::of(claim) {
            self.add_row(&claim.tenant, &row);
        }
    }

    /// Adds one claim of `tenant`, as its [`Row`] has it.
    pub fn add_row(&mut self, tenant: &TenantId, row: &Row) {
        let tally = match self.tenants.get_mut(tenant) {
            Some(tally) => tally,
            None => self.tenants.entry(tenant.clone()).or_default(),
        };
        let index = LinkState::ALL.iter().position(|s| *s == row.state).expect("every state is in ALL");
        tally.since[index].push(row.since);
        if row.since > self.day_ago {
            tally.entered[index] += 1;
        }
        if row.registered_at.unix_timestamp() > self.day_ago {
            tally.registered += 1;
        }
        tally.tickets_open += row.tickets as usize;
        if row.state == LinkState::Lapsed {
            return;
        }
        tally.next_actor.count(row.next_actor);
        match row.state {
            LinkState::Invited if row.invitation_expires_at.is_some_and(|at| at <= self.expiring_by) => {
                tally.invitations_expiring += 1;
            }
            LinkState::Blocked { .. } => tally.blocked += 1,
            _ => {}
        }
        if row.support_plan_attention {
            tally.support_plan_attention += 1;
        }
        let Some(next_actor) = row.next_actor else { return };
        if self.keep == 0 {
            return;
        }
        let newer_than_all_kept = self.stuck.len() == self.keep
            && self.stuck.peek().is_some_and(|top| {
                (row.since, row.account, tenant) >= (top.0.since.unix_timestamp(), top.0.account_id, &top.0.tenant)
            });
        if newer_than_all_kept {
            return;
        }
        let since = OffsetDateTime::from_unix_timestamp(row.since).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.stuck.push(ByRecent(Stuck {
            account_id: row.account,
            tenant: tenant.clone(),
            customer: row.customer.clone(),
            state: row.state,
            since,
            seconds: (self.now.unix_timestamp() - row.since).max(0),
            next_actor,
        }));
        if self.stuck.len() > self.keep {
            self.stuck.pop();
        }
    }

    pub fn finish(mut self, waiting: &BTreeMap<TenantId, Waiting>) -> Pipeline {
        for (tenant, w) in waiting {
            self.tenants.entry(tenant.clone()).or_default().waiting += *w;
        }
        let mut all = Tally::default();
        let mut tenants = Vec::with_capacity(self.tenants.len());
        for (tenant, mut tally) in self.tenants {
            all.absorb(&tally);
            tenants.push(TenantFigures { tenant, figures: tally.figures(self.now) });
        }
        let mut stuck: Vec<Stuck> = self.stuck.into_iter().map(|s| s.0).collect();
        stuck.sort_by(|a, b| (a.since, a.account_id, &a.tenant).cmp(&(b.since, b.account_id, &b.tenant)));
        Pipeline { at: self.now, overall: all.figures(self.now), tenants, stuck }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BlockReason, HandshakeState, Invitation, SupportPlanGroup, SupportTier, TicketRecord, sample_account,
    };
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-10 12:00 UTC);
    const DAY: time::Duration = time::Duration::DAY;

    fn claim(id: &str, tenant: &str, state: LinkState, since: OffsetDateTime) -> Account {
        let mut a = sample_account(id, tenant, SupportTier::Developer, since);
        a.state = state;
        a.updated_at = since;
        a
    }

    fn invited(id: &str, tenant: &str, requested: OffsetDateTime, expires: OffsetDateTime) -> Account {
        let mut a = claim(id, tenant, LinkState::Invited, requested);
        a.owned_at = Some(requested);
        a.invitation = Some(Invitation {
            handshake_id: "h-0123456789abcdef".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: requested,
            expires_at: expires,
            note: None,
            reminded: vec![],
        });
        a
    }

    #[test]
    fn a_row_holds_what_the_pipeline_and_the_quota_read_and_a_closed_claim_has_none() {
        let registered = claim("123456789012", "acme", LinkState::Registered, NOW - DAY);
        let row = Row::of(&registered).unwrap();
        assert_eq!((row.state, row.since, row.open_claim), (LinkState::Registered, (NOW - DAY).unix_timestamp(), true));
        assert_eq!(row.next_actor, registered.next_actor());
        let lapsed = claim("123456789012", "acme", LinkState::Lapsed, NOW);
        assert!(!Row::of(&lapsed).unwrap().open_claim, "a lapsed claim makes room");
        let owned = invited("123456789012", "acme", NOW - DAY, NOW + DAY);
        let row = Row::of(&owned).unwrap();
        assert_eq!((row.open_claim, row.invitation_expires_at), (false, Some((NOW + DAY).unix_timestamp())));
        let mut closed = registered.clone();
        closed.closed_at = Some(NOW);
        assert_eq!(Row::of(&closed), None);
    }

    #[test]
    fn time_in_state_comes_from_the_field_that_marks_it() {
        let registered = datetime!(2026-12-01 00:00 UTC);
        let mut a = claim("111111111111", "t1", LinkState::Registered, registered);
        // Instructions shown again later: still registered since then.
        a.window_from = Some(registered + DAY);
        a.updated_at = registered + DAY;
        assert_eq!(state_since(&a), registered);
        let b = invited("222222222222", "t1", registered + DAY, registered + 15 * DAY);
        assert_eq!(state_since(&b), registered + DAY);
        let mut c = b.clone();
        c.state = LinkState::InvitationExpired;
        c.updated_at = registered + 16 * DAY;
        assert_eq!(state_since(&c), registered + 15 * DAY);
        let d = claim("333333333333", "t1", LinkState::Blocked { reason: BlockReason::ManagementAccount }, registered);
        assert_eq!(state_since(&d), registered);
    }

    #[test]
    fn counts_times_actors_and_attention_per_tenant_and_overall() {
        let mut linked_wrong = claim("444444444444", "t2", LinkState::Linked, NOW - 10 * DAY);
        linked_wrong.owned_at = Some(NOW - 20 * DAY);
        linked_wrong.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
        linked_wrong.tickets.push(TicketRecord {
            key: "k".into(),
            id: 7,
            url: "https://desk.example/7".into(),
            kind: "support_plan".into(),
            opened_at: NOW - DAY,
        });
        let mut closed = claim("555555555555", "t2", LinkState::Registered, NOW - 90 * DAY);
        closed.closed_at = Some(NOW - DAY);
        let claims = vec![
            claim("111111111111", "t1", LinkState::Registered, NOW - 4 * DAY),
            claim("111111111112", "t1", LinkState::Registered, NOW - 2 * DAY),
            claim("111111111113", "t1", LinkState::Registered, NOW - 6 * DAY),
            claim("111111111114", "t1", LinkState::Registered, NOW - DAY),
            claim("111111111115", "t1", LinkState::Lapsed, NOW - 30 * DAY),
            invited("222222222222", "t1", NOW - 12 * DAY, NOW + 2 * DAY),
            invited("222222222223", "t2", NOW - 5 * DAY, NOW + 10 * DAY),
            claim("333333333333", "t2", LinkState::Blocked { reason: BlockReason::ManagementAccount }, NOW - 3 * DAY),
            claim("666666666666", "t2", LinkState::RoleVerified, NOW - 7 * DAY),
            linked_wrong,
            closed,
        ];
        let waiting = BTreeMap::from([
            ("t2".parse().unwrap(), Waiting { tickets_waiting: 1, notifications_pending: 2, notifications_dead: 1 }),
            ("t3".parse().unwrap(), Waiting { tickets_waiting: 0, notifications_pending: 1, notifications_dead: 0 }),
        ]);
        let p = Pipeline::of(&claims, &waiting, NOW, 3);

        let tenants: Vec<&str> = p.tenants.iter().map(|t| t.tenant.as_str()).collect();
        assert_eq!(tenants, ["t1", "t2", "t3"]);
        let t1 = &p.tenants[0].figures;
        assert_eq!(t1.claims, 6);
        let registered = t1.state(LinkState::Registered);
        assert_eq!(registered.count, 4);
        assert_eq!(registered.oldest_seconds, Some(6 * 86_400));
        assert_eq!(registered.oldest_since, Some(NOW - 6 * DAY));
        // 1, 2, 4, 6 days: the lower middle.
        assert_eq!(registered.median_seconds, Some(2 * 86_400));
        assert_eq!(t1.state(LinkState::Lapsed).count, 1);
        assert_eq!(
            t1.state(LinkState::Linked),
            &StateFigures {
                state: LinkState::Linked,
                count: 0,
                oldest_seconds: None,
                oldest_since: None,
                median_seconds: None,
                entered_last_day: 0,
            }
        );
        // The lapsed claim waits on nobody and is counted nowhere else.
        assert_eq!(t1.next_actor, NextActors { reseller: 0, account_owner: 5, distributor_ops: 0, nobody: 0 });
        assert_eq!(t1.invitations_expiring, 1);
        assert_eq!((t1.blocked, t1.support_plan_attention, t1.tickets_open), (0, 0, 0));
        assert!(t1.needs_operations());

        let t2 = &p.tenants[1].figures;
        assert_eq!(t2.claims, 4, "the closed claim is history");
        assert_eq!((t2.invitations_expiring, t2.blocked, t2.support_plan_attention), (0, 1, 1));
        assert_eq!(t2.tickets_open, 1);
        assert_eq!(t2.waiting, Waiting { tickets_waiting: 1, notifications_pending: 2, notifications_dead: 1 });
        // Verified: the link request is operations' to send; linked with
        // the wrong group: the reseller's to fix; invited: the owner's to
        // accept; blocked with no role: the owner's.
        assert_eq!(t2.next_actor, NextActors { reseller: 1, account_owner: 2, distributor_ops: 1, nobody: 0 });

        let t3 = &p.tenants[2].figures;
        assert_eq!(t3.claims, 0);
        assert!(!t3.needs_operations(), "a pending notification is not operations' to act on");

        let all = &p.overall;
        assert_eq!(all.claims, 10);
        assert_eq!(all.state(LinkState::Invited).count, 2);
        assert_eq!(all.state(LinkState::Invited).median_seconds, Some(5 * 86_400));
        assert_eq!(all.state(LinkState::Invited).oldest_seconds, Some(12 * 86_400));
        assert_eq!(all.next_actor, NextActors { reseller: 1, account_owner: 7, distributor_ops: 1, nobody: 0 });
        assert_eq!((all.invitations_expiring, all.blocked, all.support_plan_attention), (1, 1, 1));
        assert_eq!(all.waiting, Waiting { tickets_waiting: 1, notifications_pending: 3, notifications_dead: 1 });
        assert_eq!(all.states.len(), LinkState::ALL.len());

        // The three stuck longest, longest first: lapsed and closed claims
        // are not stuck.
        let stuck: Vec<(&str, i64)> = p.stuck.iter().map(|s| (s.account_id.as_str(), s.seconds / 86_400)).collect();
        assert_eq!(stuck, [("222222222222", 12), ("444444444444", 10), ("666666666666", 7)]);
    }

    #[test]
    fn the_digest_says_what_changed_in_a_day_and_is_silent_when_operations_have_nothing() {
        let ops: TenantId = "900000000000000100".parse().unwrap();
        let mut fresh = claim("111111111111", "t1", LinkState::Registered, NOW - time::Duration::hours(2));
        fresh.registered_at = NOW - time::Duration::hours(2);
        let old = claim("111111111112", "t1", LinkState::Registered, NOW - 3 * DAY);
        let quiet = Pipeline::of([&fresh, &old], &BTreeMap::new(), NOW, 0);
        assert_eq!(quiet.overall.registered_last_day, 1);
        assert_eq!(quiet.overall.state(LinkState::Registered).entered_last_day, 1);
        assert_eq!(quiet.digest(&ops), None, "nothing waits on operations: silent");

        let verified = claim("222222222222", "t2", LinkState::RoleVerified, NOW - time::Duration::hours(5));
        let blocked =
            claim("333333333333", "t2", LinkState::Blocked { reason: BlockReason::ManagementAccount }, NOW - 2 * DAY);
        let waiting = BTreeMap::from([(
            "t2".parse().unwrap(),
            Waiting { tickets_waiting: 0, notifications_pending: 0, notifications_dead: 2 },
        )]);
        let busy = Pipeline::of([&fresh, &old, &verified, &blocked], &waiting, NOW, 0);
        assert_eq!(
            busy.digest(&ops),
            Some(crate::domain::Event::OpsDigest {
                tenant: ops.clone(),
                // The fresh one and the verified one (registered 5 hours ago).
                registered: 2,
                entered: vec![(LinkState::Registered, 1), (LinkState::RoleVerified, 1)],
                operations_next: 1,
                invitations_expiring: 0,
                blocked: 1,
                support_plan_attention: 0,
                notifications_dead: 2,
            })
        );
    }

    #[test]
    fn an_empty_store_has_every_state_at_zero_and_nothing_for_operations() {
        let p = Pipeline::of(&[], &BTreeMap::new(), NOW, 10);
        assert!(p.tenants.is_empty() && p.stuck.is_empty());
        assert_eq!(p.overall.claims, 0);
        assert!(p.overall.states.iter().all(|s| s.count == 0 && s.median_seconds.is_none()));
        assert!(!p.overall.needs_operations());
    }

    #[test]
    fn the_stuck_list_keeps_the_oldest_whatever_the_order_read() {
        let claims: Vec<Account> = (0..50)
            .map(|i| {
                claim(
                    &format!("{:012}", 100_000_000_000u64 + (i * 37 % 50)),
                    "t",
                    LinkState::Registered,
                    NOW - (i * 37 % 50) as i32 * DAY,
                )
            })
            .collect();
        let p = Pipeline::of(&claims, &BTreeMap::new(), NOW, 4);
        let days: Vec<i64> = p.stuck.iter().map(|s| s.seconds / 86_400).collect();
        assert_eq!(days, [49, 48, 47, 46]);
        let none = Pipeline::of(&claims, &BTreeMap::new(), NOW, 0);
        assert!(none.stuck.is_empty());
    }
}
