//! A small certificate authority for the embedded default deployment.
//!
//! The embedded default runs everything on one machine with QUIC and mutual TLS, and nothing else
//! to start; this module is what makes that possible. [`Pki::open_or_create`] keeps a CA under
//! `{data_dir}/pki/` (created on first run, loaded afterwards so that every later certificate chains
//! to the same CA), and [`Pki::edge`] / [`Pki::vehicle`] issue the leaf certificates the edge's
//! zenoh session and the vehicle agents present. All keys are ECDSA P-256, which rustls and quinn
//! accept. Files are PEM:
//!
//! ```text
//! pki/ca.pem  pki/ca.key                  the CA (key 0600 on unix), valid 100 years
//! pki/edge-{edge}.pem  .key               server + client auth; CN and DNS SAN `edge-{edge}`,
//!                                         DNS `localhost`, IP 127.0.0.1 and ::1; valid 10 years
//! pki/vehicle-{id}.pem  .key              client auth; CN and DNS SAN `vehicle-{id}`; 10 years
//! ```
//!
//! What it deliberately does not do: no revocation (no CRL, no OCSP), no rotation or renewal (an
//! expired leaf stays expired until its files are deleted, and then the next call issues a new one),
//! no protection of the CA key beyond file permissions, and it issues a certificate for any name
//! it is asked for. Production deployments bring their own CA and point the configuration at
//! their own files; nothing here is then used.
//!
//! Creation guarantees, for processes that share a data directory (the simulator starts several):
//! a certificate file is the commit point of its pair. The key is written to a temporary file,
//! fsynced and hard-linked to its final name, which fails if that name exists, so exactly one
//! creator wins; the winner then renames its fsynced certificate into place. A certificate file
//! that exists is therefore complete and its key is too. A creator that loses waits briefly for the
//! winner's certificate. A crash between the two steps leaves a key without a certificate, which is
//! reported ([`PkiError::Incomplete`]) rather than silently replaced, because another process may
//! still be about to commit it.
//!
//! rcgen 0.14 can only read a CA certificate back with its `x509-parser` feature, which this crate
//! does not enable. The CA is therefore loaded by rebuilding its parameters (its name is a constant
//! of this module) around the stored key, after checking, with a minimal DER reader, that the stored
//! certificate really carries that name and that key. A CA not made by this module is refused
//! ([`PkiError::ForeignCa`]) instead of issuing certificates that would not chain to it.
//!
//! All calls do blocking file IO; call them before the runtime starts or from `spawn_blocking`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::VehicleId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};

/// Subject common name of the CA; together with [`CA_ORGANIZATION`] it is how a loaded CA is
/// recognised, and it must never change (certificates issued afterwards would not chain).
const CA_COMMON_NAME: &str = "v2e embedded CA";
const CA_ORGANIZATION: &str = "v2e";
/// The CA is never rotated, so it outlives every leaf it will plausibly issue.
const CA_VALIDITY_DAYS: i64 = 36_525;
const LEAF_VALIDITY_DAYS: i64 = 3_653;
/// How long a creator that lost the race waits for the winner's certificate to appear. Creating
/// a pair takes milliseconds, so this is generous; tests shorten it to keep the failure case fast.
const COMMIT_WAIT: Duration = if cfg!(test) {
    Duration::from_millis(200)
} else {
    Duration::from_secs(2)
};
const COMMIT_POLL: Duration = Duration::from_millis(10);

/// Paths of one identity's PEM files: the CA certificate to trust, the certificate to present and
/// its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the embedded CA could not be opened or could not issue a certificate. Every variant names
/// the file concerned; none is transient except possibly [`PkiError::Io`], so retrying is rarely
/// useful: the operator has to fix or delete the file named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: not a PEM {label} ({what})", path.display())]
    BadPem {
        path: PathBuf,
        label: &'static str,
        what: &'static str,
    },
    #[error("{}: {error}", path.display())]
    Rcgen { path: PathBuf, error: rcgen::Error },
    #[error(
        "{}: not the CA this module creates ({what}); delete it and ca.key to start a new CA, or \
         configure your own certificate files instead of the embedded CA",
        path.display()
    )]
    ForeignCa { path: PathBuf, what: &'static str },
    #[error(
        "{} exists but {} does not (creation interrupted?); delete the key to start over",
        key.display(),
        cert.display()
    )]
    Incomplete { key: PathBuf, cert: PathBuf },
    #[error("invalid edge id {0:?}: expected 1 to 64 characters of [a-z0-9-]")]
    InvalidEdgeId(String),
}

