//! Backups: every tree of the store in one file, read while no write runs
//! (one moment of the store, whatever the server is doing), and a store
//! made again from such a file.
//!
//! The file: [`MAGIC`]; a header (the file's format, the store's schema
//! version, when it was taken); each record as its tree, key and value,
//! each length first; an end mark with the number of records; a CRC-32 of
//! everything before it. A file cut short or changed is refused before
//! anything is written. It is written beside its final name and renamed
//! there once it is on disk, owner-only: a backup holds every external ID.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{CACHE_BYTES, Found, SCHEMA_VERSION, SEGMENT_BYTES, Store, StoreError};

/// What every backup starts with.
pub const MAGIC: &[u8; 16] = b"orglink backup\n\0";
/// The layout of the file; a newer one is refused by name.
const FORMAT: u32 = 1;
/// In place of a tree name's length: the records are over.
const END: u32 = u32::MAX;
/// A tree name, key or value no longer than sled takes here; a longer
/// length means the file is damaged.
const MAX_FIELD: u32 = 1 << 30;
/// sled's name for the tree a `Db` is.
const DEFAULT_TREE: &[u8] = b"__sled__default";
/// Records written to a restored store per batch.
const BATCH: usize = 10_000;

/// What a backup file says of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: u32,
    /// The store's schema version when it was taken.
    pub schema: u32,
    pub created_at: OffsetDateTime,
}

/// A backup written, or read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub header: Header,
    /// Records of every tree.
    pub records: u64,
    /// AWS accounts (each with every claim on it).
    pub accounts: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// Why a file is not a backup this orglink restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unusable {
    /// It does not start as a backup does.
    NotABackup,
    /// It ends before its end mark and checksum: cut short.
    Truncated,
    /// Its checksum does not match what it holds, or what it holds makes
    /// no sense: changed or damaged.
    Damaged,
    /// Written by a newer orglink, in a layout this one does not read.
    NewerFormat { found: u32 },
    /// A store of a schema version this orglink does not read.
    UnknownSchema { found: u32, readable: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write the backup {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
    #[error("cannot read the backup {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("{path} cannot be restored: {problem:?}")]
    Unusable { path: PathBuf, problem: Unusable },
    /// A restore goes into a new or empty directory only.
    #[error("{path} is not empty: a backup is restored into a new or empty directory")]
    NotEmpty { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is written, counting its bytes and their checksum.
struct Summing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What is read, with the checksum of what was read.
struct Checked<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn field(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).ok().filter(|&l| l <= MAX_FIELD).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("a stored field of {} bytes", bytes.len()))
    })?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

impl Store {
    /// Writes a backup of the whole store to `file`, taken at `at`: every
    /// tree read while no write runs (writes wait the while, about a second
    /// per 100,000 accounts), into a file beside `file` that is flushed to
    /// disk and then renamed to it. An existing `file` is replaced only by
    /// a complete backup.
    pub fn backup(&self, file: &Path, at: OffsetDateTime) -> Result<BackupSummary, BackupError> {
        let failed = |error| BackupError::Write { path: file.to_owned(), error };
        let name = file
            .file_name()
            .ok_or_else(|| failed(io::Error::new(io::ErrorKind::InvalidInput, "not a file name")))?
            .to_string_lossy()
            .into_owned();
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
        match fs::remove_file(&partial) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
        let written = self.write_backup(&partial, at).and_then(|summary| {
            fs::rename(&partial, file)?;
            // The rename itself is on disk once the directory is.
            fs::File::open(&dir)?.sync_all()?;
            Ok(summary)
        });
        written.map_err(|error| {
            let _ = fs::remove_file(&partial);
            failed(error)
        })
    }

    fn write_backup(&self, path: &Path, at: OffsetDateTime) -> io::Result<BackupSummary> {
        let (file, summary) = {
            let _quiet = self.quiet();
            write_db(&self.db, path, at)?
        };
        file.sync_all()?;
        Ok(summary)
    }

    /// Makes the store in `dir` again from the backup `file`: `dir` must be
    /// new or empty, and the whole file sound (read through once before
    /// anything is written). The store is then opened as any other, so an
    /// older schema is migrated. If it fails half-way, what it wrote goes.
    pub fn restore(dir: &Path, file: &Path) -> Result<(Store, BackupSummary), BackupError> {
        let found = super::survey(dir)?;
        if !matches!(found, Found::Nothing | Found::Empty) {
            return Err(BackupError::NotEmpty { path: dir.to_owned() });
        }
        let summary = verify(file)?;
        let restored = restore_into(dir, file);
        if restored.is_err() {
            undo(dir, &found);
        }
        Ok((restored?, summary))
    }
}

