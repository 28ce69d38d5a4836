//! The one place that makes sled's writes durable. sled 0.34's `Db::flush` writes its
//! buffers with `sync_file_range`, which neither flushes the drive's cache nor the file's
//! size metadata, so a flushed write can still be lost on power failure (sled issue 1452).
//! `Durable::make_durable` follows each flush with `fdatasync` on sled's segment file
//! `<sled dir>/db`; everything written before the call is durable when it returns, so one
//! call covers a whole batch. sled stores values too large for a segment as separate files
//! under `<sled dir>/blobs` and never syncs them; `make_durable` syncs each new one (and the
//! directory) before the flush that publishes a pointer to it. `write_durably` holds a lock
//! across a write and its `make_durable`, so a flush made for one writer never publishes a
//! blob of another writer's write before that blob is synced.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::StoreError;

/// A sled database whose writes can be made durable.
pub struct Durable {
    db: sled::Db,
    dir: PathBuf,
    /// `<dir>/db`, kept open for `fdatasync`.
    segment_file: File,
    /// Blob files already synced; pruned as sled removes them.
    synced_blobs: Mutex<BTreeSet<OsString>>,
    /// Held across a durable write and its flush (see the module comment).
    write_lock: Mutex<()>,
}

impl Durable {
    /// Opens (or creates) the sled database in `dir` and makes its creation durable:
    /// sled's files, the directory entries and any blob left by an earlier run are synced.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Durable::open_with_cache(dir, None)
    }

    /// `open`, with sled's page cache bounded to `cache_bytes` (sled's default, 1 GiB,
    /// when `None`).
    pub fn open_with_cache(dir: &Path, cache_bytes: Option<u64>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        let mut config = sled::Config::new().path(dir);
        if let Some(bytes) = cache_bytes {
            config = config.cache_capacity(bytes);
        }
        let db = config
            .open()
            .map_err(StoreError::sled("open the raft database"))?;
        let segment_path = dir.join("db");
        let segment_file = File::open(&segment_path).map_err(StoreError::io(&segment_path))?;
        let conf_path = dir.join("conf");
        if conf_path.exists() {
            sync_file(&conf_path)?;
        }
        segment_file
            .sync_data()
            .map_err(StoreError::io(&segment_path))?;
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let durable = Durable {
            db,
            dir: dir.to_path_buf(),
            segment_file,
            synced_blobs: Mutex::new(BTreeSet::new()),
            write_lock: Mutex::new(()),
        };
        durable.sync_new_blobs()?;
        Ok(durable)
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The sled directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes every write made to the database so far durable: new blobs synced, sled
    /// flushed, then one `fdatasync` of the segment file.
    pub fn make_durable(&self) -> Result<(), StoreError> {
        self.sync_new_blobs()?;
        self.db
            .flush()
            .map_err(StoreError::sled("flush the raft database"))?;
        self.segment_file
            .sync_data()
            .map_err(StoreError::io(self.dir.join("db")))
    }

    /// Runs `write` and then `make_durable`, with no other durable write in between.
    pub fn write_durably<T>(
        &self,
        write: impl FnOnce(&sled::Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _serialised = self.write_lock.lock();
        let value = write(&self.db)?;
        self.make_durable()?;
        Ok(value)
    }

    /// Makes everything durable one last time; called by the last owner when closing.
    pub fn close(self: Arc<Self>) -> Result<(), StoreError> {
        self.make_durable()
    }

    /// `fdatasync`s blob files not synced before, then the blob directory if any were new.
    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let blob_dir = self.dir.join("blobs");
        let listing = match std::fs::read_dir(&blob_dir) {
            Ok(listing) => listing,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(StoreError::io(&blob_dir)(error)),
        };
        let mut present = BTreeSet::new();
        for entry in listing {
            present.insert(entry.map_err(StoreError::io(&blob_dir))?.file_name());
        }
        let mut synced = self.synced_blobs.lock();
        synced.retain(|name| present.contains(name));
        let mut any_new = false;
        for name in present {
            if synced.contains(&name) {
                continue;
            }
            let path = blob_dir.join(&name);
            match File::open(&path) {
                Ok(file) => file.sync_data().map_err(StoreError::io(&path))?,
                // sled removed it meanwhile: nothing to keep.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(StoreError::io(&path)(error)),
            }
            synced.insert(name);
            any_new = true;
        }
        if any_new {
            sync_dir(&blob_dir)?;
        }
        Ok(())
    }
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(StoreError::io(path))
}

/// `fsync` of a directory: makes the names of files created in it durable.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    sync_file(path)
}