/// The embedded CA of one data directory. See the module documentation.
#[derive(Debug)]
pub struct Pki {
    /// `{data_dir}/pki`.
    dir: PathBuf,
    ca_cert: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// Loads the CA in `dir/pki`, creating the folder and the CA first if there is none.
    pub fn open_or_create(dir: &Path) -> Result<Pki, PkiError> {
        let pki_dir = dir.join("pki");
        fs::create_dir_all(&pki_dir).map_err(io_error(&pki_dir))?;
        let ca_cert = pki_dir.join("ca.pem");
        let ca_key = pki_dir.join("ca.key");
        if !exists(&ca_cert)? {
            let key = generate_key(&ca_cert)?;
            let mut params = ca_params();
            set_validity(&mut params, CA_VALIDITY_DAYS);
            let cert = params.self_signed(&key).map_err(rcgen_error(&ca_cert))?;
            // Leaves left over from an earlier CA cannot chain to this one: remove them before
            // the new CA becomes visible, so that `edge`/`vehicle` issue fresh ones.
            let committed =
                commit_pair(&ca_cert, &ca_key, &cert.pem(), &key.serialize_pem(), || {
                    remove_leaves(&pki_dir)
                })?;
            if !committed {
                wait_for_commit(&ca_cert, &ca_key)?;
            }
        }
        let issuer = load_ca(&ca_cert, &ca_key)?;
        Ok(Pki {
            dir: pki_dir,
            ca_cert,
            issuer,
        })
    }