/// Writes every tree of `db` to a new file at `path`, the schema version
/// its own; not yet synced. The caller keeps writes out meanwhile.
fn write_db(db: &sled::Db, path: &Path, at: OffsetDateTime) -> io::Result<(fs::File, BackupSummary)> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let schema = db.get(super::SCHEMA_KEY).map_err(io::Error::other)?;
    let schema = schema.and_then(|v| v.as_ref().try_into().ok()).map(u32::from_be_bytes).unwrap_or(SCHEMA_VERSION);
    let file = options.open(path)?;
    let mut out = Summing { inner: BufWriter::new(file), crc: crc32fast::Hasher::new(), bytes: 0 };
    let header = Header { format: FORMAT, schema, created_at: at };
    out.write_all(MAGIC)?;
    out.write_all(&header.format.to_be_bytes())?;
    out.write_all(&header.schema.to_be_bytes())?;
    out.write_all(&at.unix_timestamp().to_be_bytes())?;
    let (mut records, mut accounts) = (0u64, 0u64);
    let mut names = db.tree_names();
    names.sort();
    for name in names {
        let tree = db.open_tree(&name).map_err(io::Error::other)?;
        for entry in tree.iter() {
            let (key, value) = entry.map_err(io::Error::other)?;
            field(&mut out, &name)?;
            field(&mut out, &key)?;
            field(&mut out, &value)?;
            records += 1;
            if &name[..] == b"accounts" {
                accounts += 1;
            }
        }
    }
    out.write_all(&END.to_be_bytes())?;
    out.write_all(&records.to_be_bytes())?;
    let crc = out.crc.clone().finalize();
    out.write_all(&crc.to_be_bytes())?;
    let bytes = out.bytes;
    let file = out.inner.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok((file, BackupSummary { header, records, accounts, bytes }))
}

#[cfg(test)]
/// [`write_db`] and the sync, for tests that write a backup of a store of
/// an older schema (which `Store` would migrate first).
pub(super) fn write_raw(db: &sled::Db, path: &Path, at: OffsetDateTime) -> io::Result<BackupSummary> {
    let (file, summary) = write_db(db, path, at)?;
    file.sync_all()?;
    Ok(summary)
}

fn restore_into(dir: &Path, file: &Path) -> Result<Store, BackupError> {
    super::prepare_dir(dir).map_err(|error| StoreError::Directory { path: dir.to_owned(), error })?;
    {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .segment_size(SEGMENT_BYTES)
            .open()
            .map_err(StoreError::from)?;
        let mut pending: Option<(Vec<u8>, sled::Batch, usize)> = None;
        let apply = |pending: Option<(Vec<u8>, sled::Batch, usize)>| -> Result<(), BackupError> {
            if let Some((name, batch, _)) = pending {
                let tree =
                    if name == DEFAULT_TREE { (*db).clone() } else { db.open_tree(&name).map_err(StoreError::from)? };
                tree.apply_batch(batch).map_err(StoreError::from)?;
            }
            Ok(())
        };
        read_records(file, |tree, key, value| {
            match &mut pending {
                Some((name, batch, count)) if name.as_slice() == tree && *count < BATCH => {
                    batch.insert(key, value);
                    *count += 1;
                }
                _ => {
                    apply(pending.take())?;
                    let mut batch = sled::Batch::default();
                    batch.insert(key, value);
                    pending = Some((tree.to_vec(), batch, 1));
                }
            }
            Ok(())
        })?;
        apply(pending.take())?;
        db.flush().map_err(StoreError::from)?;
    }
    Ok(Store::open_in(dir)?)
}

/// Takes away what a failed restore wrote: the directory it created, or
/// sled's files in the empty one it was given.
fn undo(dir: &Path, found: &Found) {
    if *found == Found::Nothing {
        let _ = fs::remove_dir_all(dir);
        return;
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let (name, Ok(kind)) = (entry.file_name().to_string_lossy().into_owned(), entry.file_type()) else { continue };
        if super::is_sleds(&name, &kind) {
            let _ = if kind.is_dir() { fs::remove_dir_all(entry.path()) } else { fs::remove_file(entry.path()) };
        }
    }
}

