//! The master key: parsed from base64, or loaded from (and, on first start, created in) a
//! key file readable by its owner only.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::VaultError;

/// Length of the master key in bytes (AES-256).
const MASTER_KEY_LEN: usize = 32;
/// A key file is 44 base64 characters and a newline; anything much larger is not a key file.
const MAX_KEY_FILE_LEN: usize = 1024;

/// The 256-bit key that wraps every data key.
///
/// It has no `Debug`, `Display`, `Serialize` or `Clone`; the bytes live on the heap (so
/// moves do not leave copies behind) and are wiped on drop.
pub struct MasterKey {
    bytes: Box<Zeroizing<[u8; MASTER_KEY_LEN]>>,
}

impl MasterKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = Box::new(Zeroizing::new([0u8; MASTER_KEY_LEN]));
        OsRng.fill_bytes(&mut bytes[..]);
        Self { bytes }
    }

    /// Parses standard (padded) base64 that decodes to exactly 32 bytes. Surrounding
    /// whitespace, such as the newline at the end of a file or an environment variable, is
    /// ignored. The error never quotes the input.
    pub fn from_base64(encoded: &str) -> Result<Self, VaultError> {
        let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| {
            // The decoder's own message quotes the offending byte, which is key material.
            VaultError::BadMasterKey("not valid standard base64".to_owned())
        })?);
        if decoded.len() != MASTER_KEY_LEN {
            return Err(VaultError::BadMasterKey(format!(
                "expected {MASTER_KEY_LEN} bytes after base64 decoding, got {}",
                decoded.len()
            )));
        }
        let mut bytes = Box::new(Zeroizing::new([0u8; MASTER_KEY_LEN]));
        bytes.copy_from_slice(&decoded);
        Ok(Self { bytes })
    }

    /// Loads the key from a file holding its base64 form, or, when the file does not exist,
    /// generates a key and writes it there with mode 0600 (creating missing parent
    /// directories with mode 0700). Returns whether the key was created.
    ///
    /// A file that grants any permission to group or others is refused: a key that others
    /// could have read must be treated as leaked, not silently used.
    pub fn load_or_create_file(path: impl AsRef<Path>) -> Result<(Self, bool), VaultError> {
        let path = path.as_ref();
        if let Some(key) = read_key_file(path)? {
            return Ok((key, false));
        }
        let key = Self::generate();
        match create_key_file(path, &key) {
            Ok(()) => Ok((key, true)),
            // Another process created it between our read and our create: use theirs.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                match read_key_file(path)? {
                    Some(key) => Ok((key, false)),
                    None => Err(key_file_error(path, "disappeared while being created")),
                }
            }
            Err(error) => Err(key_file_error(path, &format!("cannot create: {error}"))),
        }
    }

    /// Loads the key from its file; `None` when the file does not exist.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Option<Self>, VaultError> {
        read_key_file(path.as_ref())
    }

    /// Loads the key from a file that must exist (a previous key, kept for a rotation).
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        read_key_file(path)?.ok_or_else(|| key_file_error(path, "does not exist"))
    }

    /// A public name of the key: the first 8 bytes of SHA-256 over a label and the key. It
    /// tags each wrapped key with the master key that wrapped it (so a vault holding
    /// several knows which to use, and a rotation which entries are done); it reveals
    /// nothing usable about the key.
    pub fn id(&self) -> [u8; 8] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"modelreg master key id v1");
        hasher.update(&self.bytes[..]);
        let digest = hasher.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        id
    }

    /// The raw key, for the key-wrap and HKDF calls of this crate only.
    pub(crate) fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes
    }
}

/// Reads and parses the key file; `Ok(None)` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(key_file_error(path, &format!("cannot open: {error}"))),
    };
    // Checked on the open handle, so the file checked is the file read.
    let metadata = file
        .metadata()
        .map_err(|error| key_file_error(path, &format!("cannot stat: {error}")))?;
    if !metadata.is_file() {
        return Err(key_file_error(path, "is not a regular file"));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            &format!(
                "has mode {mode:04o}, which lets group or others access it; \
                 treat the key as leaked, or restrict it with `chmod 600` if it is not"
            ),
        ));
    }
    if metadata.len() > MAX_KEY_FILE_LEN as u64 {
        return Err(key_file_error(
            path,
            &format!(
                "is {} bytes long; a key file holds one base64 key",
                metadata.len()
            ),
        ));
    }
    // Sized up front so the buffer never reallocates and leaves unwiped copies behind.
    let mut contents = Zeroizing::new(String::with_capacity(MAX_KEY_FILE_LEN + 1));
    (&mut file)
        .take(MAX_KEY_FILE_LEN as u64)
        .read_to_string(&mut contents)
        .map_err(|error| key_file_error(path, &format!("cannot read: {error}")))?;
    MasterKey::from_base64(&contents)
        .map(Some)
        .map_err(|error| key_file_error(path, &error.to_string()))
}