    /// The edge's certificate (created if absent): CN `edge-{edge_id}`, SANs DNS `edge-{edge_id}`,
    /// DNS `localhost`, IP 127.0.0.1 and IP ::1 (zenoh checks the IP of a `quic/127.0.0.1:PORT`
    /// locator against the SANs), usable for server and client authentication.
    pub fn edge(&self, edge_id: &str) -> Result<CertFiles, PkiError> {
        if !protocol::keys::is_valid_edge_id(edge_id) {
            return Err(PkiError::InvalidEdgeId(edge_id.to_owned()));
        }
        let name = format!("edge-{edge_id}");
        let sans = vec![
            name.clone(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        self.leaf(
            &name,
            sans,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// The vehicle's client certificate (created if absent): CN and DNS SAN
    /// [`protocol::keys::vehicle_cert_name`], the name zenoh access control will match on (not enforced yet).
    pub fn vehicle(&self, vehicle: VehicleId) -> Result<CertFiles, PkiError> {
        let name = protocol::keys::vehicle_cert_name(vehicle);
        let sans = vec![name.clone()];
        self.leaf(&name, sans, &[ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// Returns the files of `name`, issuing them first if its certificate does not exist.
    /// `name` has been validated as a safe file name by the caller.
    fn leaf(
        &self,
        name: &str,
        sans: Vec<String>,
        usages: &[ExtendedKeyUsagePurpose],
    ) -> Result<CertFiles, PkiError> {
        let files = CertFiles {
            ca: self.ca_cert.clone(),
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        if exists(&files.cert)? {
            // A committed certificate implies its key; say which file is missing if it is not.
            fs::metadata(&files.key).map_err(io_error(&files.key))?;
            return Ok(files);
        }
        let mut params = CertificateParams::new(sans).map_err(rcgen_error(&files.cert))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages.to_vec();
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY_DAYS);
        let key = generate_key(&files.cert)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error(&files.cert))?;
        if !commit_pair(
            &files.cert,
            &files.key,
            &cert.pem(),
            &key.serialize_pem(),
            || Ok(()),
        )? {
            wait_for_commit(&files.cert, &files.key)?;
        }
        Ok(files)
    }
}

/// The CA's parameters other than its validity. Only the name, key identifier method and key
/// usages matter when it signs, and all three are constants, which is what makes reloading
/// without an X.509 parser possible.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, CA_ORGANIZATION);
    // No intermediates: the CA signs leaves only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Loads the CA and checks that it is one [`ca_params`] describes, with the stored key.
fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key_pem = fs::read_to_string(key_path).map_err(io_error(key_path))?;
    let key = KeyPair::from_pem(&key_pem).map_err(rcgen_error(key_path))?;
    let cert_pem = fs::read_to_string(cert_path).map_err(io_error(cert_path))?;
    let der = pem_decode(&cert_pem, "CERTIFICATE").ok_or(PkiError::BadPem {
        path: cert_path.to_owned(),
        label: "CERTIFICATE",
        what: "missing markers or bad base64",
    })?;
    let stored = CertFields::parse(&der).ok_or(PkiError::BadPem {
        path: cert_path.to_owned(),
        label: "CERTIFICATE",
        what: "contents are not an X.509 certificate",
    })?;
    let foreign = |what| PkiError::ForeignCa {
        path: cert_path.to_owned(),
        what,
    };
    if stored.spki != key.subject_public_key_info().as_slice() {
        return Err(foreign("its public key is not the one in ca.key"));
    }
    if stored.issuer != stored.subject {
        return Err(foreign("it is not self-issued"));
    }
    // The simplest exact way to learn how rcgen encodes our CA name (and so what it will write as
    // the issuer of every leaf) is to let it write one certificate; it costs one signature.
    let params = ca_params();
    let probe = params.self_signed(&key).map_err(rcgen_error(cert_path))?;
    let probe = CertFields::parse(probe.der()).ok_or(foreign("rcgen wrote an unreadable probe"))?;
    if stored.subject != probe.subject {
        return Err(foreign("its subject name differs"));
    }
    Ok(Issuer::new(params, key))
}

fn generate_key(for_path: &Path) -> Result<KeyPair, PkiError> {
    // rcgen's default: ECDSA P-256 with SHA-256.
    KeyPair::generate().map_err(rcgen_error(for_path))
}

/// Sets the validity to start yesterday (midnight UTC, which tolerates clocks up to a day behind)
/// and last `days` from today.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| (since.as_secs() / 86_400) as i64);
    let (year, month, day) = civil_from_days(today - 1);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    let (year, month, day) = civil_from_days(today + days);
    params.not_after = rcgen::date_time_ymd(year, month, day);
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`). Needed because `time` is not a dependency of this crate.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8, day as u8)
}

/// Publishes a certificate/key pair as described in the module documentation. Returns `false`
/// if another creator got there first, in which case nothing of ours was published and the caller
/// waits for theirs. `before_commit` runs after the key is ours and before the certificate is
/// visible.
fn commit_pair(
    cert: &Path,
    key: &Path,
    cert_pem: &str,
    key_pem: &str,
    before_commit: impl FnOnce() -> Result<(), PkiError>,
) -> Result<bool, PkiError> {
    let tmp_key = write_temp(key, key_pem.as_bytes(), true)?;
    let linked = fs::hard_link(&tmp_key, key);
    // The temporary name has served its purpose either way; a leftover is only litter.
    let _ = fs::remove_file(&tmp_key);
    match linked {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => {
            return Err(PkiError::Io {
                path: key.to_owned(),
                error,
            })
        }
    }
    before_commit()?;
    let tmp_cert = write_temp(cert, cert_pem.as_bytes(), false)?;
    if let Err(error) = fs::rename(&tmp_cert, cert) {
        let _ = fs::remove_file(&tmp_cert);
        return Err(PkiError::Io {
            path: cert.to_owned(),
            error,
        });
    }
    sync_dir(cert)?;
    Ok(true)
}

/// Writes `contents` to a fresh temporary file next to `target` and fsyncs it. `private` files are
/// created with mode 0600 on unix, so the key is never readable by others, not even briefly.
fn write_temp(target: &Path, contents: &[u8], private: bool) -> Result<PathBuf, PkiError> {
    static N_TEMP_FILES: AtomicU64 = AtomicU64::new(0);
    let n = N_TEMP_FILES.fetch_add(1, Ordering::Relaxed);
    let file_name = target.file_name().unwrap_or_default().to_string_lossy();
    let path = target.with_file_name(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options.open(&path).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&path);
        return Err(PkiError::Io { path, error });
    }
    Ok(path)
}

/// Makes the renames and links in `file`'s folder durable.
fn sync_dir(file: &Path) -> Result<(), PkiError> {
    #[cfg(unix)]
    if let Some(dir) = file.parent() {
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(dir))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Waits for another creator to commit `cert` after it has taken `key`.
fn wait_for_commit(cert: &Path, key: &Path) -> Result<(), PkiError> {
    let deadline = std::time::Instant::now() + COMMIT_WAIT;
    while std::time::Instant::now() < deadline {
        if exists(cert)? {
            return Ok(());
        }
        std::thread::sleep(COMMIT_POLL);
    }
    if exists(cert)? {
        return Ok(());
    }
    Err(PkiError::Incomplete {
        key: key.to_owned(),
        cert: cert.to_owned(),
    })
}

/// Removes leaf certificates and keys (`edge-*`, `vehicle-*`) from the pki folder.
fn remove_leaves(dir: &Path) -> Result<(), PkiError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let is_leaf = (name.starts_with("edge-") || name.starts_with("vehicle-"))
            && (name.ends_with(".pem") || name.ends_with(".key"));
        if is_leaf {
            match fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(PkiError::Io { path, error });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn exists(path: &Path) -> Result<bool, PkiError> {
    path.try_exists().map_err(io_error(path))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |error| PkiError::Io {
        path: path.to_owned(),
        error,
    }
}

fn rcgen_error(path: &Path) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |error| PkiError::Rcgen {
        path: path.to_owned(),
        error,
    }
}

/// The DER contents of the first PEM block labelled `label` in `text`, or `None` if there is no
/// such block or its base64 is malformed. (rcgen reads PEM keys but exposes no PEM reader for
/// certificates, and this crate depends on no base64 or PEM crate.)
fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let mut out = Vec::with_capacity((stop - start) * 3 / 4);
    let mut acc = 0u32;
    let mut n_bits = 0u32;
    let mut padding = false;
    for byte in text[start..stop].bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            _ if byte.is_ascii_whitespace() => continue,
            _ => return None,
        };
        if padding {
            return None;
        }
        acc = (acc << 6) | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((acc >> n_bits) as u8);
            acc &= (1 << n_bits) - 1;
        }
    }
    Some(out)
}

/// One DER element: its tag byte, the whole encoding and the contents.
#[derive(Clone, Copy, Debug)]
struct Tlv<'a> {
    tag: u8,
    whole: &'a [u8],
    contents: &'a [u8],
}

const TAG_SEQUENCE: u8 = 0x30;

/// Splits the first DER element off `input`. Only what X.509 certificates use is supported
/// (single-byte tags, definite lengths of up to 4 length bytes).
fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, after_tag) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut after_length) = after_tag.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let n_bytes = usize::from(first & 0x7f);
        if n_bytes == 0 || n_bytes > 4 || after_length.len() < n_bytes {
            return None;
        }
        let (bytes, rest) = after_length.split_at(n_bytes);
        after_length = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte))
    };
    if after_length.len() < length {
        return None;
    }
    let header = input.len() - after_length.len();
    let (contents, rest) = after_length.split_at(length);
    let tlv = Tlv {
        tag,
        whole: &input[..header + length],
        contents,
    };
    Some((tlv, rest))
}

/// The elements of a certificate's `tbsCertificate`, in order.
fn tbs_elements(der: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let (certificate, _) = read_tlv(der)?;
    let (tbs, _) = read_tlv(certificate.contents)?;
    if certificate.tag != TAG_SEQUENCE || tbs.tag != TAG_SEQUENCE {
        return None;
    }
    let mut elements = Vec::new();
    let mut rest = tbs.contents;
    while !rest.is_empty() {
        let (element, after) = read_tlv(rest)?;
        elements.push(element);
        rest = after;
    }
    Some(elements)
}

/// The parts of a certificate this module compares, each as its whole DER encoding.
struct CertFields<'a> {
    issuer: &'a [u8],
    subject: &'a [u8],
    spki: &'a [u8],
}

impl<'a> CertFields<'a> {
    fn parse(der: &'a [u8]) -> Option<Self> {
        let elements = tbs_elements(der)?;
        // tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity,
        // subject, subjectPublicKeyInfo, then optional unique ids and [3] extensions.
        let skip = usize::from(elements.first()?.tag == 0xa0);
        let field = |index: usize| {
            elements
                .get(skip + index)
                .filter(|tlv| tlv.tag == TAG_SEQUENCE)
                .map(|tlv| tlv.whole)
        };
        Some(CertFields {
            issuer: field(2)?,
            subject: field(4)?,
            spki: field(5)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N_DIRS: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let n = N_DIRS.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("v2e-pki-{name}-{}-{nanos}-{n}", std::process::id()));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn read_der(path: &Path) -> Vec<u8> {
        pem_decode(&fs::read_to_string(path).unwrap(), "CERTIFICATE").unwrap()
    }

    /// The contents (`extnValue`'s octets) of the extension with DER-encoded OID `oid`.
    fn extension<'a>(der: &'a [u8], oid: &[u8]) -> Option<&'a [u8]> {
        let elements = tbs_elements(der).unwrap();
        let extensions = elements.iter().find(|tlv| tlv.tag == 0xa3)?;
        let (list, _) = read_tlv(extensions.contents).unwrap();
        let mut rest = list.contents;
        while !rest.is_empty() {
            let (extension, after) = read_tlv(rest).unwrap();
            rest = after;
            let (id, mut fields) = read_tlv(extension.contents).unwrap();
            if id.contents != oid {
                continue;
            }
            loop {
                let (field, after) = read_tlv(fields).unwrap();
                if field.tag == 0x04 {
                    return Some(field.contents);
                }
                fields = after; // The optional `critical` BOOLEAN.
            }
        }
        None
    }

    const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    const OID_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

    /// The elements (tag, contents) of the SEQUENCE inside an extension value.
    fn sequence_items(value: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let (sequence, _) = read_tlv(value).unwrap();
        let mut items = Vec::new();
        let mut rest = sequence.contents;
        while !rest.is_empty() {
            let (item, after) = read_tlv(rest).unwrap();
            items.push((item.tag, item.contents.to_vec()));
            rest = after;
        }
        items
    }

    fn subject_key_id(der: &[u8]) -> Vec<u8> {
        let value = extension(der, OID_SUBJECT_KEY_ID).unwrap();
        read_tlv(value).unwrap().0.contents.to_vec()
    }

    fn authority_key_id(der: &[u8]) -> Vec<u8> {
        let value = extension(der, OID_AUTHORITY_KEY_ID).unwrap();
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING, ... }
        let items = sequence_items(value);
        assert_eq!(items[0].0, 0x80);
        items[0].1.clone()
    }

    /// Checks what can be checked without an X.509 verifier: the leaf names the CA as its issuer
    /// (exact DER of the CA's subject) and identifies the CA's key (authority key id equals the
    /// CA's subject key id), and the leaf's key file holds the key the leaf certifies. The ECDSA
    /// signature itself is not verified: neither rcgen nor this crate's dependencies expose a
    /// verifier (ring is only rcgen's private dependency), and adding a crate for a test is not
    /// worth it; the integration tests, where rustls accepts or refuses the chain, cover that.
    fn assert_issued_by_ca(files: &CertFiles) {
        let ca_der = read_der(&files.ca);
        let leaf_der = read_der(&files.cert);
        let ca = CertFields::parse(&ca_der).unwrap();
        let leaf = CertFields::parse(&leaf_der).unwrap();
        assert_eq!(leaf.issuer, ca.subject);
        assert_ne!(leaf.subject, ca.subject);
        assert_eq!(authority_key_id(&leaf_der), subject_key_id(&ca_der));
        let key = KeyPair::from_pem(&fs::read_to_string(&files.key).unwrap()).unwrap();
        assert_eq!(leaf.spki, key.subject_public_key_info().as_slice());
    }

    fn extended_key_usages(der: &[u8]) -> Vec<Vec<u8>> {
        let value = extension(der, OID_EXTENDED_KEY_USAGE).unwrap();
        sequence_items(value)
            .into_iter()
            .map(|(_, oid)| oid)
            .collect()
    }

    #[test]
    fn reopening_reuses_the_ca() {
        let dir = TempDir::new("reopen");
        let first = Pki::open_or_create(&dir.0).unwrap();
        let ca_pem = fs::read(dir.0.join("pki/ca.pem")).unwrap();
        let ca_key = fs::read(dir.0.join("pki/ca.key")).unwrap();
        let before = first.vehicle(VehicleId(1)).unwrap();
        drop(first);

        let second = Pki::open_or_create(&dir.0).unwrap();
        assert_eq!(fs::read(dir.0.join("pki/ca.pem")).unwrap(), ca_pem);
        assert_eq!(fs::read(dir.0.join("pki/ca.key")).unwrap(), ca_key);
        // Certificates issued after reloading chain to the same CA as before.
        let after = second.vehicle(VehicleId(2)).unwrap();
        assert_issued_by_ca(&before);
        assert_issued_by_ca(&after);
        // And the reloaded CA keeps existing leaves.
        let again = second.vehicle(VehicleId(1)).unwrap();
        assert_eq!(again, before);
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let pki = Pki::open_or_create(&dir.0).unwrap();
        let edge = pki.edge("e1").unwrap();
        for key in [dir.0.join("pki/ca.key"), edge.key] {
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn edge_certificate_serves_localhost_and_loopback_ips() {
        let dir = TempDir::new("edge");
        let pki = Pki::open_or_create(&dir.0).unwrap();
        let files = pki.edge("north-7").unwrap();
        assert_eq!(files.ca, dir.0.join("pki/ca.pem"));
        assert_eq!(files.cert, dir.0.join("pki/edge-north-7.pem"));
        assert_eq!(files.key, dir.0.join("pki/edge-north-7.key"));
        let pem = fs::read_to_string(&files.cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let key_pem = fs::read_to_string(&files.key).unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_issued_by_ca(&files);

        let der = read_der(&files.cert);
        let subject = CertFields::parse(&der).unwrap().subject;
        assert!(subject.windows(12).any(|w| w == b"edge-north-7"));
        let sans = sequence_items(extension(&der, OID_SUBJECT_ALT_NAME).unwrap());
        let mut ipv6_loopback = vec![0; 16];
        ipv6_loopback[15] = 1;
        assert_eq!(
            sans,
            vec![
                (0x82, b"edge-north-7".to_vec()),
                (0x82, b"localhost".to_vec()),
                (0x87, vec![127, 0, 0, 1]),
                (0x87, ipv6_loopback),
            ]
        );
        assert_eq!(
            extended_key_usages(&der),
            vec![OID_SERVER_AUTH.to_vec(), OID_CLIENT_AUTH.to_vec()]
        );

        // Asking again returns the same files untouched.
        assert_eq!(pki.edge("north-7").unwrap(), files);
        assert_eq!(fs::read_to_string(&files.cert).unwrap(), pem);
    }

    #[test]
    fn vehicle_certificate_is_a_client_certificate_named_after_the_vehicle() {
        let dir = TempDir::new("vehicle");
        let pki = Pki::open_or_create(&dir.0).unwrap();
        let files = pki.vehicle(VehicleId(42)).unwrap();
        assert_eq!(files.cert, dir.0.join("pki/vehicle-42.pem"));
        assert_issued_by_ca(&files);
        let der = read_der(&files.cert);
        let subject = CertFields::parse(&der).unwrap().subject;
        assert!(subject.windows(10).any(|w| w == b"vehicle-42"));
        let sans = sequence_items(extension(&der, OID_SUBJECT_ALT_NAME).unwrap());
        assert_eq!(sans, vec![(0x82, b"vehicle-42".to_vec())]);
        assert_eq!(extended_key_usages(&der), vec![OID_CLIENT_AUTH.to_vec()]);
    }

    #[test]
    fn edge_ids_that_are_not_safe_names_are_refused() {
        let dir = TempDir::new("ids");
        let pki = Pki::open_or_create(&dir.0).unwrap();
        for bad in ["", "../ca", "a/b", "Edge", "a.b"] {
            assert!(
                matches!(pki.edge(bad), Err(PkiError::InvalidEdgeId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_ca_not_made_here_is_refused() {
        let dir = TempDir::new("foreign");
        let pki_dir = dir.0.join("pki");
        fs::create_dir_all(&pki_dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        fs::write(pki_dir.join("ca.pem"), cert.pem()).unwrap();
        fs::write(pki_dir.join("ca.key"), key.serialize_pem()).unwrap();
        let error = Pki::open_or_create(&dir.0).unwrap_err();
        assert!(matches!(error, PkiError::ForeignCa { .. }), "{error}");
        assert!(error.to_string().contains("ca.pem"), "{error}");
    }

    #[test]
    fn a_ca_key_that_does_not_match_is_refused() {
        let dir = TempDir::new("mismatch");
        drop(Pki::open_or_create(&dir.0).unwrap());
        let other = KeyPair::generate().unwrap();
        fs::write(dir.0.join("pki/ca.key"), other.serialize_pem()).unwrap();
        let error = Pki::open_or_create(&dir.0).unwrap_err();
        assert!(matches!(error, PkiError::ForeignCa { .. }), "{error}");
    }

    #[test]
    fn unreadable_files_are_named_in_errors() {
        let dir = TempDir::new("garbage");
        drop(Pki::open_or_create(&dir.0).unwrap());
        fs::write(dir.0.join("pki/ca.pem"), "not a certificate").unwrap();
        let error = Pki::open_or_create(&dir.0).unwrap_err();
        assert!(matches!(error, PkiError::BadPem { .. }), "{error}");
        assert!(error.to_string().contains("ca.pem"), "{error}");

        fs::write(dir.0.join("pki/ca.key"), "not a key").unwrap();
        let error = Pki::open_or_create(&dir.0).unwrap_err();
        assert!(matches!(error, PkiError::Rcgen { .. }), "{error}");
        assert!(error.to_string().contains("ca.key"), "{error}");
    }

    #[test]
    fn a_key_without_its_certificate_is_reported_not_replaced() {
        let dir = TempDir::new("interrupted");
        let pki_dir = dir.0.join("pki");
        fs::create_dir_all(&pki_dir).unwrap();
        fs::write(pki_dir.join("ca.key"), "left by a crash").unwrap();
        let error = Pki::open_or_create(&dir.0).unwrap_err();
        assert!(matches!(error, PkiError::Incomplete { .. }), "{error}");
        assert_eq!(
            fs::read_to_string(pki_dir.join("ca.key")).unwrap(),
            "left by a crash"
        );
    }

    #[test]
    fn a_new_ca_discards_leaves_of_the_old_one() {
        let dir = TempDir::new("new-ca");
        let pki = Pki::open_or_create(&dir.0).unwrap();
        let old = read_der(&pki.edge("e1").unwrap().cert);
        drop(pki);
        fs::remove_file(dir.0.join("pki/ca.pem")).unwrap();
        fs::remove_file(dir.0.join("pki/ca.key")).unwrap();

        let pki = Pki::open_or_create(&dir.0).unwrap();
        assert!(!dir.0.join("pki/edge-e1.pem").exists());
        assert!(!dir.0.join("pki/edge-e1.key").exists());
        let files = pki.edge("e1").unwrap();
        assert_ne!(read_der(&files.cert), old);
        assert_issued_by_ca(&files);
    }

    #[test]
    fn concurrent_creators_agree_on_one_ca_and_one_leaf() {
        let dir = TempDir::new("race");
        let pkis: Vec<Pki> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| Pki::open_or_create(&dir.0).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let edges: Vec<CertFiles> = std::thread::scope(|scope| {
            let handles: Vec<_> = pkis
                .iter()
                .map(|pki| scope.spawn(|| pki.edge("e1").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_issued_by_ca(&edges[0]);
        for (i, pki) in pkis.iter().enumerate() {
            assert_eq!(edges[i], edges[0]);
            // Whichever process created the CA, every Pki signs for the CA on disk.
            assert_issued_by_ca(&pki.vehicle(VehicleId(i as u32)).unwrap());
        }
        let litter: Vec<_> = fs::read_dir(dir.0.join("pki"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(litter.is_empty(), "{litter:?}");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    }

    #[test]
    fn pem_decoding() {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params().self_signed(&key).unwrap();
        assert_eq!(
            pem_decode(&cert.pem(), "CERTIFICATE").unwrap(),
            cert.der().to_vec()
        );
        assert_eq!(pem_decode(&cert.pem(), "PRIVATE KEY"), None);
        let corrupt = cert.pem().replacen('M', "*", 1);
        assert_eq!(pem_decode(&corrupt, "CERTIFICATE"), None);
    }
}
