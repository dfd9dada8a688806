//! The sled store. It persists what it is given and decides nothing: a
//! change of an account arrives with its events, its effects (decided by
//! `domain::effects`) and its due times, and lands whole in one transaction,
//! flushed to disk before anyone is told.
//!
//! One file per concern: [`accounts`] (the records, their indexes and the
//! due index the jobs read), [`audit`], [`outbox`] (notifications, their
//! deliveries and dead letters), [`tickets`] (requests waiting for
//! Freshdesk), [`tenants`] (settings and status), [`quotas`] (tenants' daily
//! counts and the notices operations had of them). [`codec`] encodes values; [`migrate`] brings an
//! older store up to [`SCHEMA_VERSION`] at open.

mod accounts;
mod audit;
pub mod backup;
pub mod check;
pub mod codec;
mod migrate;
mod outbox;
mod pipeline;
mod quotas;
mod tenants;
#[cfg(test)]
mod tests;
mod tickets;

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sled::Tree;

pub use accounts::{Audit, By, Change, ClaimChanges, Counted, DueAccounts, InsertConflict, UpdateError};
pub use audit::AuditEntry;
pub use codec::DecodeError;
pub use outbox::{DeadLetter, DropRecord, OutboxItem, Undelivered};
pub use tenants::{TenantAuditEntry, TenantRecord};

/// Bumped whenever the stored encoding changes; [`migrate`] reads every
/// older version.
pub const SCHEMA_VERSION: u32 = 4;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// Set once the outbox index and counts have been made (`outbox::OutboxTx`).
const OUTBOX_INDEX_KEY: &[u8] = b"outbox_index";
/// sled's page cache: the hot accounts, and a bounded footprint. sled
/// counts less than its nodes hold: 4 MiB is about 11 MiB of heap, 8 MiB
/// about 23 (heaptrack, 100,000 accounts), and `orglink serve` at 100,000
/// accounts must stay within 64 MiB.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// sled's log segments for a new store: 2 MiB ones keep the file within
/// about three times the live data (2 KiB an account at 100,000; sled's
/// default 512 KiB took 2.5 KiB, 64 KiB 2.9 KiB). sled cannot change it
/// later: a store keeps the size it was created with.
const SEGMENT_BYTES: usize = 2 * 1024 * 1024;
/// How long opening waits for another process to release the store.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The I/O error is in the message and not a source: shown with its
    /// sources (`{:#}`), it was said twice.
    #[error("cannot prepare the data directory {path}: {error}")]
    Directory { path: PathBuf, error: std::io::Error },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    /// A directory that holds something else: orglink touches nothing in it.
    #[error("{path} is not empty and is not an orglink store (it holds {}): orglink keeps its data in a directory of its own", found.join(", "))]
    Foreign { path: PathBuf, found: Vec<String> },
    /// A command that only reads found nothing to read, and created nothing.
    #[error("no orglink store at {path}")]
    Missing { path: PathBuf },
    #[error("the store failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("another orglink process is using the data directory {path}: stop it, or point this one elsewhere")]
    Locked { path: PathBuf },
    #[error(
        "the data directory holds schema version {found}, this orglink reads versions 1 to {expected}: \
         use the orglink release that wrote it, or restore a backup"
    )]
    SchemaMismatch { found: u32, expected: u32 },
    #[error("the data directory holds data without a schema version: is it an orglink data directory?")]
    UnknownData,
    #[error("the stored {what} under key {key} could not be read: {source}")]
    Corrupt { what: &'static str, key: String, source: DecodeError },
}

/// One stored key and value, with the name of its tree.
pub type Record = (Vec<u8>, Vec<u8>, Vec<u8>);

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    accounts: Tree,
    by_tenant: Tree,
    external_ids: Tree,
    /// (job, due time, account) → nothing: what each job must look at.
    due: Tree,
    audit: Tree,
    outbox: Tree,
    /// When each outbox item is next due, and its tenant
    /// (`outbox::OutboxTx`).
    outbox_index: Tree,
    /// Tenant → how many of its outbox items wait.
    outbox_counts: Tree,
    delivered: Tree,
    dead_letters: Tree,
    tenants: Tree,
    /// Tenant → its status (schema 3).
    tenant_status: Tree,
    tenant_audit: Tree,
    ticket_requests: Tree,
    /// Tenants' daily quota counts, and when operations last heard of each
    /// tenant over each quota.
    quotas: Tree,
    /// The pipeline's rows, by tenant (`store::pipeline`).
    pipeline: Tree,
    /// Every write holds it shared ([`Store::writing`]); a backup holds it
    /// alone while it reads every tree, so what it reads is one moment of
    /// the store, not trees from different moments (sled's iterators see
    /// each tree as it goes).
    gate: std::sync::Arc<std::sync::RwLock<()>>,
}