/// Writes a new key file with mode 0600, durably; never overwrites an existing file. The
/// key is written whole to a file of its own first and then linked under `path`, so a
/// crash leaves either no key file or a whole one: a half-written one would fail every
/// later start.
fn create_key_file(path: &Path, key: &MasterKey) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    // A name of its own for every attempt: two processes making the key at once (containers
    // that share a volume may share a process id too) never write one file.
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{:016x}.partial", OsRng.next_u64()));
    let partial = Path::new(&partial);
    let written = write_whole(partial, key).and_then(|()| std::fs::hard_link(partial, path));
    // Linked or not, the partial name goes; the key lives on under `path` if it was linked.
    let _ = std::fs::remove_file(partial);
    written?;
    // Make the new directory entry itself durable.
    File::open(parent.unwrap_or(Path::new(".")))?.sync_all()
}

/// `key` in a new file at `path` (mode 0600), synced.
fn write_whole(path: &Path, key: &MasterKey) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let mut encoded = Zeroizing::new(STANDARD.encode(key.bytes()));
    encoded.push('\n');
    file.write_all(encoded.as_bytes())?;
    file.sync_all()
}

fn key_file_error(path: &Path, problem: &str) -> VaultError {
    VaultError::KeyFile(format!("{}: {problem}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_base64_accepts_exactly_32_bytes() {
        let encoded = STANDARD.encode([7u8; 32]);
        let key = MasterKey::from_base64(&format!("{encoded}\n")).unwrap();
        assert_eq!(key.bytes(), &[7u8; 32]);
    }

    #[test]
    fn from_base64_rejects_other_lengths_without_quoting_the_input() {
        for length in [0, 16, 31, 33, 64] {
            let encoded = STANDARD.encode(vec![1u8; length]);
            let Err(error) = MasterKey::from_base64(&encoded) else {
                panic!("accepted {length} bytes");
            };
            assert!(matches!(error, VaultError::BadMasterKey(_)));
            assert!(error.to_string().contains("expected 32 bytes"), "{error}");
            if !encoded.is_empty() {
                assert!(!error.to_string().contains(&encoded));
            }
        }
    }

    #[test]
    fn from_base64_rejects_invalid_base64_without_quoting_the_input() {
        let Err(error) = MasterKey::from_base64("not*base64*at*all") else {
            panic!("accepted invalid base64");
        };
        assert!(matches!(error, VaultError::BadMasterKey(_)));
        assert!(!error.to_string().contains('*'), "{error}");
    }

    #[test]
    fn key_file_is_created_with_mode_0600_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/master.key");

        let (created_key, created) = MasterKey::load_or_create_file(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parent_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(parent_mode & 0o077, 0, "parent dir mode {parent_mode:o}");

        let (loaded_key, created) = MasterKey::load_or_create_file(&path).unwrap();
        assert!(!created);
        assert_eq!(loaded_key.bytes(), created_key.bytes());

        let contents = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            MasterKey::from_base64(&contents).unwrap().bytes(),
            created_key.bytes()
        );
        // The key was written whole under another name and linked: only the key remains.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["master.key"]);
    }

    /// A partial file an earlier attempt left (a crash while writing) is no key file: the
    /// key is made, whole, under its own name, and the leftover is not taken for it.
    #[test]
    fn a_partial_file_left_by_a_crash_does_not_stop_the_key_being_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let partial = dir.path().join("master.key.00000000000000aa.partial");
        std::fs::write(&partial, "half").unwrap();
        let (key, created) = MasterKey::load_or_create_file(&path).unwrap();
        assert!(created);
        assert_eq!(std::fs::read_to_string(&partial).unwrap(), "half");
        let (again, _) = MasterKey::load_or_create_file(&path).unwrap();
        assert_eq!(again.bytes(), key.bytes());
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, STANDARD.encode([3u8; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let Err(error) = MasterKey::load_or_create_file(&path) else {
            panic!("a world-readable key file was accepted");
        };
        assert!(matches!(error, VaultError::KeyFile(_)));
        assert!(error.to_string().contains("0644"), "{error}");
        // Refusing must not replace the file with a new key either.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            STANDARD.encode([3u8; 32])
        );
    }

    #[test]
    fn key_file_with_garbage_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let Err(error) = MasterKey::load_or_create_file(&path) else {
            panic!("a short key was accepted");
        };
        assert!(matches!(error, VaultError::KeyFile(_)));
        assert!(!error.to_string().contains("c2hvcnQ"), "{error}");
    }
}
