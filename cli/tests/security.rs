//! `gregorctl --command-config` against the real `gregor` over SSL, SASL_PLAINTEXT and
//! SASL_SSL listeners: PLAIN and SCRAM-SHA-512 credentials, a CA made by the test (rcgen),
//! and the errors a wrong password or an unknown CA give.

mod support;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use support::{Broker, DataDir, gregorctl};

const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                          user_alice=\"alice-secret\";";

/// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`:
/// `ca.pem` and `server.pem` (certificate, then key).
fn pki(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(Vec::<String>::new()).expect("server params");
    server.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().expect("name")),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let ca_path = dir.join(format!("{name}-ca.pem"));
    let server_path = dir.join(format!("{name}-server.pem"));
    fs::write(&ca_path, ca_cert.pem()).expect("write the CA");
    fs::write(
        &server_path,
        format!("{}{}", server_cert.pem(), server_key.serialize_pem()),
    )
    .expect("write the server's certificate and key");
    (ca_path, server_path)
}

struct Secure {
    broker: Broker,
    ssl: String,
    sasl_plaintext: String,
    sasl_ssl: String,
    ca: PathBuf,
    dir: tempfile::TempDir,
}

impl Secure {
    fn start() -> Secure {
        let dir = tempfile::tempdir().expect("a directory");
        let (ca, server) = pki(dir.path(), "test");
        let data = DataDir::empty();
        let (port, controller) = (data.port, data.controller_port);
        // Held at once, so that the three are distinct, and none of them the data dir's
        // ports (released when it was made, so the system may hand them out again).
        let (mut held, mut skipped) = (Vec::new(), Vec::new());
        while held.len() < 3 {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            if [port, controller].contains(&listener.local_addr().unwrap().port()) {
                skipped.push(listener);
            } else {
                held.push(listener);
            }
        }
        let [ssl, sasl_plaintext, sasl_ssl] =
            std::array::from_fn(|i| format!("127.0.0.1:{}", held[i].local_addr().unwrap().port()));
        drop((held, skipped));
        let secured =
            format!("SSL://{ssl},SASL_PLAINTEXT://{sasl_plaintext},SASL_SSL://{sasl_ssl}");
        let data = data
            .broker_config(
                "listeners",
                &format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},{secured}"),
            )
            .broker_config(
                "advertised.listeners",
                &format!("PLAINTEXT://127.0.0.1:{port},{secured}"),
            )
            .broker_config(
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            )
            .broker_config("ssl.keystore.type", "PEM")
            .broker_config("ssl.keystore.location", server.to_str().unwrap())
            .broker_config("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512")
            .broker_config("listener.name.sasl_plaintext.plain.sasl.jaas.config", PLAIN_JAAS)
            .broker_config("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN_JAAS)
            .broker_config(
                "gregor.bootstrap.scram",
                "SCRAM-SHA-512=[name=bob,password=\"bob-secret\",iterations=4096]",
            )
            .broker_config("connection.failed.authentication.delay.ms", "10");
        Secure {
            broker: Broker::start(data),
            ssl,
            sasl_plaintext,
            sasl_ssl,
            ca,
            dir,
        }
    }

    /// A `--command-config` file with `lines`.
    fn config(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, lines.join("\n")).expect("write the client properties");
        path
    }

    /// The SASL_SSL / SCRAM-SHA-512 properties of user bob.
    fn scram_ssl_config(&self) -> PathBuf {
        self.config(
            "scram.properties",
            &[
                "security.protocol=SASL_SSL".into(),
                "sasl.mechanism=SCRAM-SHA-512".into(),
                "sasl.username=bob".into(),
                "sasl.password=bob-secret".into(),
                format!("ssl.truststore.location={}", self.ca.display()),
            ],
        )
    }

    fn ctl(&self, bootstrap: &str, config: &Path, args: &[&str]) -> support::Run {
        let mut all = vec![
            "--bootstrap-server",
            bootstrap,
            "--command-config",
            config.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        gregorctl(&all, None)
    }
}

