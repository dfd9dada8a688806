//! Fuzzing every parser of untrusted input with proptest: the values users
//! type, the custom IDs that come back from Discord's buttons and modals,
//! and whole interaction bodies (Discord's own, mutated field by field, and
//! arbitrary bytes). Nothing may panic, and what parses must print back to
//! itself.
//!
//! `ORGLINK_FUZZ_CASES=N` sets the cases per property (default 2,000; the
//! closing note of issue 8 gives a run of 1,000,000).

use crate::harness::discord as discord_harness;

use std::str::FromStr;
use std::sync::Arc;

use discord_harness::fixture;
use orglink::app::{App, Settings};
use orglink::clock::SystemClock;
use orglink::discord::inbound::CustomId;
use orglink::discord::{Bot, OpsSpace};
use orglink::domain::*;
use orglink::store::Store;
use orglink::templates::Templates;
use proptest::prelude::*;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("ORGLINK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// Text as people paste it: ARN-ish, ID-ish, with invisible characters.
fn pasted() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ 0-9a-zA-Z:/@._+=,\\-\u{a0}\u{200b}\u{feff}\n\t]{0,90}",
        "(arn:aws[a-z\\-]{0,8}:(iam|sts)::[0-9 \\-]{0,16}:(role|user|assumed-role)/[A-Za-z0-9/+=,.@_\\-]{0,70}){1,2}",
        "[0-9]{0,4}[ \\-]?[0-9]{0,4}[ \\-]?[0-9]{0,6}",
        "ol:[a-z]{0,6}:[0-9a-z:]{0,14}",
    ]
}

/// Parses `input` as `T`; what parses prints back to an equal value.
fn round_trip<T>(input: &str)
where
    T: FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = input.parse::<T>() {
        let again: T = value.to_string().parse().unwrap_or_else(|_| panic!("{value:?} does not parse back"));
        assert_eq!(again, value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn typed_values_never_panic_and_round_trip(input in pasted()) {
        round_trip::<AccountId>(&input);
        round_trip::<Email>(&input);
        round_trip::<RoleArn>(&input);
        round_trip::<ExternalId>(&input);
        let _ = input.parse::<ExternalIdPrefix>();
        round_trip::<TenantId>(&input);
        round_trip::<CustomerName>(&input);
        round_trip::<PriceBookName>(&input);
        round_trip::<RoleName>(&input);
        round_trip::<RoleDescription>(&input);
        round_trip::<InvitationNote>(&input);
        round_trip::<TicketReason>(&input);
        round_trip::<ChatId>(&input);
        round_trip::<HandshakeId>(&input);
        let _ = input.parse::<SupportTier>();
        let _ = input.parse::<SupportPlanGroup>();
        let _ = input.parse::<AccountKind>();
        let _ = input.parse::<Lang>();
        let _ = input.parse::<ProbePlan>();
        let _ = AccountId::from_bytes(input.as_bytes());
        // A refusal quotes at most 80 characters of the input, invisible ones
        // escaped (`\u{200b}`), however long or strange it was.
        if let Err(e) = input.parse::<AccountId>() {
            prop_assert!(e.to_string().chars().count() < 80 * 10 + 100);
        }
    }

    #[test]
    fn custom_ids_are_exactly_what_orglink_makes(input in pasted()) {
        if let Some(id) = CustomId::parse(&input) {
            prop_assert_eq!(id.encode(), input);
        }
    }
}

fn bot() -> Arc<Bot> {
    let app = App::new(Store::temporary().unwrap(), Settings::default(), Arc::new(SystemClock));
    let ops = OpsSpace { guild: Some("900000000000000100".parse().unwrap()), role: None };
    Arc::new(Bot::new(app, Templates::embedded(), ops, Lang::En).unwrap())
}

/// A JSON value of any shape, small.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        pasted().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        Just(json!([])),
        Just(json!({})),
    ]
}

const FIXTURES: [&str; 6] = [
    "autocomplete_instructions",
    "command_link_account_es419",
    "command_status_dm",
    "component_button",
    "modal_submit_role_arn",
    "ping",
];

/// The places of an interaction body worth changing.
const PLACES: [&str; 14] = [
    "/type",
    "/guild_id",
    "/locale",
    "/member/permissions",
    "/member/roles",
    "/member/user/id",
    "/data/name",
    "/data/custom_id",
    "/data/options/0/value",
    "/data/options/1/value",
    "/data/options/0/name",
    "/data/components/0/components/0/value",
    "/data/component_type",
    "/token",
];

fn set(value: &mut Value, pointer: &str, leaf: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() { Some(value) } else { value.pointer_mut(parent) };
    match parent {
        Some(Value::Object(map)) => {
            map.insert(key.to_owned(), leaf);
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = leaf;
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_interactions_get_an_answer_never_a_panic(
        which in 0..FIXTURES.len(),
        changes in prop::collection::vec((0..PLACES.len(), leaf()), 1..4),
    ) {
        thread_local! { static BOT: Arc<Bot> = bot(); }
        let mut body = fixture(FIXTURES[which]);
        for (place, leaf) in changes {
            set(&mut body, PLACES[place], leaf);
        }
        if let Ok(interaction) = serde_json::from_value::<serenity::all::Interaction>(body) {
            let response = BOT.with(|bot| bot.respond(&interaction));
            // Whatever came in, the answer serialises for Discord.
            prop_assert!(serde_json::to_string(&response.immediate).is_ok());
        }
    }

    #[test]
    fn arbitrary_bytes_are_not_an_interaction(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<serenity::all::Interaction>(&bytes);
    }
}
