//! A tenant: its own settings (where its notifications go, its language,
//! who may run account commands), and where it stands with the distributor
//! (its [`TenantStatus`]), with the rules that move it: who is let in
//! ([`admission`]) and what operations may decide ([`decide`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Event, Lang, ParseError, TenantId, quote_input, trim_pasted};

/// A chat platform ID (a Discord snowflake): a channel, role, server or user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ChatId(u64);

impl ChatId {
    pub fn new(id: u64) -> Option<Self> {
        (id != 0).then_some(Self(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for ChatId {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = trim_pasted(input);
        trimmed
            .parse::<u64>()
            .ok()
            .filter(|_| trimmed.bytes().all(|b| b.is_ascii_digit()))
            .and_then(Self::new)
            .ok_or_else(|| ParseError::ChatId { input: quote_input(input) })
    }
}

impl TryFrom<String> for ChatId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ChatId> for String {
    fn from(value: ChatId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChatId({})", self.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Where the tenant's notifications are posted.
    pub channel: Option<ChatId>,
    /// The tenant's language, used where the user's is not known.
    pub language: Option<Lang>,
    /// The role allowed to run account commands (besides Manage Server).
    pub account_role: Option<ChatId>,
}

impl TenantId {
    /// The tenant a Discord server is.
    pub fn of_server(server: ChatId) -> Self {
        server.to_string().parse().expect("a positive integer is a valid tenant")
    }

    /// The Discord server this tenant is, when it is one (tenants named by
    /// the CLI need not be).
    pub fn server(&self) -> Option<ChatId> {
        self.as_str().parse().ok().filter(|id: &ChatId| id.to_string() == self.as_str())
    }
}

/// Where a tenant stands with the distributor. A tenant orglink has never
/// recorded has no state at all (`None` wherever a state is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum TenantState {
    /// Its first command was held: operations approve or deny it.
    Pending,
    /// Served.
    Approved,
    /// Operations said no: its commands are refused.
    Denied,
    /// Served no more for now: its commands are refused, its notifications
    /// wait and no job works for it; its data stays.
    Suspended,
}

impl TenantState {
    pub const ALL: [TenantState; 4] = [Self::Pending, Self::Approved, Self::Denied, Self::Suspended];

    /// The stable name templates, JSON output and the store use.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Suspended => "suspended",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether orglink holds the tenant's notifications (they go out once
    /// it is resumed) and its jobs leave its accounts alone.
    pub fn on_hold(self) -> bool {
        match self {
            Self::Suspended => true,
            Self::Pending | Self::Approved | Self::Denied => false,
        }
    }
}

impl From<TenantState> for &'static str {
    fn from(state: TenantState) -> Self {
        state.code()
    }
}

impl TryFrom<String> for TenantState {
    type Error = String;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::from_code(&code).ok_or_else(|| format!("unknown tenant state {code:?}"))
    }
}

/// A tenant's state and since when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantStatus {
    pub state: TenantState,
    #[serde(with = "super::instant")]
    pub since: OffsetDateTime,
}

/// How a server that adds orglink becomes a tenant (`tenants.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantPolicy {
    /// Its first command waits for the distributor's approval.
    #[default]
    Approval,
    /// Its first command approves it.
    Open,
}

impl TenantPolicy {
    pub fn code(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Open => "open",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Approval, Self::Open].into_iter().find(|p| p.code() == code.trim())
    }
}

/// What operations decide about a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantDecision {
    Approve,
    Deny,
    Suspend,
    Resume,
}

impl TenantDecision {
    pub const ALL: [TenantDecision; 4] = [Self::Approve, Self::Deny, Self::Suspend, Self::Resume];

    pub fn code(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        }
    }
}

/// Why a tenant's command is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Waiting for the distributor's approval.
    Pending,
    Denied,
    Suspended,
}

/// What a tenant's command meets before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Served: it runs.
    Admitted,
    /// Seen for the first time (or pending when the policy is open): this
    /// status is recorded with its events; the command runs if it is
    /// approved, and is refused as pending otherwise.
    Enrol { status: TenantStatus, events: Vec<Event> },
    /// Not run, and nothing recorded.
    Refused(Refusal),
}