/// Reads the backup `file` through, checks its end and checksum, and
/// says what it holds.
pub fn verify(file: &Path) -> Result<BackupSummary, BackupError> {
    let (mut records, mut accounts) = (0, 0);
    let header = read_records(file, |tree, _, _| {
        records += 1;
        if tree == b"accounts" {
            accounts += 1;
        }
        Ok(())
    })?;
    let bytes = fs::metadata(file).map_err(|error| BackupError::Read { path: file.to_owned(), error })?.len();
    Ok(BackupSummary { header, records, accounts, bytes })
}

/// Reads `file`, handing each record to `each` in order; the header is
/// checked before the first, the end mark and the checksum after the last.
fn read_records(
    file: &Path,
    mut each: impl FnMut(&[u8], &[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<Header, BackupError> {
    let unusable = |problem| BackupError::Unusable { path: file.to_owned(), problem };
    // An end of file where more was due: cut short. Any other failure to
    // read is the file system's.
    let read_failed = |error: io::Error| match error.kind() {
        io::ErrorKind::UnexpectedEof => unusable(Unusable::Truncated),
        _ => BackupError::Read { path: file.to_owned(), error },
    };
    let opened = fs::File::open(file).map_err(|error| BackupError::Read { path: file.to_owned(), error })?;
    let mut input = Checked { inner: BufReader::new(opened), crc: crc32fast::Hasher::new() };
    let mut magic = Vec::with_capacity(MAGIC.len());
    (&mut input).take(MAGIC.len() as u64).read_to_end(&mut magic).map_err(read_failed)?;
    if magic[..] != MAGIC[..] {
        // The start of one, and then nothing: cut short.
        let problem = if MAGIC.starts_with(&magic) { Unusable::Truncated } else { Unusable::NotABackup };
        return Err(unusable(problem));
    }
    let u32_of = |input: &mut Checked<_>| -> Result<u32, BackupError> {
        let mut buf = [0; 4];
        input.read_exact(&mut buf).map_err(read_failed)?;
        Ok(u32::from_be_bytes(buf))
    };
    let format = u32_of(&mut input)?;
    if format != FORMAT {
        return Err(unusable(Unusable::NewerFormat { found: format }));
    }
    let schema = u32_of(&mut input)?;
    if !(1..=SCHEMA_VERSION).contains(&schema) {
        return Err(unusable(Unusable::UnknownSchema { found: schema, readable: SCHEMA_VERSION }));
    }
    let mut at = [0; 8];
    input.read_exact(&mut at).map_err(read_failed)?;
    let created_at =
        OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(at)).map_err(|_| unusable(Unusable::Damaged))?;
    let header = Header { format, schema, created_at };
    let mut records = 0u64;
    let (mut tree, mut key, mut value) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let len = u32_of(&mut input)?;
        if len == END {
            break;
        }
        for (i, buf) in [&mut tree, &mut key, &mut value].into_iter().enumerate() {
            let len = if i == 0 { len } else { u32_of(&mut input)? };
            if len > MAX_FIELD {
                return Err(unusable(Unusable::Damaged));
            }
            buf.clear();
            (&mut input).take(u64::from(len)).read_to_end(buf).map_err(read_failed)?;
            if buf.len() != len as usize {
                return Err(unusable(Unusable::Truncated));
            }
        }
        each(&tree, &key, &value)?;
        records += 1;
    }
    let mut count = [0; 8];
    input.read_exact(&mut count).map_err(read_failed)?;
    let expected = input.crc.clone().finalize();
    let mut crc = [0; 4];
    input.inner.read_exact(&mut crc).map_err(read_failed)?;
    let mut rest = [0; 1];
    let trailing = input.inner.read(&mut rest).map_err(read_failed)?;
    if u32::from_be_bytes(crc) != expected || u64::from_be_bytes(count) != records || trailing != 0 {
        return Err(unusable(Unusable::Damaged));
    }
    Ok(header)
}

/// A backup's file name for `at`: sortable by time, in UTC
/// (`orglink-20261201T080000Z.backup`).
pub fn file_name(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "orglink-{:04}{:02}{:02}T{:02}{:02}{:02}Z.backup",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Whether `name` is one [`file_name`] makes (so scheduled backups remove
/// only their own files).
pub fn is_scheduled_name(name: &str) -> bool {
    name.strip_prefix("orglink-").and_then(|rest| rest.strip_suffix("Z.backup")).is_some_and(|stamp| {
        stamp.len() == 15 && stamp.char_indices().all(|(i, c)| if i == 8 { c == 'T' } else { c.is_ascii_digit() })
    })
}