/// Reads a stored value; a value that does not decode is a typed error
/// that names what and where.
fn read<T: DeserializeOwned>(what: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|source| StoreError::Corrupt { what, key: show_key(key), source })
}

/// A key as an error shows it: text where it is text, else hex.
fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => hex::encode(key),
    }
}

impl Store {
    /// Opens the store in `dir`, or creates it when `dir` does not exist or
    /// is empty; the directory and what sled writes in it are made
    /// owner-only. A directory that holds anything else is refused before
    /// anything in it is touched. An older schema is migrated in place.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        match survey(dir)? {
            Found::Foreign(found) => return Err(StoreError::Foreign { path: dir.to_owned(), found }),
            Found::Nothing | Found::Empty | Found::Store => {}
        }
        Self::open_in(dir)
    }

    /// Opens the store in `dir` only if one is there: for commands that only
    /// read, which have nothing to show in a new store and must not leave
    /// one behind where a mistyped path pointed.
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        match survey(dir)? {
            Found::Foreign(found) => Err(StoreError::Foreign { path: dir.to_owned(), found }),
            Found::Nothing | Found::Empty => Err(StoreError::Missing { path: dir.to_owned() }),
            Found::Store => Self::open_in(dir),
        }
    }

    /// Opens or creates the store in `dir`, which [`survey`] found to be
    /// orglink's (or new).
    fn open_in(dir: &Path) -> Result<Self, StoreError> {
        prepare_dir(dir).map_err(|error| StoreError::Directory { path: dir.to_owned(), error })?;
        // sled holds an exclusive lock on the directory. A process that has
        // just closed the store releases it a moment later: wait a little.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).segment_size(segment_size(dir));
            match config.open() {
                Ok(db) => {
                    let store = Self::from_db(db)?;
                    owner_only(dir).map_err(|error| StoreError::Directory { path: dir.to_owned(), error })?;
                    return Ok(store);
                }
                Err(sled::Error::Io(e)) if is_lock_conflict(&e) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Locked { path: dir.to_owned() });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A store that lives in a temporary location and vanishes when dropped.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).cache_capacity(CACHE_BYTES).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let found = match db.get(SCHEMA_KEY)? {
            Some(v) => Some(v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0)),
            None if db.tree_names().len() > 1 || !db.is_empty() => return Err(StoreError::UnknownData),
            None => None,
        };
        if let Some(found) = found
            && !(1..=SCHEMA_VERSION).contains(&found)
        {
            return Err(StoreError::SchemaMismatch { found, expected: SCHEMA_VERSION });
        }
        let store = Self {
            accounts: db.open_tree("accounts")?,
            by_tenant: db.open_tree("accounts_by_tenant")?,
            external_ids: db.open_tree("external_ids")?,
            due: db.open_tree("due")?,
            audit: db.open_tree("audit")?,
            outbox: db.open_tree("outbox")?,
            outbox_index: db.open_tree("outbox_index")?,
            outbox_counts: db.open_tree("outbox_counts")?,
            delivered: db.open_tree("delivered")?,
            dead_letters: db.open_tree("dead_letters")?,
            tenants: db.open_tree("tenants")?,
            tenant_status: db.open_tree("tenant_status")?,
            tenant_audit: db.open_tree("tenant_audit")?,
            ticket_requests: db.open_tree("ticket_requests")?,
            quotas: db.open_tree("quota_counts")?,
            pipeline: db.open_tree("pipeline_rows")?,
            gate: std::sync::Arc::default(),
            db,
        };
        match found {
            Some(SCHEMA_VERSION) => {}
            Some(older) => migrate::run(&store, older)?,
            None => {
                store.db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
        }
        store.ensure_pipeline_rows()?;
        store.ensure_outbox_index()?;
        Ok(store)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Whether the store can be written now.
    pub fn health_check(&self) -> Result<(), StoreError> {
        let _writing = self.writing();
        let now = time::OffsetDateTime::now_utc().unix_timestamp().to_be_bytes();
        self.durable(self.db.insert(b"health_check", &now).map_err(Into::into))?;
        Ok(())
    }

    /// Every key and value of every tree, for tests and backups.
    pub fn export(&self) -> Result<Vec<Record>, StoreError> {
        let mut all = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            for entry in tree.iter() {
                let (k, v) = entry?;
                all.push((name.to_vec(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(all)
    }

    /// Entries and bytes (keys and values) of each tree: where the store's
    /// bytes go.
    pub fn footprint(&self) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let mut trees = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            let (mut entries, mut bytes) = (0, 0);
            for entry in tree.iter() {
                let (k, v) = entry?;
                entries += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            trees.push((String::from_utf8_lossy(&name).into_owned(), entries, bytes));
        }
        Ok(trees)
    }

    /// Held by every write, from its first read to its commit: a write that
    /// does not hold it may land half inside a backup. Never held twice on
    /// one thread (a backup waiting between would block both).
    fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// No write runs while the guard is held: what is read meanwhile is one
    /// moment of the store.
    fn quiet(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A write is on disk before anyone is told it happened: sled keeps
    /// writes in memory for up to half a second, which a crash would lose
    /// after the user saw "Verified".
    fn durable<T>(&self, written: Result<T, StoreError>) -> Result<T, StoreError> {
        let value = written?;
        self.db.flush()?;
        Ok(value)
    }
}

/// The segment size of the store in `dir`: what sled recorded when it was
/// created, else [`SEGMENT_BYTES`] for a new one.
fn segment_size(dir: &Path) -> usize {
    // Text lines, then a CRC.
    let recorded = fs::read(dir.join("conf")).ok().and_then(|conf| {
        String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|line| line.strip_prefix("segment_size:").and_then(|n| n.trim().parse().ok()))
    });
    recorded.unwrap_or(SEGMENT_BYTES)
}

/// The outcome of a transaction whose closure never aborts.
fn never_aborts<T>(result: Result<T, sled::transaction::TransactionError<()>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        sled::transaction::TransactionError::Abort(()) => unreachable!("this transaction never aborts"),
    })
}

/// Whether opening failed because another process holds sled's lock (sled
/// wraps the `WouldBlock` of the file lock in an error of its own).
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

/// What a data directory holds, before orglink touches it.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Nothing at that path: the store may be created there.
    Nothing,
    /// An empty directory (or a file system's own `lost+found` alone).
    Empty,
    /// Only what sled writes: a store.
    Store,
    /// Something else: these names (the first few).
    Foreign(Vec<String>),
}