impl Admission {
    /// The rule at the door: what a command of `tenant`, whose status is
    /// `status`, meets under `policy` at `at`; `by` is the member who sent it,
    /// named to operations when it makes the tenant pending.
    pub fn of(
        tenant: &TenantId,
        status: Option<&TenantStatus>,
        policy: TenantPolicy,
        by: Option<ChatId>,
        at: OffsetDateTime,
    ) -> Admission {
        use TenantState::{Approved, Denied, Pending, Suspended};
        let enrol = |state, event| Admission::Enrol { status: TenantStatus { state, since: at }, events: vec![event] };
        match (status.map(|s| s.state), policy) {
            (Some(Approved), _) => Admission::Admitted,
            (None, TenantPolicy::Approval) => enrol(Pending, Event::TenantPending { tenant: tenant.clone(), by }),
            // Under the open policy a server is in from its first command; one
            // held before the policy changed is let in too.
            (None | Some(Pending), TenantPolicy::Open) => {
                enrol(Approved, Event::TenantAdmitted { tenant: tenant.clone() })
            }
            (Some(Pending), TenantPolicy::Approval) => Admission::Refused(Refusal::Pending),
            (Some(Denied), _) => Admission::Refused(Refusal::Denied),
            (Some(Suspended), _) => Admission::Refused(Refusal::Suspended),
        }
    }
}

/// What a decision does to a tenant's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The new status, and the events the change causes.
    Changed { status: TenantStatus, events: Vec<Event> },
    /// The tenant is where the decision leads already: nothing to record.
    Unchanged(TenantStatus),
}

/// A decision the tenant's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a tenant that is {}", decision.code(), from.map_or("unknown", TenantState::code))]
pub struct IllegalDecision {
    /// `None`: orglink has not recorded the tenant.
    pub from: Option<TenantState>,
    pub decision: TenantDecision,
}

