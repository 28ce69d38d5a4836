//! The cluster secret: where it comes from and what it must be.
//!
//! The nodes of a cluster prove the secret to each other (`peer::auth`), so it must be
//! one no one can guess: 32 random bytes or more, written as hex (64 digits or more) or
//! standard base64 (44 characters or more, `openssl rand -base64 32`). A node refuses to
//! start on anything shorter, on a value that does not look random (fewer than 16
//! different bytes), and on the placeholders its documentation ever showed, with a
//! message naming `gavel cluster secret`, which prints a new one.
//!
//! The secret is written into the configuration (`security.cluster_secret`) or, better,
//! kept in a file of its own (`security.cluster_secret_file`), so the configuration can
//! be shared and versioned without it: the file holds the secret alone (surrounding
//! whitespace is ignored) and must not be readable by every user of the host.
//!
//! The spool's HMAC key (`exchange.hmac_key_file`) follows the same rules, in a file of
//! its own; its key is the bytes the file's hex or base64 writes.

use super::*;

/// Fewest random bytes a cluster secret must hold.
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;

/// Fewest different byte values among a secret's bytes: a random 32-byte secret has
/// about 30; a repeated pattern has few.
const MIN_DISTINCT_BYTES: usize = 16;

/// Longest cluster secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The spool's HMAC key from a key file: the bytes its hex or base64 writes, under the
/// cluster secret's rules (32 random bytes or more, in a file not every user can read).
pub fn spool_key(path: &Path) -> Result<Vec<u8>, ConfigError> {
    const KEY: &str = "exchange.hmac_key_file";
    let text = read_secret_file(path, KEY)?;
    decode_secret(&text).ok_or_else(|| {
        ConfigError::invalid(KEY, format!("{} is not hex or base64", path.display()))
    })
}