/// The names a file system puts in a new one's root, which make a mount
/// point no less empty.
const FILE_SYSTEM_OWN: &[&str] = &["lost+found"];

/// What `dir` holds: a store is sled's files and nothing else (`conf`,
/// `db`, `snap.*` and the `blobs` directory), so a mistyped path to a
/// project or a home directory is told apart before anything is written.
fn survey(dir: &Path) -> Result<Found, StoreError> {
    let failed = |error| StoreError::Directory { path: dir.to_owned(), error };
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(failed(e)),
        Ok(meta) if !meta.is_dir() => return Err(StoreError::NotADirectory { path: dir.to_owned() }),
        Ok(_) => {}
    }
    let (mut any, mut foreign) = (false, Vec::new());
    for entry in fs::read_dir(dir).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if FILE_SYSTEM_OWN.contains(&name.as_str()) {
            continue;
        }
        // The socket a server listens on for the command line is orglink's,
        // but no store: a directory with only that is still a new one.
        if name == crate::socket::SOCKET_NAME && is_socket(&entry.file_type().map_err(failed)?) {
            continue;
        }
        any = true;
        if !is_sleds(&name, &entry.file_type().map_err(failed)?) {
            foreign.push(name);
        }
    }
    foreign.sort();
    foreign.truncate(5);
    Ok(match (any, foreign.is_empty()) {
        (false, _) => Found::Empty,
        (true, true) => Found::Store,
        (true, false) => Found::Foreign(foreign),
    })
}

#[cfg(unix)]
fn is_socket(kind: &fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_socket(kind)
}

#[cfg(not(unix))]
fn is_socket(_: &fs::FileType) -> bool {
    false
}

/// Whether an entry of the data directory is one sled writes.
fn is_sleds(name: &str, kind: &fs::FileType) -> bool {
    match name {
        "conf" | "db" => kind.is_file(),
        "blobs" => kind.is_dir(),
        other => other.starts_with("snap.") && kind.is_file(),
    }
}

/// Makes what sled wrote in `dir` readable by its owner only: customer
/// records, external IDs and the outbox are nobody else's business. Only
/// sled's own entries: [`survey`] refused a directory with anything else,
/// and whatever appears beside them later is not orglink's to change.
fn owner_only(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let (name, kind) = (entry.file_name().to_string_lossy().into_owned(), entry.file_type()?);
            if !is_sleds(&name, &kind) {
                continue;
            }
            if kind.is_dir() {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700))?;
                // `blobs` holds sled's large values, all of them its own.
                tighten_all(&entry.path())?;
            } else {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

/// Makes everything under `dir`, which sled wrote, owner-only.
#[cfg(unix)]
fn tighten_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700))?;
            tighten_all(&entry.path())?;
        } else if kind.is_file() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Creates `dir` if needed and makes it readable by its owner only (it is
/// new, empty or already the store's: [`survey`] said so).
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