impl TenantDecision {
    /// The rule operations decide by: approve a server never seen, pending or
    /// denied; deny one never seen or pending; suspend an approved one and
    /// resume a suspended one. Asking for where the tenant is already changes
    /// nothing; anything else is refused (an approved tenant is suspended, not
    /// denied; a suspended one is resumed, not approved).
    pub fn apply(
        self,
        tenant: &TenantId,
        current: Option<&TenantStatus>,
        at: OffsetDateTime,
    ) -> Result<Decided, IllegalDecision> {
        let decision = self;
        use TenantDecision::{Approve, Deny, Resume, Suspend};
        use TenantState::{Approved, Denied, Pending, Suspended};
        enum Step {
            To(TenantState),
            Stay,
            Illegal,
        }
        let step = match (current.map(|s| s.state), decision) {
            (Some(Approved), Approve | Resume) | (Some(Denied), Deny) | (Some(Suspended), Suspend) => Step::Stay,
            (None | Some(Pending | Denied), Approve) => Step::To(Approved),
            (None | Some(Pending), Deny) => Step::To(Denied),
            (Some(Approved), Suspend) => Step::To(Suspended),
            (Some(Suspended), Resume) => Step::To(Approved),
            (Some(Approved | Suspended), Deny)
            | (Some(Suspended), Approve)
            | (None | Some(Pending | Denied), Suspend | Resume) => Step::Illegal,
        };
        let illegal = IllegalDecision { from: current.map(|s| s.state), decision };
        match step {
            Step::Stay => current.copied().map(Decided::Unchanged).ok_or(illegal),
            Step::Illegal => Err(illegal),
            Step::To(state) => {
                let tenant = tenant.clone();
                let event = match decision {
                    Approve => Event::TenantApproved { tenant },
                    Deny => Event::TenantDenied { tenant },
                    Suspend => Event::TenantSuspended { tenant },
                    Resume => Event::TenantResumed { tenant },
                };
                Ok(Decided::Changed { status: TenantStatus { state, since: at }, events: vec![event] })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);
    const EARLIER: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

    fn tenant() -> TenantId {
        "900000000000000501".parse().unwrap()
    }

    fn status(state: TenantState) -> TenantStatus {
        TenantStatus { state, since: EARLIER }
    }

    #[test]
    fn tenant_ids_of_servers_round_trip_and_others_are_no_server() {
        let server: ChatId = "900000000000000501".parse().unwrap();
        assert_eq!(TenantId::of_server(server).server(), Some(server));
        for not_a_server in ["acme", "0", "0900000000000000501", "18446744073709551616"] {
            assert_eq!(not_a_server.parse::<TenantId>().unwrap().server(), None, "{not_a_server}");
        }
    }

    #[test]
    fn states_and_policies_are_named_by_their_codes() {
        for state in TenantState::ALL {
            assert_eq!(TenantState::from_code(state.code()), Some(state));
        }
        assert_eq!(TenantPolicy::from_code(" open "), Some(TenantPolicy::Open));
        assert_eq!(TenantPolicy::from_code("approval"), Some(TenantPolicy::Approval));
        assert_eq!(TenantPolicy::from_code("closed"), None);
        assert_eq!(TenantPolicy::default(), TenantPolicy::Approval);
        let only_suspended: Vec<_> = TenantState::ALL.into_iter().filter(|s| s.on_hold()).collect();
        assert_eq!(only_suspended, [TenantState::Suspended]);
    }

    #[test]
    fn the_door_holds_new_servers_under_approval_and_lets_them_in_when_open() {
        use TenantPolicy::{Approval, Open};
        use TenantState::{Approved, Denied, Pending, Suspended};
        let t = tenant();
        let by = ChatId::new(7);
        let enrol = |state, event| Admission::Enrol { status: TenantStatus { state, since: AT }, events: vec![event] };
        let rows: [(Option<TenantState>, TenantPolicy, Admission); 10] = [
            (None, Approval, enrol(Pending, Event::TenantPending { tenant: t.clone(), by })),
            (None, Open, enrol(Approved, Event::TenantAdmitted { tenant: t.clone() })),
            (Some(Pending), Approval, Admission::Refused(Refusal::Pending)),
            (Some(Pending), Open, enrol(Approved, Event::TenantAdmitted { tenant: t.clone() })),
            (Some(Approved), Approval, Admission::Admitted),
            (Some(Approved), Open, Admission::Admitted),
            (Some(Denied), Approval, Admission::Refused(Refusal::Denied)),
            (Some(Denied), Open, Admission::Refused(Refusal::Denied)),
            (Some(Suspended), Approval, Admission::Refused(Refusal::Suspended)),
            (Some(Suspended), Open, Admission::Refused(Refusal::Suspended)),
        ];
        for (state, policy, expected) in rows {
            let current = state.map(status);
            assert_eq!(Admission::of(&t, current.as_ref(), policy, by, AT), expected, "{state:?} {policy:?}");
        }
    }

    #[test]
    fn operations_decide_by_the_table() {
        use TenantDecision::{Approve, Deny, Resume, Suspend};
        use TenantState::{Approved, Denied, Pending, Suspended};
        let t = tenant();
        // (from, decision, to; Ok(None): unchanged; Err: refused)
        type To = Result<Option<TenantState>, ()>;
        let changed = |state| Ok(Some(state));
        let unchanged = Ok(None);
        let refused = Err(());
        let rows: [(Option<TenantState>, TenantDecision, To); 20] = [
            (None, Approve, changed(Approved)),
            (None, Deny, changed(Denied)),
            (None, Suspend, refused),
            (None, Resume, refused),
            (Some(Pending), Approve, changed(Approved)),
            (Some(Pending), Deny, changed(Denied)),
            (Some(Pending), Suspend, refused),
            (Some(Pending), Resume, refused),
            (Some(Approved), Approve, unchanged),
            (Some(Approved), Deny, refused),
            (Some(Approved), Suspend, changed(Suspended)),
            (Some(Approved), Resume, unchanged),
            (Some(Denied), Approve, changed(Approved)),
            (Some(Denied), Deny, unchanged),
            (Some(Denied), Suspend, refused),
            (Some(Denied), Resume, refused),
            (Some(Suspended), Approve, refused),
            (Some(Suspended), Deny, refused),
            (Some(Suspended), Suspend, unchanged),
            (Some(Suspended), Resume, changed(Approved)),
        ];
        for (from, decision, expected) in rows {
            let current = from.map(status);
            let got = match decision.apply(&t, current.as_ref(), AT) {
                Ok(Decided::Changed { status, events }) => {
                    assert_eq!(status.since, AT, "a change starts now");
                    let event = match decision {
                        Approve => Event::TenantApproved { tenant: t.clone() },
                        Deny => Event::TenantDenied { tenant: t.clone() },
                        Suspend => Event::TenantSuspended { tenant: t.clone() },
                        Resume => Event::TenantResumed { tenant: t.clone() },
                    };
                    assert_eq!(events, [event], "{from:?} {decision:?}");
                    Ok(Some(status.state))
                }
                Ok(Decided::Unchanged(kept)) => {
                    assert_eq!(Some(kept), current, "the status and its date stay");
                    Ok(None)
                }
                Err(e) => {
                    assert_eq!((e.from, e.decision), (from, decision));
                    Err(())
                }
            };
            assert_eq!(got, expected, "{from:?} {decision:?}");
        }
    }

    #[test]
    fn chat_ids_are_positive_integers() {
        assert_eq!("900000000000000001".parse::<ChatId>().unwrap().get(), 900000000000000001);
        for bad in ["", "0", "-1", "+5", "1e5", "abc", "18446744073709551616"] {
            assert!(bad.parse::<ChatId>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(id in 1u64..) {
            prop_assert_eq!(id.to_string().parse::<ChatId>().unwrap().get(), id);
        }

        #[test]
        fn never_panics(input in "\\PC*") {
            let _ = input.parse::<ChatId>();
        }
    }
}
