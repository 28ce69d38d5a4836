//! Each node's data directory on a filesystem of its own: a small ext4 image the harness
//! creates, loop-mounts and removes. Filling one is the "full data disk" fault: a filler
//! file takes every free block (ext4 made with no reserved blocks, so root — the node —
//! finds the disk as full as anyone); healing deletes it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::net::run;

/// Largest filler the harness writes, and the cap on its write loop.
const FILLER_CHUNK: usize = 1 << 20;
const MAX_FILLER_CHUNKS: usize = 4096;

/// One mounted image.
pub struct DataDisk {
    image: PathBuf,
    pub mount_point: PathBuf,
    mounted: bool,
}

impl DataDisk {
    /// Creates a sparse `size_mib` MiB ext4 image at `image` and mounts it on `mount_point`.
    pub fn create(image: &Path, mount_point: &Path, size_mib: u64) -> anyhow::Result<DataDisk> {
        let file =
            File::create(image).with_context(|| format!("cannot create {}", image.display()))?;
        file.set_len(size_mib << 20)?;
        drop(file);
        std::fs::create_dir_all(mount_point)?;
        let image_arg = image.display().to_string();
        let mount_arg = mount_point.display().to_string();
        run("mkfs.ext4", &["-q", "-F", "-m", "0", &image_arg])?;
        run("mount", &["-o", "loop", &image_arg, &mount_arg])?;
        Ok(DataDisk {
            image: image.to_path_buf(),
            mount_point: mount_point.to_path_buf(),
            mounted: true,
        })
    }

    fn filler(&self) -> PathBuf {
        self.mount_point.join("chaos-filler")
    }

    /// Takes every free block; returns the bytes written.
    pub fn fill(&self) -> anyhow::Result<u64> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())?;
        let chunk = vec![0xA5_u8; FILLER_CHUNK];
        let mut written = 0_u64;
        for _ in 0..MAX_FILLER_CHUNKS {
            match file.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => written += count as u64,
            }
        }
        // The last blocks: smaller writes until nothing fits.
        for size in [65536, 4096, 512, 1] {
            while file.write_all(&chunk[..size]).is_ok() {
                written += size as u64;
                if written > (MAX_FILLER_CHUNKS * FILLER_CHUNK) as u64 {
                    break;
                }
            }
        }
        let _ = file.sync_all();
        Ok(written)
    }

    pub fn free(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.filler()) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

impl Drop for DataDisk {
    fn drop(&mut self) {
        if self.mounted {
            let mount_arg = self.mount_point.display().to_string();
            if run("umount", &[&mount_arg]).is_err() {
                let _ = run("umount", &["-l", &mount_arg]);
            }
            self.mounted = false;
        }
        let _ = std::fs::remove_file(&self.image);
    }
}
