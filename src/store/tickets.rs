//! Tickets waiting for Freshdesk. They are requested with the change that
//! needs them (see `accounts`); here they are read and rescheduled.

use super::{Store, StoreError, codec, read};
use crate::domain::TicketRequest;

impl Store {
    /// Tickets waiting to be opened, in key order.
    pub fn ticket_requests(&self) -> Result<Vec<TicketRequest>, StoreError> {
        self.ticket_requests
            .iter()
            .map(|e| {
                let (k, v) = e?;
                read("ticket request", &k, &v)
            })
            .collect()
    }

    /// How many tickets wait to be opened (none decoded).
    pub fn ticket_request_count(&self) -> usize {
        self.ticket_requests.len()
    }

    /// Stores `request` as it now is (waiting for its next try).
    pub fn put_ticket_request(&self, request: &TicketRequest) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.durable(self.ticket_requests.insert(request.key.as_bytes(), codec::encode(request)).map_err(Into::into))?;
        Ok(())
    }

    /// Forgets a request that needs no record (a note was added, or its
    /// account is gone).
    pub fn ticket_request_done(&self, key: &str) -> Result<(), StoreError> {
        let _writing = self.writing();
        self.durable(self.ticket_requests.remove(key.as_bytes()).map_err(Into::into))?;
        Ok(())
    }
}
