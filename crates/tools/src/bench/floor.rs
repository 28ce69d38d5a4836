//! The floor under one replicated write on this machine, which `gavel bench bids` sets
//! beside the single-connection bid latency: a durable write waits for at least the
//! leader's and a follower's fdatasync and for two loopback round trips (client to
//! leader, leader to follower), so floor = 2 fdatasync + 2 round trips.
//!
//! - fdatasync: 4 KiB written over the same place of a file in the cluster's data
//!   directory, then `fdatasync`, in a loop; the median. (Overwriting in place changes
//!   no metadata: this is the cheapest durable write the filesystem offers.)
//! - round trip: a 64-byte message sent to a thread that echoes it back over a
//!   loopback TCP connection (Nagle off), in a loop; the median.
//!
//! Both loops are bounded in count and in time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::closed_loop::quantile;

const FSYNC_SAMPLES: usize = 200;
const ROUND_TRIP_SAMPLES: usize = 5_000;
const ROUND_TRIP_WARMUP: usize = 200;
/// Longest time either measurement may take.
const TIME_LIMIT: Duration = Duration::from_secs(10);
const MESSAGE_BYTES: usize = 64;

/// The measured floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    pub fdatasync_us: u64,
    pub fdatasync_samples: usize,
    pub round_trip_us: u64,
    pub round_trip_samples: usize,
}

impl Floor {
    /// 2 fdatasync + 2 round trips.
    pub fn write_floor_us(&self) -> u64 {
        2 * self.fdatasync_us + 2 * self.round_trip_us
    }

    /// The lower median of each measurement, from two runs of `measure`.
    pub fn lower(&self, other: &Floor) -> Floor {
        let pick = |mine: (u64, usize), theirs: (u64, usize)| match mine.0 <= theirs.0 {
            true => mine,
            false => theirs,
        };
        let (fdatasync_us, fdatasync_samples) = pick(
            (self.fdatasync_us, self.fdatasync_samples),
            (other.fdatasync_us, other.fdatasync_samples),
        );
        let (round_trip_us, round_trip_samples) = pick(
            (self.round_trip_us, self.round_trip_samples),
            (other.round_trip_us, other.round_trip_samples),
        );
        Floor {
            fdatasync_us,
            fdatasync_samples,
            round_trip_us,
            round_trip_samples,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "fdatasync p50 {:.2} ms ({} samples), loopback round trip p50 {:.3} ms ({} samples)",
            self.fdatasync_us as f64 / 1000.0,
            self.fdatasync_samples,
            self.round_trip_us as f64 / 1000.0,
            self.round_trip_samples
        )
    }

    /// How many times the floor `p50_us` is (`None` with a zero floor).
    pub fn distance(&self, p50_us: u64) -> Option<f64> {
        match self.write_floor_us() {
            0 => None,
            floor => Some(p50_us as f64 / floor as f64),
        }
    }
}

/// Measures both, the fdatasync in `directory` (its file removed afterwards).
pub fn measure(directory: &Path) -> anyhow::Result<Floor> {
    let (fdatasync_us, fdatasync_samples) = fdatasync_median_us(directory)?;
    let (round_trip_us, round_trip_samples) = round_trip_median_us()?;
    Ok(Floor {
        fdatasync_us,
        fdatasync_samples,
        round_trip_us,
        round_trip_samples,
    })
}

fn fdatasync_median_us(directory: &Path) -> anyhow::Result<(u64, usize)> {
    let path = directory.join("floor-fdatasync.bin");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = [0x5a_u8; 4096];
    // The first write allocates the block; only overwrites are timed.
    file.write_all_at(&block, 0)?;
    file.sync_all()?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(FSYNC_SAMPLES);
    while samples.len() < FSYNC_SAMPLES && started.elapsed() < TIME_LIMIT {
        let begun = Instant::now();
        file.write_all_at(&block, 0)?;
        if unsafe { libc::fdatasync(file.as_raw_fd()) } != 0 {
            bail!("fdatasync: {}", std::io::Error::last_os_error());
        }
        samples.push(begun.elapsed().as_micros() as u64);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    median(samples)
}

fn round_trip_median_us() -> anyhow::Result<(u64, usize)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no loopback port")?;
    let address = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIME_LIMIT))?;
        let mut message = [0_u8; MESSAGE_BYTES];
        // Ends when the measuring side closes the connection.
        while stream.read_exact(&mut message).is_ok() {
            stream.write_all(&message)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(address).context("cannot connect on loopback")?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(TIME_LIMIT))?;
    let mut message = [0x42_u8; MESSAGE_BYTES];
    let started = Instant::now();
    let mut samples = Vec::with_capacity(ROUND_TRIP_SAMPLES);
    for number in 0..ROUND_TRIP_WARMUP + ROUND_TRIP_SAMPLES {
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        let begun = Instant::now();
        stream.write_all(&message)?;
        stream.read_exact(&mut message)?;
        if number >= ROUND_TRIP_WARMUP {
            samples.push(begun.elapsed().as_micros() as u64);
        }
    }
    drop(stream);
    let _ = echo.join();
    median(samples)
}

fn median(mut samples: Vec<u64>) -> anyhow::Result<(u64, usize)> {
    samples.sort_unstable();
    match quantile(&samples, 0.5) {
        Some(median) => Ok((median, samples.len())),
        None => bail!("no sample within {} s", TIME_LIMIT.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_two_syncs_and_two_round_trips() {
        let floor = Floor {
            fdatasync_us: 1_000,
            fdatasync_samples: 200,
            round_trip_us: 50,
            round_trip_samples: 5_000,
        };
        assert_eq!(floor.write_floor_us(), 2_100);
        assert_eq!(floor.distance(4_200), Some(2.0));
        let nothing = Floor {
            fdatasync_us: 0,
            round_trip_us: 0,
            ..floor
        };
        assert_eq!(nothing.distance(10), None);
    }

    #[test]
    fn the_lower_floor_takes_each_measurements_lower_median() {
        let noisy = Floor {
            fdatasync_us: 4_000,
            fdatasync_samples: 200,
            round_trip_us: 40,
            round_trip_samples: 5_000,
        };
        let quiet = Floor {
            fdatasync_us: 700,
            fdatasync_samples: 150,
            round_trip_us: 60,
            round_trip_samples: 4_000,
        };
        let lower = noisy.lower(&quiet);
        assert_eq!((lower.fdatasync_us, lower.fdatasync_samples), (700, 150));
        assert_eq!((lower.round_trip_us, lower.round_trip_samples), (40, 5_000));
        assert_eq!(quiet.lower(&noisy), lower);
    }

    #[test]
    fn the_loopback_round_trip_is_measured() {
        let (median_us, samples) = round_trip_median_us().expect("loopback works");
        assert!(samples > 0);
        assert!(
            median_us < 1_000_000,
            "a loopback round trip of {median_us} µs"
        );
    }
}
