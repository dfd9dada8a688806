//! Operations look at the notifications waiting to go out and at those
//! that could not be delivered, put dead letters back in the outbox, and
//! drop what should never go, with a reason, in the audit log.

use std::collections::BTreeMap;

use super::command::Replay;
use super::{Actor, App, AppError, Message, Reply, Tone, UserError};
use super::{OutboxDroppedView, OutboxEntry, OutboxReplayedView, OutboxView};
use crate::domain::outbox::{self, OutboxId, OutboxRefusal, Queue};
use crate::domain::{Audience, CorrectionReason, Event, TenantId};
use crate::store::{AuditEntry, DeadLetter, DropRecord, OutboxItem, TenantAuditEntry};

fn audience(a: Audience) -> &'static str {
    match (a.tenant, a.ops) {
        (true, true) => "both",
        (true, false) => "tenant",
        (false, true) => "ops",
        (false, false) => "nobody",
    }
}

fn entry(item: &OutboxItem, queue: Queue) -> OutboxEntry {
    OutboxEntry {
        id: OutboxId::new(item.id),
        queue,
        event: item.event.code().to_owned(),
        account_id: item.event.account(),
        tenant: item.tenant.to_string(),
        audience: audience(item.audience),
        queued_at: item.created_at,
        attempts: item.attempts,
        next_attempt_at: item.next_attempt_at,
        last_error: item.last_error.clone(),
        blocked: None,
        dead_at: None,
        reason: None,
    }
}

fn dead_entry(dead: &DeadLetter) -> OutboxEntry {
    OutboxEntry { dead_at: Some(dead.at), reason: Some(dead.reason.clone()), ..entry(&dead.item, Queue::Dead) }
}

impl App {
    /// The outbox (or the dead letters), oldest first; each pending item
    /// with what stops it, as the domain judges it from its tenant's
    /// settings and status.
    pub(super) fn list_outbox(&self, dead: bool) -> Result<Reply, AppError> {
        let items = if dead {
            self.store.dead_letters()?.iter().map(dead_entry).collect()
        } else {
            // Each tenant's channel and hold, read once.
            let mut tenants: BTreeMap<TenantId, (bool, bool)> = BTreeMap::new();
            let mut items = Vec::new();
            for item in self.store.outbox()? {
                let (has_channel, on_hold) = match tenants.get(&item.tenant) {
                    Some(found) => *found,
                    None => {
                        let has_channel = self.store.tenant_settings(&item.tenant)?.channel.is_some();
                        let on_hold = self.store.tenant_status(&item.tenant)?.is_some_and(|s| s.state.on_hold());
                        tenants.insert(item.tenant.clone(), (has_channel, on_hold));
                        (has_channel, on_hold)
                    }
                };
                items.push(OutboxEntry {
                    blocked: outbox::blocked(item.audience, has_channel, on_hold),
                    ..entry(&item, Queue::Pending)
                });
            }
            items
        };
        let view = OutboxView { dead, items };
        Ok(Reply::new(Tone::Info, vec![Message::Outbox(view.clone())]).with_data(view))
    }

    /// Where item `id` is: waiting, given up on, or nowhere.
    fn find_outbox_item(&self, id: OutboxId) -> Result<(OutboxItem, Option<DeadLetter>), AppError> {
        if let Some(item) = self.store.outbox()?.into_iter().find(|i| i.id == id.get()) {
            return Ok((item, None));
        }
        match self.store.dead_letters()?.into_iter().find(|d| d.item.id == id.get()) {
            Some(dead) => Ok((dead.item.clone(), Some(dead))),
            None => Err(UserError::OutboxItemNotFound { id }.into()),
        }
    }

    /// Dead letters back in the outbox, as new: the notifier tries them at
    /// once when it runs (the server wakes it after every command).
    pub(super) fn replay_outbox(&self, which: Replay) -> Result<Reply, AppError> {
        let replayed: Vec<OutboxId> = match which {
            Replay::One(id) => {
                let (_, dead) = self.find_outbox_item(id)?;
                let queue = if dead.is_some() { Queue::Dead } else { Queue::Pending };
                outbox::may_replay(queue).map_err(|refusal| match refusal {
                    OutboxRefusal::NotDead => UserError::NotADeadLetter { id },
                })?;
                if self.store.requeue_dead_letters(|d| d.item.id == id.get())? == 0 {
                    // Replayed or dropped by someone else meanwhile.
                    return Err(UserError::OutboxItemNotFound { id }.into());
                }
                vec![id]
            }
            Replay::All => {
                let ids: Vec<OutboxId> = self.store.dead_letters()?.iter().map(|d| OutboxId::new(d.item.id)).collect();
                self.store.requeue_dead_letters(|d| ids.contains(&OutboxId::new(d.item.id)))?;
                ids
            }
        };
        let view = OutboxReplayedView { all: matches!(which, Replay::All), replayed };
        let tone = if view.replayed.is_empty() { Tone::Info } else { Tone::Success };
        Ok(Reply::new(tone, vec![Message::OutboxReplayed(view.clone())]).with_data(view))
    }

    /// Removes a waiting or undelivered notification; the drop is audited
    /// (who, when, why) in its account's history, or, for a tenant's own
    /// event, in the tenant's audit log.
    pub(super) fn drop_outbox(
        &self,
        actor: &Actor,
        id: OutboxId,
        reason: &CorrectionReason,
    ) -> Result<Reply, AppError> {
        let (item, dead) = self.find_outbox_item(id)?;
        let queue = if dead.is_some() { Queue::Dead } else { Queue::Pending };
        outbox::may_drop(queue).map_err(|refusal| match refusal {
            OutboxRefusal::NotDead => UserError::NotADeadLetter { id },
        })?;
        let at = self.clock.now();
        let event = Event::NotificationDropped {
            account: item.event.account(),
            tenant: item.tenant.clone(),
            dropped: item.event.code().to_owned(),
            reason: reason.to_string(),
        };
        let (record, recorded_in) = match item.event.account() {
            Some(account) => (
                DropRecord::Account(AuditEntry {
                    at,
                    actor: actor.id.clone(),
                    account,
                    action: "outbox_drop".to_owned(),
                    events: vec![event],
                    tenant: Some(item.tenant.clone()),
                }),
                "account",
            ),
            None => (
                DropRecord::Tenant(TenantAuditEntry {
                    at,
                    actor: actor.id.clone(),
                    tenant: item.tenant.clone(),
                    settings: self.store.tenant_settings(&item.tenant)?,
                    status: None,
                    events: vec![event],
                }),
                "tenant",
            ),
        };
        if !self.store.drop_outbox_item(&item, dead.is_some(), &record)? {
            return Err(UserError::OutboxItemNotFound { id }.into());
        }
        let item = match &dead {
            Some(dead) => dead_entry(dead),
            None => entry(&item, Queue::Pending),
        };
        let view = OutboxDroppedView { item, reason: reason.to_string(), recorded_in };
        Ok(Reply::new(Tone::Success, vec![Message::OutboxDropped(view.clone())]).with_data(view))
    }
}
