//! Transport security of the `gregor` binary (issue 13): SSL listeners (server-only and
//! mutual TLS with the principal from the client certificate), SASL_PLAINTEXT with PLAIN,
//! SASL_SSL, OAUTHBEARER and re-authentication (KIP-368), with real clients (kcat, confluent-kafka, kafka-python) and with exact
//! requests for the SASL state machine (the v0 handshake's bare tokens, requests before
//! authentication, Kafka's error codes and messages).
//!
//! Certificates are made by the tests (rcgen): a CA, a server certificate for 127.0.0.1
//! and localhost, and a client certificate `CN=alice,OU=eng,O=acme`.

mod support;

#[path = "security/acl_apis.rs"]
mod acl_apis;
#[path = "security/acls.rs"]
mod acls;
#[path = "security/oauth.rs"]
mod oauth;
#[path = "security/pki.rs"]
mod pki;
#[path = "security/sasl.rs"]
mod sasl;
#[path = "security/scram.rs"]
mod scram;
#[path = "security/tls.rs"]
mod tls;

use std::net::SocketAddr;

use support::{Broker, DataDir, TopicSpec};

/// The users of the PLAIN listeners.
pub const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
     username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
     user_alice=\"alice-secret\";";

/// A broker with one listener of each kind next to PLAINTEXT and CONTROLLER.
pub struct SecureBroker {
    /// The process.
    pub broker: Broker,
    /// Its data directory.
    pub data: DataDir,
    /// The certificates.
    pub pki: pki::Pki,
    /// `SSL`: TLS, no client certificate asked for.
    pub ssl: SocketAddr,
    /// `MTLS` (mapped to SSL): client certificates required, mapped by a rule.
    pub mtls: SocketAddr,
    /// `SASL_PLAINTEXT`: PLAIN.
    pub sasl_plaintext: SocketAddr,
    /// `SASL_SSL`: PLAIN and SCRAM.
    pub sasl_ssl: SocketAddr,
    /// The `server.properties` keys it was started with.
    keys: Vec<(String, String)>,
}

impl SecureBroker {
    /// Starts it, with `extra` keys on top.
    pub fn start(extra: &[(&str, &str)]) -> SecureBroker {
        let data = DataDir::builder()
            .topic(TopicSpec::new("secure", 1))
            .build();
        SecureBroker::start_on(data, extra)
    }

    /// [`SecureBroker::start`] on `data`.
    pub fn start_on(data: DataDir, extra: &[(&str, &str)]) -> SecureBroker {
        let pki = pki::Pki::generate();
        // Bound at once, so that the four are distinct, and none of them the data dir's
        // PLAINTEXT or CONTROLLER port: those were released when the data dir was built, so
        // the system may hand them out again (it did, with other test binaries running).
        let taken = [data.ports.plaintext, data.ports.controller];
        let (mut held, mut skipped) = (Vec::new(), Vec::new());
        while held.len() < 4 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            if taken.contains(&listener.local_addr().unwrap().port()) {
                skipped.push(listener); // held too, so the next bind gets another port
            } else {
                held.push(listener);
            }
        }
        let ports: [u16; 4] = std::array::from_fn(|i| held[i].local_addr().unwrap().port());
        drop((held, skipped));
        let [ssl, mtls, sasl_plaintext, sasl_ssl] =
            ports.map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let (plaintext, controller) = (data.ports.plaintext, data.ports.controller);
        let secured = format!(
            "SSL://{ssl},MTLS://{mtls},SASL_PLAINTEXT://{sasl_plaintext},SASL_SSL://{sasl_ssl}"
        );
        let listeners = format!(
            "PLAINTEXT://127.0.0.1:{plaintext},CONTROLLER://127.0.0.1:{controller},{secured}"
        );
        let advertised = format!("PLAINTEXT://127.0.0.1:{plaintext},{secured}");
        let server_pem = pki.path("server.pem");
        let ca = pki.path("ca.pem");
        let mut keys: Vec<(&str, &str)> = vec![
            ("listeners", &listeners),
            ("advertised.listeners", &advertised),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,\
                 SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            ),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", &server_pem),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", &ca),
            ("listener.name.mtls.ssl.client.auth", "required"),
            (
                "listener.name.mtls.ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*),OU=eng,.*$/$1/L,DEFAULT",
            ),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                PLAIN_JAAS,
            ),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", PLAIN_JAAS),
            ("connection.failed.authentication.delay.ms", "10"),
        ];
        keys.extend_from_slice(extra);
        let keys: Vec<(String, String)> = keys
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let broker = start(&data, &keys);
        SecureBroker {
            keys,
            broker,
            data,
            pki,
            ssl,
            mtls,
            sasl_plaintext,
            sasl_ssl,
        }
    }
}

fn start(data: &DataDir, keys: &[(String, String)]) -> Broker {
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Broker::start_with_env(
        data,
        &keys,
        &[("RUST_LOG", "info,gregor_broker::connection_auth=debug")],
    )
}

impl SecureBroker {
    /// Stops the broker (cleanly) and starts it again on the same data and configuration.
    pub fn restart(&mut self) {
        assert!(self.broker.stop().success());
        self.broker = start(&self.data, &self.keys);
    }
}

/// An ApiVersions request as current clients send it.
pub fn support_api_versions() -> gregor_protocol::messages::api_versions_request::ApiVersionsRequest
{
    gregor_protocol::messages::api_versions_request::ApiVersionsRequest {
        client_software_name: "gregor-security-tests".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    }
}
