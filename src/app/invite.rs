//! Sending the AWS Organizations invitation: operations' command, the
//! automatic mode, and the queue AWS's daily quota fills.

use super::{Actor, App, AppError, InviteRefusedView, InvitedView, Message, Reply, Tone, UserError};
use crate::aws::organizations::InviteError;
use crate::domain::{
    AccountId, BlockReason, ConstraintReason, Event, Invitation, InvitationNote, QueuedInvitation, Transition,
};

impl App {
    pub(super) async fn invite(
        &self,
        actor: &Actor,
        id: AccountId,
        note: Option<InvitationNote>,
    ) -> Result<Reply, AppError> {
        let account = self.load(actor, id)?;
        if !account.ready_to_invite() {
            return Err(UserError::CannotInvite { account: id, state: account.state }.into());
        }
        let Some(distributor) = &self.distributor else {
            return Err(anyhow::anyhow!("invitations need AWS Organizations, which is not set up here").into());
        };
        let (handshake, adopted) = match distributor.invite(id, note.as_ref().map(|n| n.as_str())).await {
            Ok(handshake) => (handshake, false),
            // An open invitation exists already (sent by hand, or by a run
            // that crashed before recording it): adopt it.
            Err(InviteError::Duplicate) => {
                let (open, _) =
                    distributor.invitations().await.map_err(|e| anyhow::anyhow!("listing invitations: {e}"))?;
                let found = open.into_iter().find(|h| h.accounts.contains(&id) && h.state.is_open());
                (found.ok_or_else(|| anyhow::anyhow!("AWS reports a duplicate invitation it does not list"))?, true)
            }
            Err(InviteError::Constraint { reason: ConstraintReason::HandshakeRateLimitExceeded }) => {
                let by = actor.id.clone();
                let (account, _) = self
                    .update_off_thread(actor, id, "invitation_queued", move |a, now| {
                        let queued = QueuedInvitation { note: note.clone(), queued_at: now, by: by.clone() };
                        a.queued_invitation = Some(queued);
                        Ok(vec![Event::InvitationQueued { account: id }])
                    })
                    .await?;
                return Ok(Reply::new(Tone::Warning, vec![Message::InvitationQueued(account.into())]));
            }
            Err(InviteError::Constraint { reason }) => {
                if reason == ConstraintReason::AlreadyInAnOrganization {
                    self.update_off_thread(actor, id, "invite_refused", move |a, now| {
                        let state = a.state;
                        a.apply(&Transition::Blocked { reason: BlockReason::MemberOfAnotherOrganization }, now)
                            .map_err(|_| UserError::CannotInvite { account: id, state })
                    })
                    .await?;
                }
                let view = InviteRefusedView { account: id, reason: reason.code().to_owned(), detail: None };
                return Ok(Reply::new(Tone::Error, vec![Message::InviteRefused(view)]).refused());
            }
            Err(InviteError::Unavailable { detail }) => {
                let view = InviteRefusedView { account: id, reason: "unavailable".into(), detail: Some(detail) };
                return Ok(Reply::new(Tone::Error, vec![Message::InviteRefused(view)]).refused());
            }
        };
        let invitation = Invitation {
            handshake_id: handshake.id,
            state: handshake.state,
            requested_at: handshake.requested_at,
            expires_at: handshake.expires_at,
            note: note.map(String::from),
            reminded: Vec::new(),
        };
        let (account, _) = self
            .update_off_thread(actor, id, "invite", move |a, now| {
                let state = a.state;
                a.invitation_sent(invitation.clone(), now).map_err(|_| UserError::CannotInvite { account: id, state })
            })
            .await?;
        let view = InvitedView { account: account.into(), adopted };
        Ok(Reply::new(Tone::Success, vec![Message::Invited(Box::new(view.clone()))]).with_data(view))
    }

    /// Automatic mode: the invitation follows a verification, under the
    /// same rules as one sent by operations.
    pub(super) async fn auto_invite(&self, id: AccountId) -> Vec<Message> {
        let system = Actor::system("auto:invite");
        match Box::pin(self.invite(&system, id, None)).await {
            Ok(invited) => invited.messages,
            Err(AppError::User(e)) => vec![Message::Error(e)],
            Err(AppError::Internal(e)) => {
                tracing::error!(error = format!("{e:#}"), "the automatic invitation failed");
                vec![Message::Internal]
            }
        }
    }
}