#[test]
fn produce_and_consume_over_ssl_and_sasl() {
    let s = Secure::start();
    let ca = format!("ssl.truststore.location={}", s.ca.display());
    let ssl = s.config(
        "ssl.properties",
        &["security.protocol=SSL".into(), ca.clone()],
    );
    let plain = s.config(
        "plain.properties",
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=PLAIN".into(),
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\";".into(),
        ],
    );
    let scram = s.scram_ssl_config();
    s.ctl(
        &s.sasl_plaintext,
        &plain,
        &["topics", "create", "--topic", "t", "--partitions", "1"],
    )
    .ok();
    let mut args = vec!["--bootstrap-server", s.sasl_ssl.as_str()];
    let scram_path = scram.to_str().unwrap().to_string();
    args.extend_from_slice(&["--command-config", &scram_path, "produce", "t"]);
    gregorctl(&args, Some("one\ntwo\nthree\n")).ok();
    let consumed = s.ctl(
        &s.ssl,
        &ssl,
        &["consume", "t", "--from-beginning", "--max-messages", "3"],
    );
    let values: Vec<&str> = consumed.ok().lines().collect();
    assert_eq!(values, ["one", "two", "three"]);
    // The broker's metadata names the SASL_SSL listener's own address.
    let metadata = s.ctl(&s.sasl_ssl, &scram, &["metadata", "--json"]).json();
    assert_eq!(
        metadata["brokers"][0]["port"]
            .as_i64()
            .map(|p| p.to_string()),
        s.sasl_ssl.rsplit(':').next().map(str::to_string),
        "{metadata}"
    );
}

#[test]
fn wrong_credentials_and_an_unknown_ca_are_clear_errors() {
    let s = Secure::start();
    let wrong = s.config(
        "wrong.properties",
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            "sasl.username=bob".into(),
            "sasl.password=not-it".into(),
        ],
    );
    s.ctl(&s.sasl_plaintext, &wrong, &["metadata"])
        .fails_with("SASL_AUTHENTICATION_FAILED");
    let unknown_mechanism = s.config(
        "sha256.properties",
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=SCRAM-SHA-256".into(),
            "sasl.username=bob".into(),
            "sasl.password=bob-secret".into(),
        ],
    );
    s.ctl(&s.sasl_plaintext, &unknown_mechanism, &["metadata"])
        .fails_with("UNSUPPORTED_SASL_MECHANISM");
    let (other_ca, _) = pki(s.dir.path(), "other");
    let untrusted = s.config(
        "untrusted.properties",
        &[
            "security.protocol=SSL".into(),
            format!("ssl.truststore.location={}", other_ca.display()),
        ],
    );
    s.ctl(&s.ssl, &untrusted, &["metadata"])
        .fails_with("TLS handshake failed");
    // PLAINTEXT to a TLS listener: the handshake never completes as Kafka.
    let plaintext = s.config("plaintext.properties", &[]);
    let run = s.ctl(
        &s.ssl,
        &plaintext,
        &[
            "--connect-timeout-ms",
            "2000",
            "--request-timeout-ms",
            "2000",
            "metadata",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    drop(s.broker);
}

#[test]
fn perf_measures_connection_set_up_with_scram_over_tls() {
    let s = Secure::start();
    let scram = s.scram_ssl_config();
    let run = s.ctl(
        &s.sasl_ssl,
        &scram,
        &[
            "perf",
            "connections",
            "--num-connections",
            "20",
            "--concurrency",
            "2",
        ],
    );
    let summary: serde_json::Value =
        serde_json::from_str(run.ok().lines().last().expect("a summary")).expect("JSON");
    assert_eq!(summary["connections"], 20, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["security"], "SASL_SSL/SCRAM-SHA-512", "{summary}");
    assert!(
        summary["setup_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
}
