//! Test certificates, made with rcgen: a CA, a server certificate (127.0.0.1, localhost)
//! and a client certificate `CN=alice,OU=eng,O=acme`, as PEM files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The files of a test PKI in a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server's certificate and key, PEM.
    pub server_cert_pem: String,
    /// The server's key, PKCS#8 DER.
    pub server_key_der: Vec<u8>,
    /// The server's certificate, DER.
    pub server_cert_der: Vec<u8>,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
}

impl Pki {
    /// Makes the certificates and writes `ca.pem`, `server.pem` (chain then key),
    /// `server-cert.pem`, `server-key.pem`, `client-cert.pem`, `client-key.pem`,
    /// `other-client-cert.pem`/`-key.pem` (signed by another CA).
    pub fn generate() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("gregor-pki-")
            .tempdir()
            .expect("temporary directory");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gregor test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(Vec::<String>::new()).expect("server params");
        server.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().expect("dns name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        server.distinguished_name.push(DnType::CommonName, "gregor");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let client = |cn: &str, issuer: &Issuer<'_, KeyPair>| {
            let key = KeyPair::generate().expect("client key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            // A fresh name: rcgen's default one holds a CN that would stay first.
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::OrganizationName, "acme");
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, "eng");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, issuer).expect("client certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (client_cert, client_key) = client("Alice", &issuer);

        let other_ca_key = KeyPair::generate().expect("other CA key");
        let mut other_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        other_params
            .distinguished_name
            .push(DnType::CommonName, "some other CA");
        let other_issuer = Issuer::new(other_params, other_ca_key);
        let (other_cert, other_key) = client("mallory", &other_issuer);

        let pki = Pki {
            dir,
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_der: server_key.serialize_der(),
            server_cert_der: server_cert.der().to_vec(),
            ca_der: ca_cert.der().to_vec(),
        };
        let write = |name: &str, text: &str| {
            std::fs::write(pki.dir.path().join(name), text).expect("write a PEM file")
        };
        write("ca.pem", &pki.ca_pem);
        write(
            "server.pem",
            &format!(
                "{}{}{}",
                server_cert.pem(),
                pki.ca_pem,
                server_key.serialize_pem()
            ),
        );
        write("server-cert.pem", &server_cert.pem());
        write("server-key.pem", &server_key.serialize_pem());
        write("client-cert.pem", &client_cert);
        write("client-key.pem", &client_key);
        write("other-client-cert.pem", &other_cert);
        write("other-client-key.pem", &other_key);
        pki
    }

    /// The path of file `name` in the PKI directory, as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// The directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}