/// The secret the private file at `path` holds, trimmed and checked; errors name `key`.
fn read_secret_file(path: &Path, key: &str) -> Result<String, ConfigError> {
    let unreadable = |error: std::io::Error| {
        ConfigError::invalid(key, format!("cannot read {}: {error}", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    require(
        metadata.len() <= MAX_SECRET_FILE_BYTES,
        key,
        format!(
            "{} is larger than {MAX_SECRET_FILE_BYTES} bytes",
            path.display()
        ),
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        require(
            mode & 0o007 == 0,
            key,
            format!(
                "{} can be read by every user of the host (mode {:o}): chmod 0600 it (or 0640 with the node's group)",
                path.display(),
                mode & 0o777
            ),
        )?;
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let secret = text.trim();
    require(
        !secret.is_empty(),
        key,
        format!("{} is empty: {HOW_TO_MAKE_ONE}", path.display()),
    )?;
    check_cluster_secret(secret).map_err(|problem| {
        ConfigError::invalid(key, format!("{}: the secret {problem}", path.display()))
    })?;
    Ok(secret.to_string())
}

/// Values shown as examples in Gavel's shipped files and documentation, ever: refused
/// whatever their length.
pub const KNOWN_PLACEHOLDERS: &[&str] = &[
    "replace-with-the-same-long-random-secret-on-every-node",
    "change-me-to-another-long-random-string",
    "change-me-to-a-long-random-string",
    "integration-cluster-secret-0123456789",
];

/// How to make a good secret, for every refusal.
pub const HOW_TO_MAKE_ONE: &str =
    "make one with `gavel cluster secret` (32 random bytes, hex) and give every node the same one";

/// A new cluster secret: 32 random bytes from the operating system's generator, as hex.
pub fn new_cluster_secret() -> String {
    hex::encode(rand::random::<[u8; MIN_CLUSTER_SECRET_BYTES]>())
}

/// Whether `secret` is strong enough; if not, why (the message says how to make one).
pub fn check_cluster_secret(secret: &str) -> Result<(), String> {
    let lowered = secret.to_ascii_lowercase();
    if KNOWN_PLACEHOLDERS.contains(&lowered.as_str())
        || lowered.contains("change-me")
        || lowered.contains("replace-with")
    {
        return Err(format!(
            "is a placeholder from Gavel's examples, not a secret: {HOW_TO_MAKE_ONE}"
        ));
    }
    let Some(bytes) = decode_secret(secret) else {
        return Err(format!(
            "must be at least {MIN_CLUSTER_SECRET_BYTES} random bytes written as hex (64 digits or more) or base64 (44 characters or more): {HOW_TO_MAKE_ONE}"
        ));
    };
    if bytes.len() < MIN_CLUSTER_SECRET_BYTES {
        return Err(format!(
            "holds {} bytes, fewer than {MIN_CLUSTER_SECRET_BYTES}: {HOW_TO_MAKE_ONE}",
            bytes.len()
        ));
    }
    let distinct = bytes
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(format!(
            "does not look random (only {distinct} different bytes): {HOW_TO_MAKE_ONE}"
        ));
    }
    Ok(())
}

/// The bytes a secret writes, as hex or as standard base64 (padded or not).
fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if secret.len().is_multiple_of(2) && secret.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return hex::decode(secret).ok();
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(secret.as_bytes()).ok())
}

impl Config {
    /// Reads `security.cluster_secret_file`, when set, into `security.cluster_secret`.
    /// A node calls it after loading the file and before `validate_for_serving`.
    /// The spool's key file, when set, is read and checked too (`spool_key`).
    /// So is the receipt key file (`receipt_key`).
    pub fn load_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.exchange.hmac_key_file {
            spool_key(path)?;
        }
        if let Some(path) = self.security.cluster_secret_file.clone() {
            const KEY: &str = "security.cluster_secret_file";
            require(
                self.security.cluster_secret.is_none(),
                KEY,
                "and security.cluster_secret are both set: keep the secret in one place",
            )?;
            self.security.cluster_secret = Some(read_secret_file(&path, KEY)?);
        }
        if self.security.receipt_key_file.is_some() {
            self.receipt_key()?;
        }
        Ok(())
    }
    /// The cluster's receipt key: `security.receipt_key_file`'s, else the one this node
    /// keeps in its data directory (made on its first start), with the previous public
    /// keys listed in `security.receipt_key_previous`. Errors name the file.
    pub fn receipt_key(&self) -> Result<crate::receipts::ReceiptKey, ConfigError> {
        let previous = self.receipt_key_previous()?;
        // A cluster of several members without a key file: the key derived from the
        // cluster secret, the same on every node (a configuration from before receipts
        // were signed starts as it is).
        if self.security.receipt_key_file.is_none() && self.cluster.members.len() > 1 {
            if let Some(secret) = &self.security.cluster_secret {
                let key = crate::receipts::ReceiptKey::derived_from_cluster_secret(secret);
                return Ok(key.with_previous(previous));
            }
        }
        let key = crate::receipts::node_key(
            self.security.receipt_key_file.as_deref(),
            &self.node.data_dir,
        )
        .map_err(|problem| {
            let key = match self.security.receipt_key_file {
                Some(_) => "security.receipt_key_file",
                None => "node.data_dir",
            };
            ConfigError::invalid(key, problem)
        })?;
        Ok(key.with_previous(previous))
    }

    /// `security.receipt_key_previous`, each checked to be an Ed25519 public key.
    fn receipt_key_previous(&self) -> Result<Vec<ed25519_dalek::VerifyingKey>, ConfigError> {
        self.security
            .receipt_key_previous
            .iter()
            .enumerate()
            .map(|(index, text)| {
                crate::receipts::parse_public_key(text).map_err(|problem| {
                    ConfigError::invalid(format!("security.receipt_key_previous[{index}]"), problem)
                })
            })
            .collect()
    }

    /// The previous receipt keys are public keys; a cluster of several members names
    /// its receipt key file (every node must sign with the same key).
    pub(super) fn validate_receipt_key(&self) -> Result<(), ConfigError> {
        self.receipt_key_previous()?;
        Ok(())
    }

    /// The spool's HMAC key (`exchange.hmac_key_file`), when the spool is on.
    pub fn spool_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.exchange
            .hmac_key_file
            .as_deref()
            .map(spool_key)
            .transpose()
    }

    /// The cluster secret, when one is written into the configuration, is strong; a
    /// cluster of several members has one (written, or in a file).
    pub(super) fn validate_cluster_secret(&self) -> Result<(), ConfigError> {
        let security = &self.security;
        if let Some(secret) = &security.cluster_secret {
            check_cluster_secret(secret)
                .map_err(|problem| ConfigError::invalid("security.cluster_secret", problem))?;
        }
        let has_one = security.cluster_secret.is_some() || security.cluster_secret_file.is_some();
        require(
            self.cluster.members.len() <= 1 || has_one,
            "security.cluster_secret",
            format!("must be set when the cluster has several members (or security.cluster_secret_file): {HOW_TO_MAKE_ONE}"),
        )
    }

    /// For a serving node: a secret file named in the configuration was read.
    pub(super) fn validate_secret_files_read(&self) -> Result<(), ConfigError> {
        let security = &self.security;
        require(
            security.cluster_secret_file.is_none() || security.cluster_secret.is_some(),
            "security.cluster_secret_file",
            "was not read (Config::load_secret_files)",
        )
    }

    /// The spool, when on, has its HMAC key.
    pub(super) fn validate_spool_key(&self) -> Result<(), ConfigError> {
        require(
            self.exchange.dir.is_none() || self.exchange.hmac_key_file.is_some(),
            "exchange.hmac_key_file",
            format!("must be set when exchange.dir is: every spool file is authenticated with it (HMAC-SHA256); {HOW_TO_MAKE_ONE}, the same file on the intranet side"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_members() -> Config {
        let mut config = Config::for_node(1).expect("node 1");
        let mut second = config.cluster.members[0].clone();
        second.id = 2;
        second.peer.set_port(7082);
        config.cluster.members.push(second);
        config.security.receipt_key_file = Some("/etc/gavel/receipt-key".into());
        config
    }

    fn private_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("secret-{mode:o}"));
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_placeholder_in_the_config_is_refused_naming_the_key_and_the_command() {
        let mut config = two_members();
        config.security.cluster_secret =
            Some("replace-with-the-same-long-random-secret-on-every-node".to_string());
        let error = config.validate().expect_err("placeholder");
        assert_eq!(error.key(), Some("security.cluster_secret"));
        assert!(
            error.to_string().contains("gavel cluster secret"),
            "{error}"
        );
        config.security.cluster_secret = Some(new_cluster_secret());
        config.validate().expect("a generated secret");
    }

    #[test]
    fn the_secret_file_is_read_checked_and_must_not_be_world_readable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = two_members();
        config.security.cluster_secret_file = Some(dir.path().join("missing"));
        config.validate().expect("a file stands for the secret");
        assert!(config.validate_for_serving().is_err(), "but must be read");
        let error = config.load_secret_files().expect_err("missing");
        assert_eq!(error.key(), Some("security.cluster_secret_file"));

        let secret = new_cluster_secret();
        for (text, mode, why) in [
            (format!("{secret}\n"), 0o644, "every user"),
            (
                "change-me-to-a-long-random-string\n".to_string(),
                0o600,
                "placeholder",
            ),
            ("0123456789abcdef\n".to_string(), 0o600, "hex"),
            ("\n".to_string(), 0o600, "empty"),
        ] {
            let mut config = two_members();
            let path = private_file(dir.path(), &text, mode);
            config.security.cluster_secret_file = Some(path);
            let error = config.load_secret_files().expect_err(why);
            assert!(error.to_string().contains(why), "{error}");
            std::fs::remove_file(config.security.cluster_secret_file.unwrap()).expect("rm");
        }

        let mut config = two_members();
        config.security.cluster_secret_file =
            Some(private_file(dir.path(), &format!("  {secret}\n"), 0o640));
        let receipt_key = dir.path().join("receipt-key");
        crate::receipts::write_new_key_file(&receipt_key).expect("receipt key");
        config.security.receipt_key_file = Some(receipt_key);
        config.load_secret_files().expect("read");
        assert_eq!(
            config.security.cluster_secret.as_deref(),
            Some(secret.as_str())
        );
        config.security.admin_token = Some("an-admin-token-0123456789".to_string());
        config.validate_for_serving().expect("serves");
        assert!(config.load_secret_files().is_err(), "both set");
    }

    #[test]
    fn a_cluster_names_its_receipt_key_file_and_a_bad_one_is_refused_naming_it() {
        // Without a key file, every node of the cluster derives the key from the cluster
        // secret: the same on every node, another secret another key.
        let mut config = two_members();
        let secret = new_cluster_secret();
        config.security.cluster_secret = Some(secret.clone());
        config.security.receipt_key_file = None;
        config.validate().expect("a key derived from the secret");
        let derived = config.receipt_key().expect("derived").public_key();
        assert_eq!(
            derived,
            crate::receipts::ReceiptKey::derived_from_cluster_secret(&secret).public_key()
        );
        config.node.id = 2;
        assert_eq!(config.receipt_key().expect("derived").public_key(), derived);
        config.security.cluster_secret = Some(new_cluster_secret());
        assert_ne!(config.receipt_key().expect("derived").public_key(), derived);

        let dir = tempfile::tempdir().expect("temp dir");
        let malformed = private_file(dir.path(), "c2hvcnQ=\n", 0o600);
        config.security.receipt_key_file = Some(malformed.clone());
        config
            .validate()
            .expect("the file is read when the node starts");
        let error = config.load_secret_files().expect_err("5 bytes");
        assert_eq!(error.key(), Some("security.receipt_key_file"));
        assert!(
            error.to_string().contains(&malformed.display().to_string()),
            "{error}"
        );
        assert!(error.to_string().contains("5 bytes"), "{error}");

        let good = dir.path().join("receipt-key");
        let key = crate::receipts::write_new_key_file(&good).expect("write");
        config.security.receipt_key_file = Some(good);
        let previous = crate::receipts::parse_seed(&crate::receipts::new_seed())
            .expect("seed")
            .public_key();
        config.security.receipt_key_previous = vec![previous.clone(), "not-a-key".into()];
        let error = config.validate().expect_err("a bad previous key");
        assert_eq!(error.key(), Some("security.receipt_key_previous[1]"));
        config.security.receipt_key_previous.pop();
        config.validate().expect("valid");
        let loaded = config.receipt_key().expect("loads");
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(loaded.previous(), vec![previous]);
    }

    #[test]
    fn a_generated_secret_passes_and_so_does_openssl_base64() {
        assert_eq!(check_cluster_secret(&new_cluster_secret()), Ok(()));
        assert_eq!(
            check_cluster_secret("CKpow7BlJ4Dm1EoS5UCG2rQ5JGP0/ez0U8XOJTJEjB4="),
            Ok(())
        );
        assert_ne!(new_cluster_secret(), new_cluster_secret());
    }

    #[test]
    fn placeholders_short_and_patterned_secrets_are_refused_saying_how_to_make_one() {
        for weak in [
            "replace-with-the-same-long-random-secret-on-every-node",
            "change-me-to-another-long-random-string",
            "integration-cluster-secret-0123456789",
            "0123456789abcdef0123456789abcdef",
            "a-long-passphrase-of-plain-words-that-is-not-random-at-all",
            &"ab".repeat(40),
            "Y2x1c3Rlci1zZWNyZXQ=",
        ] {
            let problem = check_cluster_secret(weak).expect_err(weak);
            assert!(
                problem.contains("gavel cluster secret"),
                "{weak}: {problem}"
            );
        }
    }
}
