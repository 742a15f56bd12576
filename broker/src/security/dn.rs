//! A certificate subject as Java's `X500Principal.getName()` writes it (RFC 2253), the
//! input of Kafka's `ssl.principal.mapping.rules`.
//!
//! RFC 2253 writes the relative distinguished names last to first (`CN=alice,O=acme,C=US`
//! for a subject whose DER sequence starts with `C`), the values of a multi-valued RDN
//! joined by `+`. Attribute types with an RFC 2253 keyword (CN, C, L, ST, O, OU, STREET, DC,
//! UID) and a string value are written `KEY=value`, with `, + " \ < > ;`, a leading `#` or
//! space and a trailing space escaped by `\`; any other attribute (emailAddress, say) is
//! written as its dotted OID and `#` with the hex of the value's DER encoding, as Java does.

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The RFC 2253 subject of the DER certificate `der`.
pub fn subject_of_der(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    Ok(rfc2253(cert.subject()))
}

/// `name` in RFC 2253 form.
pub fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<String>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<String>>().join(",")
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    let value = attr.attr_value();
    let text = match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::T61String => {
            std::str::from_utf8(value.data).ok().map(str::to_string)
        }
        Tag::BmpString => {
            let units: Vec<u16> = value
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    };
    match (keyword(&oid), text) {
        (Some(key), Some(text)) => format!("{key}={}", escape(&text)),
        _ => format!("{oid}=#{}", hex_der(value.tag().0, value.data)),
    }
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The hex of a universal primitive DER element with tag number `tag` and `data`.
fn hex_der(tag: u32, data: &[u8]) -> String {
    let mut der = Vec::with_capacity(data.len() + 6);
    der.push((tag & 0x1f) as u8);
    let len = data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend_from_slice(&bytes);
    }
    der.extend_from_slice(data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_rfc_2253() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x "), "\\#x\\ ");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(hex_der(22, b"a@b"), "1603614062");
    }
}

#[cfg(test)]
mod certificate_tests {
    use super::*;

    #[test]
    fn subject_is_written_last_rdn_first() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "US");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "a,b");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Alice");
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = X509Certificate::from_der(cert.der()).unwrap();
        let forward: Vec<String> = parsed
            .subject()
            .iter_attributes()
            .map(|a| a.attr_type().to_id_string())
            .collect();
        let dn = subject_of_der(cert.der()).unwrap();
        eprintln!("DER order {forward:?}; RFC 2253 {dn}");
        // RFC 2253 reverses the DER sequence.
        let mut expected: Vec<&str> = forward
            .iter()
            .map(|oid| match oid.as_str() {
                "2.5.4.6" => "C=US",
                "2.5.4.10" => "O=a\\,b",
                _ => "CN=Alice",
            })
            .collect();
        expected.reverse();
        assert_eq!(dn, expected.join(","));
    }
}
